"""The APDS simulator on loopback with every exchange recorded, and the checks every APDS test
ends with: each request the adapter sent, each answer and webhook delivery the simulator sent,
validated against the patched APDS document by openapi-core (adapters/apds/conformance.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.apds import ApdsAdapter
from adapters.apds.conformance import Finding, check_delivery, check_request, check_response
from adapters.apds.simulator import ROOT, ApdsSimulator, create_simulator
from adapters.base import SystemSpec
from adapters.models import SystemKind
from adapters.simulated.world import World
from tests.support.servers import serve

TOKEN = "apds-sandbox-token"
SECRET = "whsec-apds"


@dataclass
class Exchange:
    method: str
    path: str  # below the APDS root
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes = b""
    status: int = 0
    answer: bytes = b""
    content_type: str = ""


@dataclass
class Recorder:
    """ASGI middleware: every request to the simulator and its answer, as they went over the wire."""

    app: ASGIApp
    exchanges: list[Exchange] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        exchange = Exchange(scope["method"], path.removeprefix(ROOT),
                            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True),
                            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())})
        self.exchanges.append(exchange)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.body += message.get("body", b"")
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                for key, value in message.get("headers", ()):
                    if key.lower() == b"content-type":
                        exchange.content_type = value.decode("latin-1").split(";")[0]
            elif message["type"] == "http.response.body":
                exchange.answer += message.get("body", b"")
            await send(message)

        await self.app(scope, receiving, sending)

    def findings(self, *, requests: bool = True, answers: bool = True) -> list[tuple[Exchange, Finding]]:
        out: list[tuple[Exchange, Finding]] = []
        for x in self.exchanges:
            if requests:
                out += [(x, f) for f in check_request(x.method, x.path, query=x.query, headers=x.headers,
                                                      body=x.body or None)]
            if answers and x.status:
                out += [(x, f) for f in check_response(x.method, x.path, x.status, body=x.answer or None,
                                                       query=x.query, content_type=x.content_type or "application/json")]
        return out


@dataclass
class Apds:
    sim: ApdsSimulator
    adapter: ApdsAdapter
    url: str
    recorder: Recorder

    def assert_conforms(self, *, requests: bool = True) -> None:
        """Every request (unless told), every answer and every webhook delivery so far validates."""
        found = [f"{x.method} {x.path} -> {x.status}: {f}" for x, f in self.recorder.findings(requests=requests)]
        found += [f"delivery {i}: {f}" for i, raw in enumerate(self.sim.webhooks.sent) for f in check_delivery(raw)]
        assert not found, "\n".join(found[:20])
        assert self.recorder.exchanges, "nothing was exchanged: the test proves nothing"


@asynccontextmanager
async def apds(token: str = TOKEN, world: World | None = None, **spec: Any) -> AsyncIterator[Apds]:
    """A running simulator (recorded) and an adapter pointed at its APDS root (page size 2: lists really page)."""
    sim = create_simulator(world or World(seed=11), "parcs-central", {"token": TOKEN})
    recorder = Recorder(sim.app)
    options = {"page_size": 2, **spec.pop("options", {})}
    async with serve(recorder) as url:
        adapter = ApdsAdapter(SystemSpec(
            id="parcs-central", kind=SystemKind.PARCS, dialect="apds", base_url=url + ROOT,
            credentials={"token": token, "webhook_secret": SECRET}, options=options, **spec,
        ))
        try:
            yield Apds(sim, adapter, url, recorder)
        finally:
            await adapter.aclose()
            await sim.webhooks.aclose()
