"""Hotel guests' cars are validated when they check in, with nobody at the front desk doing it.

A worker on the bus: each GUEST_CHECKED_IN event (the PMS's webhook, gateway/events/processor.py)
that names a car becomes a parking validation in the PARCS of the facility the hotel's garage
is (gateway/validation_grants.py), valid until the guest's departure plus a grace period. Every
replica sees every event; the validation's reference derives from the PMS reservation, so the
PARCS grants it once however many replicas (or redeliveries) try.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime

from adapters.errors import UpstreamError
from adapters.models import DomainEvent, EventType, SystemKind
from adapters.operation_models import VendorRefused, normalize_plate
from gateway.events.bus_consumer import BusConsumer
from gateway.runtime import Runtime
from gateway.validation_grants import DEFAULT_VALIDITY, DEPARTURE_GRACE, MAX_VALIDITY, grant

log = logging.getLogger("parkgate.events.guest_validations")

ATTEMPTS = 4


def reference_of(event: DomainEvent) -> str:
    stay = str(event.payload.get("reservation_id") or event.vendor_event_id)
    return "pms-" + hashlib.sha256(f"{event.system_id}\x00{stay}".encode()).hexdigest()[:32]


def validity(event: DomainEvent, now: datetime) -> tuple[datetime, datetime]:
    departs = event.payload.get("departs_at")
    until = None
    if isinstance(departs, str):
        try:
            until = datetime.fromisoformat(departs) + DEPARTURE_GRACE
        except ValueError:
            until = None
    if until is None or until <= now or until - now > MAX_VALIDITY:
        until = now + DEFAULT_VALIDITY
    return now, until


class GuestValidations(BusConsumer):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.granted = 0

    def wants(self, event: DomainEvent) -> bool:
        return event.type is EventType.GUEST_CHECKED_IN

    async def handle(self, event: DomainEvent) -> None:
        await self.validate(event)

    async def validate(self, event: DomainEvent) -> None:
        entry = self.runtime.directory.by_id.get(event.facility_id or "")
        car = event.payload.get("car_registration")
        if entry is None or SystemKind.PARCS not in entry.refs or not isinstance(car, str) or not car.strip():
            return  # a guest without a car, or a hotel whose garage parkgate does not run
        try:
            plate = normalize_plate(car)
        except ValueError:
            log.warning("guest stay %s: car registration is not a plate; no validation", event.vendor_event_id)
            return
        valid_from, valid_until = validity(event, datetime.now(UTC))
        name = event.payload.get("guest_name")
        for attempt in range(ATTEMPTS):
            try:
                await self.runtime.systems.track(entry.refs[SystemKind.PARCS].system_id, grant(
                    self.runtime, entry, plate=plate, valid_from=valid_from, valid_until=valid_until,
                    reference=reference_of(event), guest_name=name if isinstance(name, str) else None,
                    source=f"{event.system_id} reservation {event.payload.get('reservation_id')}"))
                self.granted += 1
                return
            except VendorRefused as exc:  # the PARCS said no: asking again will not change that
                log.warning("guest stay %s: %s refused the validation: %s", event.vendor_event_id, exc.system_id, exc.detail)
                return
            except UpstreamError as exc:
                if attempt == ATTEMPTS - 1:
                    log.error("guest stay %s: could not validate parking at %s: %s", event.vendor_event_id, entry.id, exc)
                    return
                await asyncio.sleep(0.5 * 2**attempt)
