"""One trace from a caller's `traceparent` through the GraphQL operation and its resolver groups to
the vendor calls, and on to the simulated vendors, which see the same trace id
(gateway/observability/tracing.py). Spans are read with the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.models import DomainEvent, EventType
from gateway.auth.clients import Client, MemoryClientStore
from gateway.auth.keys import Environment
from gateway.config import TracingConfig
from gateway.events.bus import MemoryBus
from gateway.events.endpoints_store import MemoryWebhookStore
from gateway.events.outbound import OutboundWebhooks
from gateway.observability.tracing import Tracing
from gateway.sandbox import Sandbox, build_sandbox
from tests.support.servers import bound_socket, serve
from tests.support.waiting import wait_until

QUERY = 'query Occupancy { facility(id: "berlin-hbf") { occupancy { free counted { occupied } sensed { occupied } } } }'


@dataclass
class Traced:
    url: str
    sandbox: Sandbox
    http: httpx.AsyncClient
    spans: InMemorySpanExporter

    async def ask(self, traceparent: str, query: str = QUERY) -> dict[str, Any]:
        key = self.sandbox.clients["admin"]["key"]
        response = await self.http.post(f"{self.url}/graphql", json={"query": query},
                                        headers={"authorization": f"Bearer {key}", "traceparent": traceparent})
        assert response.status_code == 200, response.text
        return response.json()

    def vendor_traceparents(self) -> list[str]:
        """The `traceparent` of every request the simulated vendors received, in order."""
        return [value for sim in self.sandbox.simulators.values() for seen in sim.control.recent
                for name, value in seen.headers if name == "traceparent"]


@pytest_asyncio.fixture(loop_scope="session")
async def traced() -> AsyncIterator[Traced]:
    """A sandbox with tracing on and no new trace ever sampled: only a caller's sampled trace is recorded."""
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, polling=False, observability={"tracing": {"enabled": True, "sample_ratio": 0}})
    tracing = sandbox.runtime.observability.tracing
    assert tracing is not None
    exporter = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with serve(app, sock), httpx.AsyncClient(timeout=30) as http:
        yield Traced(url, sandbox, http, exporter)


def traceparent(sampled: bool) -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}", trace_id, parent_id


def hex_id(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


async def test_one_trace_from_the_caller_through_resolvers_to_the_vendors(traced: Traced) -> None:
    header, trace_id, parent_id = traceparent(sampled=True)
    for sim in traced.sandbox.simulators.values():
        sim.control.reset_stats()
    traced.spans.clear()
    answer = await traced.ask(header)
    assert answer["data"]["facility"]["occupancy"]["free"] is not None, answer
    spans: list[ReadableSpan] = [s for s in traced.spans.get_finished_spans() if hex_id(s.context.trace_id, 32) == trace_id]
    assert {hex_id(s.context.trace_id, 32) for s in traced.spans.get_finished_spans()} == {trace_id}
    by_id = {s.context.span_id: s for s in spans}

    def parent_of(span: ReadableSpan) -> ReadableSpan | None:
        return by_id.get(span.parent.span_id) if span.parent is not None else None

    (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert server.parent is not None and hex_id(server.parent.span_id, 16) == parent_id and server.parent.is_remote
    (operation,) = [s for s in spans if s.name == "query Occupancy"]
    assert parent_of(operation) is server
    assert operation.attributes is not None
    assert operation.attributes["parkgate.client"] == traced.sandbox.clients["admin"]["id"]
    assert operation.attributes["parkgate.cost"] >= 1
    fetches = [s for s in spans if s.name.startswith("fetch ")]
    assert fetches and all(parent_of(s) is operation for s in fetches)
    calls = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert {s.attributes["parkgate.system"] for s in calls if s.attributes} >= {"parcs-central", "guidance"}
    assert all(parent_of(call) in fetches for call in calls)
    # the vendors were told: the same trace, each call's own span as their parent
    seen = traced.vendor_traceparents()
    assert seen and all(value.split("-")[1] == trace_id and value.endswith("-01") for value in seen)
    assert {value.split("-")[2] for value in seen} <= {hex_id(call.context.span_id, 16) for call in calls}


async def test_an_unsampled_caller_is_not_recorded_but_its_trace_reaches_the_vendors(traced: Traced) -> None:
    header, trace_id, _ = traceparent(sampled=False)
    for sim in traced.sandbox.simulators.values():
        sim.control.reset_stats()
    traced.spans.clear()
    await traced.ask(header, QUERY.replace("Occupancy", "Unsampled"))
    assert traced.spans.get_finished_spans() == ()
    seen = traced.vendor_traceparents()
    assert seen and all(value.split("-")[1] == trace_id and value.endswith("-00") for value in seen)


async def test_a_partner_webhook_continues_the_trace_of_the_event_behind_it(traced: Traced) -> None:
    """An event published while a traced request was served keeps its `traceparent`; the delivery to
    a partner is a CLIENT span in that trace and the partner receives the trace context."""
    header, trace_id, parent_id = traceparent(sampled=True)
    received: list[dict[str, str]] = []

    async def hook(request: Request) -> Response:
        received.append(dict(request.headers))
        return Response(status_code=204)

    clients = MemoryClientStore()
    partner = Client(id=f"cl_{secrets.token_hex(4)}", name="partner", environment=Environment.TEST,
                     scopes=frozenset({"webhooks:write", "enforcement:read"}), facilities=None, created_at=datetime.now(UTC))
    await clients.save_client(partner)
    hooks = OutboundWebhooks(traced.sandbox.config, MemoryBus(), clients, store=MemoryWebhookStore(), poll_s=0.02,
                             observability=traced.sandbox.runtime.observability)
    traced.spans.clear()
    async with serve(Starlette(routes=[Route("/hooks", hook, methods=["POST"])])) as url:
        await hooks.start()
        try:
            await hooks.register("test", partner.id, f"{url}/hooks", ["VEHICLE_ENTERED"])
            now = datetime.now(UTC)
            await hooks.bus.publish(DomainEvent(id=f"ev_{secrets.token_hex(6)}", type=EventType.VEHICLE_ENTERED,
                                                system_id="enforcement", facility_id="berlin-hbf", occurred_at=now,
                                                received_at=now, vendor_event_id=secrets.token_hex(4),
                                                payload={"plate": "B-XY 1234"}, traceparent=header))
            await wait_until(lambda: bool(received))
        finally:
            await hooks.stop()
    (delivery,) = [s for s in traced.spans.get_finished_spans() if s.name == "webhook VEHICLE_ENTERED"]
    assert hex_id(delivery.context.trace_id, 32) == trace_id and delivery.kind is SpanKind.CLIENT
    assert delivery.parent is not None and hex_id(delivery.parent.span_id, 16) == parent_id
    assert received[0]["traceparent"] == f"00-{trace_id}-{hex_id(delivery.context.span_id, 16)}-01"


def test_new_traces_are_sampled_at_the_configured_ratio() -> None:
    """Requests without a traceparent start a recorded trace at `sample_ratio` (here 0.25 of 2000:
    500 expected; 400 to 600 holds but once in millions of runs), and nothing else is recorded."""
    tracing = Tracing.from_config(TracingConfig(enabled=True, sample_ratio=0.25))
    exporter = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    for _ in range(2000):
        if tracing.sampled_root():
            with tracing.server_span("GET /graphql", None) as span:
                assert span is not None and span.is_recording()
    assert 400 <= len(exporter.get_finished_spans()) <= 600
