"""The harness every vendor simulator runs in: fault injection and request counting.

A simulator is a plain Starlette app for one vendor dialect. `simulator_app` wraps its routes
with a `SimulatorControl`, which the sandbox's control API drives: take the system down
(503), make it slow, make it fail (500), and read how many requests each endpoint received
(tests use those counts to prove there is no N+1 and that the cache protects the vendor), and
the last requests as they arrived (`recent`: method, URL, headers, body), so a test can see what
exactly reached a vendor.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.simulated.world import World


class FaultMode(StrEnum):
    OK = "ok"
    DOWN = "down"  # 503 with no body, as a load balancer in front of a dead service answers
    SLOW = "slow"  # answers after `delay_ms`
    ERROR = "error"  # 500 with an HTML error page, as real vendor stacks do


RECENT_REQUESTS = 500


@dataclass(eq=False)
class SeenRequest:
    """One request as a simulated vendor received it (its body filled in as the app reads it)."""

    method: str
    url: str  # path and query string, as sent
    headers: tuple[tuple[str, str], ...]
    body: bytearray = field(default_factory=bytearray)

    def text(self) -> str:
        """Everything the vendor was sent, as one string to search."""
        lines = [f"{self.method} {self.url}", *(f"{name}: {value}" for name, value in self.headers)]
        return "\n".join(lines) + "\n\n" + bytes(self.body).decode("utf-8", "replace")


@dataclass
class SimulatorControl:
    system_id: str
    mode: FaultMode = FaultMode.OK
    delay_ms: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    recent: deque[SeenRequest] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))

    def set_fault(self, mode: FaultMode, delay_ms: int = 0) -> None:
        self.mode = mode
        self.delay_ms = delay_ms

    def stats(self) -> dict[str, object]:
        return {
            "system_id": self.system_id,
            "mode": self.mode.value,
            "delay_ms": self.delay_ms,
            "total": sum(self.requests.values()),
            "by_endpoint": dict(sorted(self.requests.items())),
        }

    def reset_stats(self) -> None:
        self.requests.clear()
        self.recent.clear()


class FaultInjection:
    """ASGI middleware: counts each request by its route template, then applies the fault mode."""

    def __init__(self, app: ASGIApp, control: SimulatorControl, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.control = control
        self.routes = routes

    def _recording(self, scope: Scope, receive: Receive) -> Receive:
        """`receive`, noting the request (and its body as the app reads it) in `control.recent`."""
        query = scope.get("query_string", b"").decode("latin-1")
        url = scope.get("raw_path", scope["path"].encode()).decode("latin-1") + (f"?{query}" if query else "")
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ()))
        seen = SeenRequest(scope["method"], url, headers)
        self.control.recent.append(seen)

        async def recording() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen.body.extend(message.get("body", b""))
            return message

        return recording

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.control.requests[f"{scope['method']} {self._template(scope)}"] += 1
        receive = self._recording(scope, receive)
        mode = self.control.mode
        if mode is FaultMode.DOWN:
            await Response(status_code=503)(scope, receive, send)
            return
        if mode is FaultMode.ERROR:
            await Response("<html><body>Internal Server Error</body></html>", 500, media_type="text/html")(
                scope, receive, send
            )
            return
        if mode is FaultMode.SLOW and self.control.delay_ms > 0:
            await asyncio.sleep(self.control.delay_ms / 1000)
        await self.app(scope, receive, send)

    def _template(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                path = getattr(route, "path", None)  # Route, WebSocketRoute and Mount have one
                return path if isinstance(path, str) else scope["path"]
        return scope["path"]


def simulator_app(control: SimulatorControl, routes: Sequence[BaseRoute]) -> ASGIApp:
    """A vendor simulator: its routes behind fault injection and request counting."""
    app = Starlette(routes=list(routes))
    return FaultInjection(app, control, routes)


def vendor_error(status: int, body: dict[str, object]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


@dataclass
class Simulator:
    """One running simulated system: its ASGI app, its control, and the world it observes."""

    system_id: str
    app: ASGIApp
    control: SimulatorControl
    world: World
