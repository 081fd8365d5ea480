"""Accounting exports over HTTP: files an accountant downloads, not GraphQL.

    GET /exports/journal?format=iif|qbo|sap|yardi|csv|json&from=YYYY-MM-DD&to=YYYY-MM-DD[&facility=<id>]
        scope finance:read
    GET /exports/citations?format=csv&from=YYYY-MM-DD&to=YYYY-MM-DD[&facility=<id>]
        scopes enforcement:read and pii:read (an adjudication file needs the full plate)

Follow a request: authenticate (as /graphql does) → scopes → parameters → facilities the
client may see → read the vendors → render → the file as an attachment, never cached.
A facility outside the client's list answers exactly like an unknown one (404): a client
never learns that a facility it may not see exists. Errors are JSON with a catalog code, like
every other gateway error; a client store that cannot be reached is the app's 503 (gateway/app.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.errors import UpstreamError
from gateway.auth.authenticate import UNRESTRICTED, AuthError, Principal
from gateway.auth.scopes import Scope
from gateway.deadline import Deadline
from gateway.directory import FacilityEntry
from gateway.errors import ErrorCode
from gateway.finance.citations_export import load_citations, render_citations
from gateway.finance.formats import FORMATS, Rendered
from gateway.finance.journal import build_journals
from gateway.finance.ledger import check_range, load_transactions
from gateway.metering import Meter, MeterRefusal
from gateway.runtime import Runtime

log = logging.getLogger("parkgate.exports")

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UPSTREAM_STATUS = {
    ErrorCode.UPSTREAM_ERROR: 502,
    ErrorCode.UPSTREAM_UNAVAILABLE: 503,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
}
#: how many vendor records could not be read (and so are missing from the file)
RECORD_ERRORS_HEADER = "x-parkgate-record-errors"


class ExportRefused(Exception):
    """An export answered with an error instead of the file: status, catalog code, message."""

    def __init__(self, status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None,
                 **extensions: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extensions = extensions

    def response(self) -> Response:
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code.value, **self.extensions}}]}
        return Response(orjson.dumps(body), status_code=self.status, media_type="application/json; charset=utf-8",
                        headers={**self.headers, "cache-control": "no-store"})


def bad_input(message: str) -> ExportRefused:
    return ExportRefused(400, ErrorCode.BAD_USER_INPUT, message)


@dataclass(frozen=True)
class ExportParams:
    format: str
    first_day: date
    last_day: date
    facility: str | None


def day_param(request: Request, name: str) -> date:
    raw = request.query_params.get(name)
    if raw is None:
        raise bad_input(f"`{name}` is required: a date like 2026-11-01.")
    if not DATE.match(raw):
        raise bad_input(f"`{name}` must be a date like 2026-11-01, not {raw[:40]!r}.")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise bad_input(f"`{name}` is not a calendar date: {raw!r}.") from None


def export_params(request: Request, formats: tuple[str, ...]) -> ExportParams:
    fmt = request.query_params.get("format", formats[0] if len(formats) == 1 else "")
    if fmt not in formats:
        raise bad_input(f"`format` must be one of {', '.join(formats)}.")
    first_day, last_day = day_param(request, "from"), day_param(request, "to")
    try:
        check_range(first_day, last_day)
    except ValueError as exc:
        raise bad_input(str(exc)) from None
    facility = request.query_params.get("facility") or None
    return ExportParams(fmt, first_day, last_day, facility)


#: quota points an export file costs (it reads up to 92 days of every facility's ledger)
EXPORT_COST = 50


class Exports:
    def __init__(self, runtime: Runtime, meter: Meter) -> None:
        self.runtime = runtime
        self.meter = meter

    async def admit(self, principal: Principal) -> None:
        """An export spends the client's quota like a query of EXPORT_COST points."""
        try:
            await self.meter.admit_cost(principal, EXPORT_COST, EXPORT_COST)
        except MeterRefusal as refusal:
            raise ExportRefused(refusal.status, refusal.code, refusal.message, refusal.headers,
                                **refusal.extensions) from None

    async def principal(self, request: Request, needs: tuple[Scope, ...]) -> Principal:
        if not self.runtime.config.auth.enabled:
            return UNRESTRICTED
        try:
            principal = await self.runtime.authenticator.authenticate(request.headers.get("authorization"),
                                                                      request.headers.get("x-api-key"))
        except AuthError as exc:
            raise ExportRefused(401, ErrorCode.UNAUTHENTICATED, exc.message,
                                {"www-authenticate": exc.www_authenticate()}) from None
        missing = [scope.value for scope in needs if scope.value not in principal.scopes]
        if missing:
            raise ExportRefused(403, ErrorCode.FORBIDDEN, f"This export needs the scope {' and '.join(missing)}.",
                                scopes=" ".join(missing))
        return principal

    def deadline(self) -> Deadline:
        """An export's vendor reads are bounded as a GraphQL operation's are: past it, 504 UPSTREAM_TIMEOUT."""
        return Deadline.after(self.runtime.config.limits.operation_timeout_s)

    def facilities(self, principal: Principal, wanted: str | None) -> list[FacilityEntry]:
        directory = self.runtime.directory
        if wanted is None:
            return [entry for entry in directory.entries if principal.sees(entry.id)]
        entry = directory.by_id.get(wanted)
        if entry is None or not principal.sees(wanted):
            raise ExportRefused(404, ErrorCode.NOT_FOUND, f"No facility {wanted[:100]!r}.")
        return [entry]

    async def journal(self, request: Request) -> Response:
        principal = await self.principal(request, (Scope.FINANCE_READ,))
        params = export_params(request, tuple(FORMATS))
        entries = self.facilities(principal, params.facility)
        await self.admit(principal)
        ledger = await load_transactions(self.runtime, entries, params.first_day, params.last_day, self.deadline())
        rendered = FORMATS[params.format](build_journals(ledger, self.runtime.config.finance))
        return attachment(rendered, "journal", params, len(ledger.errors))

    async def citations(self, request: Request) -> Response:
        principal = await self.principal(request, (Scope.ENFORCEMENT_READ, Scope.PII_READ))
        params = export_params(request, ("csv",))
        entries = self.facilities(principal, params.facility)
        await self.admit(principal)
        citations = await load_citations(self.runtime, entries, params.first_day, params.last_day, self.deadline())
        return attachment(render_citations(citations), "citations", params, len(citations.errors))


def attachment(rendered: Rendered, what: str, params: ExportParams, record_errors: int) -> Response:
    name = f"parkgate-{what}-{params.first_day.isoformat()}-{params.last_day.isoformat()}"
    if params.facility:
        name += f"-{params.facility}"
    headers = {
        "content-disposition": f'attachment; filename="{name}.{rendered.extension}"',
        "cache-control": "no-store",
        RECORD_ERRORS_HEADER: str(record_errors),
    }
    return Response(rendered.body, media_type=rendered.media_type, headers=headers)


def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Refusals and vendor failures as coded JSON errors; the vendor's system named."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ExportRefused as refused:
            return refused.response()
        except UpstreamError as exc:
            code = ErrorCode(exc.code)
            log.warning("export %s failed: %s", request.url.path, exc)
            return ExportRefused(UPSTREAM_STATUS[code], code, f"Source {exc.system_id!r} failed: {exc.detail}",
                                 system=exc.system_id).response()

    return endpoint


def finance_routes(runtime: Runtime, meter: Meter) -> list[BaseRoute]:
    exports = Exports(runtime, meter)
    return [
        Route("/exports/journal", guarded(exports.journal), methods=["GET"]),
        Route("/exports/citations", guarded(exports.citations), methods=["GET"]),
    ]
