"""Where the figures are read: GET /metrics (Prometheus text) and GET /metrics.json (the per-system
JSON view /metrics answered before, kept for the health pages and scripts that read it).

`observability.metrics.access` decides who may read them:

    open    on the gateway's port, for anyone (put it behind the network's own walls)
    scope   on the gateway's port, for a client whose key or token holds `metrics.scope`
            (401 without credentials, 403 without the scope)
    port    only on a private listener, `metrics.host:metrics.port`, never on the gateway's port.
            With several workers each binds it with SO_REUSEPORT; any of them answers for all
            (the figures are merged: gateway/observability/metrics.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.auth.authenticate import AuthError
from gateway.errors import ErrorCode
from gateway.observability.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.runtime import Runtime

log = logging.getLogger("parkgate.metrics")

Handler = Callable[[Request], Awaitable[Response]]
#: the private listener reads at most this much of a request before answering
MAX_REQUEST_BYTES = 8192


def metrics_routes(runtime: Runtime, json_view: Handler) -> list[BaseRoute]:
    """The routes on the gateway's own port (none with access: port)."""
    settings = runtime.config.observability.metrics
    if settings.access == "port":
        return []
    metrics = runtime.observability.metrics

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    guard = _scope_guard(runtime, settings.scope) if settings.access == "scope" else None
    routes: list[BaseRoute] = [Route("/metrics.json", _guarded(json_view, guard), methods=["GET"])]
    if settings.enabled:
        routes.append(Route("/metrics", _guarded(prometheus, guard), methods=["GET"]))
    return routes


def _guarded(handler: Handler, guard: Callable[[Request], Awaitable[Response | None]] | None) -> Handler:
    if guard is None:
        return handler

    async def guarded(request: Request) -> Response:
        refusal = await guard(request)
        return refusal if refusal is not None else await handler(request)

    return guarded


def _scope_guard(runtime: Runtime, scope: str) -> Callable[[Request], Awaitable[Response | None]]:
    async def guard(request: Request) -> Response | None:
        if not runtime.config.auth.enabled:
            return None
        try:
            principal = await runtime.authenticator.authenticate(request.headers.get("authorization"),
                                                                 request.headers.get("x-api-key"))
        except AuthError as exc:
            return _refusal(401, ErrorCode.UNAUTHENTICATED, exc.message, {"www-authenticate": exc.www_authenticate()})
        if scope not in principal.scopes:
            return _refusal(403, ErrorCode.FORBIDDEN, f"Reading the metrics needs scope {scope}.")
        return None

    return guard


def _refusal(status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code.value, "message": message}}, status_code=status, headers=headers)


class PrivateListener:
    """GET /metrics on a port of its own (access: port): a few lines of HTTP/1.1, one answer per connection."""

    def __init__(self, metrics: GatewayMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True,
                                                 reuse_port=hasattr(socket, "SO_REUSEPORT"))
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, _, rest = head.partition(b" ")
            target = rest.partition(b" ")[0].partition(b"?")[0]
            if method == b"GET" and target == b"/metrics":
                status, body, media = b"200 OK", self.metrics.exposition(), CONTENT_TYPE.encode()
            else:
                status, body, media = b"404 Not Found", b"GET /metrics\n", b"text/plain; charset=utf-8"
            writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: " + media + b"\r\ncontent-length: "
                         + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass  # a scraper that went away or sent nonsense: nothing to answer
        finally:
            writer.close()
