"""The bus as observed: every event published is counted by type and system
(`parkgate_events_total`; its rate is events per second), and an event published while a traced
request is served carries that request's `traceparent`, so the partners' webhooks it causes join
the trace (gateway/events/outbound.py)."""

from __future__ import annotations

from dataclasses import replace

from adapters.models import DomainEvent
from gateway.events.bus import BusSubscription, EventBus
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.tracing import Tracing


class ObservedBus(EventBus):
    """`bus`, with each publish counted (and stamped with the trace context when tracing is on)."""

    def __init__(self, bus: EventBus, metrics: GatewayMetrics, tracing: Tracing | None) -> None:
        self.bus = bus
        self.metrics = metrics
        self.tracing = tracing

    async def publish(self, event: DomainEvent) -> None:
        self.metrics.events.child(event.type.value, event.system_id).inc()
        if self.tracing is not None and event.traceparent is None:
            traceparent = self.tracing.current_traceparent()
            if traceparent is not None:
                event = replace(event, traceparent=traceparent)
        await self.bus.publish(event)

    def subscribe(self) -> BusSubscription:
        return self.bus.subscribe()

    async def start(self) -> None:
        await self.bus.start()

    async def aclose(self) -> None:
        await self.bus.aclose()
