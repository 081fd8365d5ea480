"""The day's curve: each facility-level OCCUPANCY_CHANGED event on the bus becomes a sample of the
occupancy history (gateway/occupancy_history.py), whether a webhook or a poll produced it.

A worker on the bus (gateway/events/bus_consumer.py), as gateway/events/guest_validations.py is. Zones' figures are not kept: the
history charts facilities. A history store that cannot be written (Redis down) loses that sample,
logged once per outage; the live path does not wait for it.
"""

from __future__ import annotations

import logging

from adapters.models import DomainEvent, EventType
from gateway.events.bus_consumer import BusConsumer
from gateway.occupancy_history import Sample
from gateway.runtime import Runtime

log = logging.getLogger("parkgate.events.occupancy_recorder")


def _count(event: DomainEvent, name: str) -> int | None:
    value = event.payload.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def sample_of(event: DomainEvent) -> Sample:
    occupied, free, capacity = _count(event, "occupied"), _count(event, "free"), _count(event, "capacity")
    if free is None and occupied is not None and capacity is not None:
        free = max(0, capacity - occupied)
    return Sample(at=event.occurred_at or event.received_at, event_id=event.id, source=event.system_id,
                  occupied=occupied, free=free, capacity=capacity)


class OccupancyRecorder(BusConsumer):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.recorded = 0
        self._failing = False

    def wants(self, event: DomainEvent) -> bool:
        return event.type is EventType.OCCUPANCY_CHANGED and bool(event.facility_id) and event.zone_id is None

    async def handle(self, event: DomainEvent) -> None:
        await self.record(event)

    async def record(self, event: DomainEvent) -> None:
        assert event.facility_id is not None
        try:
            await self.runtime.history.record(event.facility_id, sample_of(event))
        except Exception as exc:  # noqa: BLE001 - a store outage: this sample is lost, the live path goes on
            if not self._failing:
                log.warning("occupancy history cannot be written (%s: %s); samples are lost until it can",
                            type(exc).__name__, exc)
            self._failing = True
            return
        self._failing = False
        self.recorded += 1
