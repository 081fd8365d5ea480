"""The APDS simulator's HTTP plumbing, shared by its endpoint modules: the access token, errors
as ResponseStatus, paging with PaginatedListMeta, request bodies."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.apds.operations_wire import status_body
from adapters.apds.wire import TOKEN_HEADER, WireError, obj
from adapters.simulated.harness import vendor_error

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000


class Guarded(Protocol):
    token: str


S = TypeVar("S", bound=Guarded)


def guard(state: S, handler: Callable[[S, Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """The access token first (the README: a missing or unknown token is 401), then the handler;
    a WireError from the request becomes a 400."""

    async def endpoint(request: Request) -> Response:
        presented = request.headers.get(TOKEN_HEADER, "")
        # Bytes: compare_digest refuses non-ASCII str, and a header may carry anything.
        if not hmac.compare_digest(presented.encode(), state.token.encode()):
            return error(401, "missing or unknown access token")
        try:
            return await handler(state, request)
        except WireError as exc:
            return error(400, str(exc))

    return endpoint


def error(status: int, message: str) -> JSONResponse:
    return vendor_error(status, status_body(status, message))


def ok(status: int = 200) -> JSONResponse:
    return JSONResponse(status_body(status), status_code=status)


_NUMBER = re.compile(r"[0-9]{1,10}")


def param(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if not _NUMBER.fullmatch(value):
        raise WireError(f"{name} must be a non-negative integer")
    return int(value)


def listing(request: Request, name: str) -> list[str]:
    """A comma-separated list parameter (style form, explode false)."""
    value = request.query_params.get(name)
    return [v for v in value.split(",") if v] if value else []


def paged(request: Request, records: list[Any], reference: int | None = None) -> JSONResponse:
    offset = param(request, "offset", 0)
    size = param(request, "pageSize", DEFAULT_PAGE_SIZE)
    assert offset is not None and size is not None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise WireError(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    reference = reference or param(request, "referenceInstant") or int(time.time())
    return JSONResponse({
        "meta": {"referenceInstant": reference, "offset": offset, "pageSize": size, "total": len(records)},
        "data": records[offset:offset + size],
    })


async def body_of(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise WireError("the body is not JSON") from exc
    return dict(obj(body, "body"))


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Views:
    """The lists paging clients are walking, as of their first page (by list, query and instant).

    APDS pages a list "as of" the first answer's `referenceInstant`, which the client sends with the
    rest. The simulator keeps the records it built for a first page and serves the later pages of
    the same walk from them: one view, as the standard means, and not the whole list rebuilt for
    every page (which made a walk over thousands of places, or a finance read of a year of rights,
    quadratic). A client may ask the later pages side by side and in any order: a view is let go
    once as many records went out as it holds. A request without a referenceInstant, or with one
    no kept view has, builds afresh.
    """

    KEPT = 8  # views at once: concurrent walks (several resources read the catalog side by side)

    def __init__(self) -> None:
        self._views: dict[tuple[Any, ...], list[Any]] = {}
        #: records served from each view so far: a walk may ask its pages side by side, in any order
        self._served: dict[tuple[Any, ...], int] = {}

    def page(self, request: Request, name: str, build: Callable[[], list[Any]]) -> JSONResponse:
        asked = param(request, "referenceInstant")
        query = tuple(f"{k}={v}" for k, v in sorted(request.query_params.multi_items())
                      if k not in ("offset", "pageSize", "referenceInstant"))
        reference = asked or int(time.time())
        key = (name, query, reference)
        records = self._views.get(key) if asked is not None else None
        if records is None:
            records = build()
            self._views[key], self._served[key] = records, 0
            while len(self._views) > self.KEPT:
                self._served.pop(oldest := next(iter(self._views)), None)
                del self._views[oldest]  # the oldest first
        offset, size = param(request, "offset", 0) or 0, param(request, "pageSize", DEFAULT_PAGE_SIZE) or 0
        served = self._served.get(key, 0) + len(records[offset:offset + size])
        if served >= len(records):  # every record of the walk went out: nobody needs the view any more
            self._views.pop(key, None)
            self._served.pop(key, None)
        elif key in self._views:
            self._served[key] = served
        return paged(request, records, reference)
