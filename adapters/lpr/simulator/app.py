"""The LPR simulator's app: the simulated enforcement platform's HTTP surface over its data (state.py).

Spring Boot in manner: HTTP Basic plus an `X-API-Key` header, `?page=&size=` paging with a
`content`/`totalPages`/`last` envelope, Spring's error bodies. Citations carry the handheld's
local `issueDate` and `0143A`-style `issueTime`, rendered in the zone's time zone.

Endpoints:
    GET  /api/v1/zones                          a page of zones
    GET  /api/v1/citations?since=               a page of citations issued since, newest first
    POST /api/v1/citations                      issue: {zoneCode, plate, plateRegion?, violationCode,
                                                note?, externalReference} -> 201 and the citation;
                                                404 unknown zone, 400 unknown violation code,
                                                409 with `existingNumber` for a reused reference
    GET  /api/v1/citations/{number}             one citation, or 404
    POST /api/v1/citations/{number}/void        {reason} -> 200 and the citation, now VOID
                                                (a void one as it is); 404 unknown, 409 paid
"""

from __future__ import annotations

import base64
import binascii
import hmac
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.lpr.simulator.state import (
    MAX_REFERENCE,
    MAX_TEXT,
    VENDOR_IDS,
    LprRefusal,
    LprState,
    zone_for,
)
from adapters.lpr.wire import API, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, format_timestamp, parse_timestamp
from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app
from adapters.simulated.world import World


class LprApi:
    """The platform's HTTP surface over an `LprState`."""

    def __init__(self, state: LprState, credentials: Mapping[str, str]) -> None:
        self.state = state
        self._username = _need(credentials, "username").encode()
        self._password = _need(credentials, "password").encode()
        self._api_key = _need(credentials, "api_key").encode()

    def routes(self) -> list[Route]:
        return [
            Route(f"{API}/zones", self.zones),
            Route(f"{API}/citations", self.citations),
            Route(f"{API}/citations", self.issue, methods=["POST"]),
            Route(f"{API}/citations/{{number}}", self.citation),
            Route(f"{API}/citations/{{number}}/void", self.void, methods=["POST"]),
        ]

    async def zones(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return spring_error(request, 401, "Unauthorized")
        return JSONResponse(page_of(request, [zone.to_wire() for zone in self.state.zones.values()]))

    async def citations(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return spring_error(request, 401, "Unauthorized")
        since = None
        if "since" in request.query_params:
            try:
                since = parse_timestamp(request.query_params["since"])
            except ValueError:
                return spring_error(
                    request, 400, "Bad Request", "Parameter 'since' must be formatted yyyy-MM-dd'T'HH:mm:ssZ"
                )
        self.state.advance()
        return JSONResponse(page_of(request, [c.to_wire() for c in self.state.newest_first(since)]))

    async def citation(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return spring_error(request, 401, "Unauthorized")
        number = request.path_params["number"]
        citation = self.state.find(number)
        if citation is None:
            return refused(request, LprRefusal(404, f"Citation {number} not found"))
        return JSONResponse(citation.to_wire())

    async def issue(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return spring_error(request, 401, "Unauthorized")
        try:
            body = await _json_object(request)
            fields = {
                name: _text(body, name, required=name not in ("plateRegion", "note"), limit=limit)
                for name, limit in (("zoneCode", 40), ("plate", 40), ("plateRegion", 40), ("violationCode", 40),
                                    ("note", MAX_TEXT), ("externalReference", MAX_REFERENCE))
            }
            citation = self.state.issue_requested(
                fields["zoneCode"], fields["plate"], fields["violationCode"], fields["externalReference"],
                region=fields["plateRegion"], note=fields["note"],
            )
        except LprRefusal as refusal:
            return refused(request, refusal)
        return JSONResponse(citation.to_wire(), status_code=201,
                            headers={"Location": f"{API}/citations/{citation.number}"})

    async def void(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return spring_error(request, 401, "Unauthorized")
        try:
            reason = _text(await _json_object(request), "reason", required=True, limit=MAX_TEXT)
            citation = self.state.void(request.path_params["number"], reason)
        except LprRefusal as refusal:
            return refused(request, refusal)
        return JSONResponse(citation.to_wire())

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        username, _, password = decoded.partition(b":")
        key = request.headers.get("x-api-key", "").encode()
        # every comparison runs, so the timing does not tell which one failed
        checks = (
            scheme.lower() == "basic",
            hmac.compare_digest(username, self._username),
            hmac.compare_digest(password, self._password),
            hmac.compare_digest(key, self._api_key),
        )
        return all(checks)


def page_of(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Spring Data's page envelope; like Spring, bad or out-of-range page/size fall back or clamp."""
    page = max(_int(request.query_params.get("page"), 0), 0)
    size = _int(request.query_params.get("size"), DEFAULT_PAGE_SIZE)
    size = DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)
    total_pages = -(-len(items) // size)
    return {
        "content": items[page * size : (page + 1) * size],
        "totalPages": total_pages,
        "totalElements": len(items),
        "number": page,
        "size": size,
        "last": page >= total_pages - 1,
    }


def spring_error(request: Request, status: int, error: str, message: str | None = None,
                 **extra: Any) -> JSONResponse:
    """Spring Boot's error body; `extra` fields ride along as a custom @ControllerAdvice adds them."""
    body: dict[str, Any] = {
        "timestamp": format_timestamp(datetime.now(UTC)),
        "status": status,
        "error": error,
        "path": request.url.path,
    }
    if message:
        body["message"] = message
    body.update(extra)
    headers = {"WWW-Authenticate": 'Basic realm="lpr"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def refused(request: Request, refusal: LprRefusal) -> JSONResponse:
    extra = {"existingNumber": refusal.existing_number} if refusal.existing_number else {}
    return spring_error(request, refusal.status, HTTPStatus(refusal.status).phrase, refusal.message, **extra)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise LprRefusal(400, "JSON parse error: the request body is not JSON") from None
    if not isinstance(body, dict):
        raise LprRefusal(400, "JSON parse error: the request body is not a JSON object")
    return body


def _text(body: Mapping[str, Any], name: str, *, required: bool, limit: int) -> Any:
    """A string field as Bean Validation would check it: @NotBlank when required, @Size(max=limit)."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise LprRefusal(400, f"Validation failed: {name} must be a non-blank string")
    if len(value) > limit:
        raise LprRefusal(400, f"Validation failed: {name} must be at most {limit} characters")
    return value


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _need(credentials: Mapping[str, str], name: str) -> str:
    try:
        return credentials[name]
    except KeyError:
        raise KeyError(f"the LPR simulator needs credential {name!r}") from None


@dataclass
class LprSimulator(Simulator):
    """An LPR simulator; `state` is where tests and control requests reach its data."""

    state: LprState


def create_simulator(world: World, system_id: str, credentials: Mapping[str, str]) -> LprSimulator:
    now = datetime.now(UTC)
    # (the index staggers the zones' creation dates; a generated world's thousands stay within a year)
    zones = [
        zone_for(world.garages[key].spec, code, index % 30, now)
        for index, (key, code) in enumerate(world.ids_of("lpr", VENDOR_IDS).items())
    ]
    state = LprState(zones, seed=zlib.crc32(system_id.encode()), now=now)
    control = SimulatorControl(system_id)
    api = LprApi(state, credentials)
    return LprSimulator(system_id, simulator_app(control, api.routes()), control, world, state)
