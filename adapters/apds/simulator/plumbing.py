"""The APDS simulator's HTTP plumbing, shared by its endpoint modules: token guard, errors, paging."""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.apds.wire import DEFAULT_LIMIT, MAX_LIMIT, WireError
from adapters.simulated.harness import vendor_error


class Guarded(Protocol):
    token: str


S = TypeVar("S", bound=Guarded)


def guard(state: S, handler: Callable[[S, Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Token auth first, then the handler; a WireError from the request becomes a 400."""

    async def endpoint(request: Request) -> Response:
        if not authorized(request, state.token):
            response = error(401, "unauthorized", "missing or invalid token")
            response.headers["WWW-Authenticate"] = "Token"
            return response
        try:
            return await handler(state, request)
        except WireError as exc:
            return error(400, "bad_request", str(exc))

    return endpoint


def authorized(request: Request, token: str) -> bool:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # Bytes: compare_digest refuses non-ASCII str, and a header may carry anything.
    return scheme.lower() == "token" and hmac.compare_digest(presented.encode(), token.encode())


def error(status: int, code: str, message: str) -> JSONResponse:
    return vendor_error(status, {"error": {"code": code, "message": message}})


_NUMBER = re.compile(r"[0-9]{1,9}")


def param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not _NUMBER.fullmatch(value):
        raise WireError(f"{name} must be a non-negative integer")
    return int(value)


def paged(request: Request, records: list[Any], max_limit: int = MAX_LIMIT) -> JSONResponse:
    offset = param(request, "offset", 0)
    limit = param(request, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= max_limit:
        raise WireError(f"limit must be between 1 and {max_limit}")
    return JSONResponse({
        "data": records[offset:offset + limit],
        "meta": {"total": len(records), "offset": offset, "limit": limit},
    })


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
