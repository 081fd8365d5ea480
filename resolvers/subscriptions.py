"""Subscriptions: DomainEvents from the bus, filtered by arguments and by the client's facilities.

Each field is an async generator over `runtime.bus.subscribe()`. The transport
(gateway/events/subscriptions_http.py) shares one source and one execution per event between
identical subscriptions (same document, variables, scopes and facilities), so what a generator
yields may depend on the principal's scopes and facilities, and on nothing else of the client.
Scopes are checked when subscribing (and again per event, by the `needs(...)` guard).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry

from adapters.models import DomainEvent, EventType
from gateway.auth.scopes import Scope
from gateway.kernel.context import Info
from gateway.kernel.permissions import needs
from gateway.kernel.pii import personal


@strawberry.enum(description="Vehicle movements at a facility's gates.")
class VehicleEventType(Enum):
    ENTRY = strawberry.enum_value("ENTRY", description="A vehicle entered.")
    EXIT = strawberry.enum_value("EXIT", description="A vehicle left.")


@strawberry.enum(description="What happened to a reservation.")
class ReservationEventType(Enum):
    CREATED = strawberry.enum_value("CREATED", description="The reservation was made.")
    ARRIVED = strawberry.enum_value("ARRIVED", description="The driver arrived.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="The reservation was cancelled.")


@strawberry.enum(description="What happened to a hotel guest.")
class GuestEventType(Enum):
    BOOKED = strawberry.enum_value("BOOKED", description="The guest booked parking.")
    CHECKED_IN = strawberry.enum_value("CHECKED_IN", description="The guest checked in.")
    CHECKED_OUT = strawberry.enum_value("CHECKED_OUT", description="The guest checked out.")


@strawberry.enum(description="What happened to a citation.")
class EnforcementEventType(Enum):
    CITATION_ISSUED = strawberry.enum_value("CITATION_ISSUED", description="A citation was issued.")
    CITATION_UPDATED = strawberry.enum_value("CITATION_UPDATED", description="A citation changed (paid, voided…).")


@strawberry.type(description="A facility's (or zone's) occupancy changed.")
class OccupancyUpdate:
    event_id: str = strawberry.field(description="The gateway's id of this event.")
    facility_id: str = strawberry.field(description="The facility.")
    zone_id: str | None = strawberry.field(description="The zone, when the figure is a zone's; null for the whole facility.")
    source: str = strawberry.field(description="Id of the system that reported it.")
    occupied: int | None = strawberry.field(description="Vehicles present.")
    free: int | None = strawberry.field(description="Free spaces as reported.")
    capacity: int | None = strawberry.field(description="Spaces in total.")
    observed_at: datetime | None = strawberry.field(description="When the system measured it.")
    received_at: datetime = strawberry.field(description="When the gateway received it.")


@strawberry.interface(description="What every live event carries: its id, where, who said so, and when.")
class Event:
    event_id: str = strawberry.field(description="The gateway's id of this event.")
    facility_id: str = strawberry.field(description="The facility.")
    source: str = strawberry.field(description="Id of the system that reported it.")
    occurred_at: datetime | None = strawberry.field(description="When it happened.")


@strawberry.type(description="A vehicle entered or left a facility.")
class VehicleEvent(Event):
    type: VehicleEventType = strawberry.field(description="ENTRY or EXIT.")
    zone_id: str | None = strawberry.field(description="The zone or lane, when known.")
    plate: str | None = strawberry.field(description="The licence plate; masked without the pii:read scope.")
    region: str | None = strawberry.field(description="The plate's issuing region, when read.")


@strawberry.type(description="A reservation was made, arrived or cancelled.")
class ReservationEvent(Event):
    type: ReservationEventType = strawberry.field(description="What happened.")
    reservation_id: str | None = strawberry.field(description="The reservation's id in that system.")
    plate: str | None = strawberry.field(description="The booked plate; masked without the pii:read scope.")


@strawberry.type(description="A hotel guest booked parking, checked in or out.")
class GuestEvent(Event):
    type: GuestEventType = strawberry.field(description="What happened.")
    guest_name: str | None = strawberry.field(description="The guest; masked without the pii:read scope.")
    car_registration: str | None = strawberry.field(description="The guest's plate; masked without the pii:read scope.")


@strawberry.type(description="A citation was issued or changed.")
class EnforcementEvent(Event):
    type: EnforcementEventType = strawberry.field(description="What happened.")
    zone_id: str | None = strawberry.field(description="The enforcement zone, when known.")
    citation_number: str | None = strawberry.field(description="The citation's number.")
    violation_code: str | None = strawberry.field(description="The violation, in the system's code.")
    plate: str | None = strawberry.field(description="The cited plate; masked without the pii:read scope.")


def _str(payload: dict[str, object], key: str) -> str | None:
    value = payload.get(key)
    return None if value is None else str(value)


def _int(payload: dict[str, object], key: str) -> int | None:
    value = payload.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _events(info: Info, types: frozenset[EventType], facility_id: str | None,
                  keep: Callable[[DomainEvent], bool] = lambda event: True) -> AsyncGenerator[DomainEvent, None]:
    """Events of these types at facilities the client may see (and `facility_id`, when given)."""
    principal = info.context.principal
    stream = info.context.runtime.bus.subscribe()
    try:
        async for event in stream:
            if event.type not in types or event.facility_id is None or not principal.sees(event.facility_id):
                continue
            if facility_id is not None and event.facility_id != facility_id:
                continue
            if keep(event):
                yield event
    finally:
        await stream.aclose()


FacilityArg = Annotated[str | None, strawberry.argument(description="Only this facility; omit for every facility the client may see.")]

VEHICLE_TYPES = {EventType.VEHICLE_ENTERED: VehicleEventType.ENTRY, EventType.VEHICLE_EXITED: VehicleEventType.EXIT}
RESERVATION_TYPES = {EventType.RESERVATION_CREATED: ReservationEventType.CREATED,
                     EventType.RESERVATION_ARRIVED: ReservationEventType.ARRIVED,
                     EventType.RESERVATION_CANCELLED: ReservationEventType.CANCELLED}
GUEST_TYPES = {EventType.GUEST_BOOKED: GuestEventType.BOOKED, EventType.GUEST_CHECKED_IN: GuestEventType.CHECKED_IN,
               EventType.GUEST_CHECKED_OUT: GuestEventType.CHECKED_OUT}
ENFORCEMENT_TYPES = {EventType.CITATION_ISSUED: EnforcementEventType.CITATION_ISSUED,
                     EventType.CITATION_UPDATED: EnforcementEventType.CITATION_UPDATED}


@strawberry.type(description="Live events: over WebSocket (graphql-transport-ws or graphql-ws) at /graphql, or SSE at /graphql/stream.")
class Subscription:
    @strawberry.subscription(description="Occupancy changes at a facility (or one of its zones).",
                             directives=needs(Scope.OCCUPANCY_READ))
    async def occupancy_changed(
        self, info: Info, facility_id: Annotated[str, strawberry.argument(description="The facility.")],
        zone_id: Annotated[str | None, strawberry.argument(description="Only this zone; omit for every figure of the facility.")] = None,
    ) -> AsyncGenerator[OccupancyUpdate, None]:
        keep = (lambda event: event.zone_id == zone_id) if zone_id is not None else (lambda event: True)
        async for e in _events(info, frozenset({EventType.OCCUPANCY_CHANGED}), facility_id, keep):
            p = e.payload
            yield OccupancyUpdate(event_id=e.id, facility_id=e.facility_id or "", zone_id=e.zone_id, source=e.system_id,
                                  occupied=_int(p, "occupied"), free=_int(p, "free"), capacity=_int(p, "capacity"),
                                  observed_at=e.occurred_at, received_at=e.received_at)

    @strawberry.subscription(description="Vehicles entering and leaving; plates masked without pii:read.",
                             directives=needs(Scope.ENFORCEMENT_READ))
    async def vehicle_events(
        self, info: Info, facility_id: FacilityArg = None,
        types: Annotated[list[VehicleEventType] | None, strawberry.argument(description="Only these movements; omit for both.")] = None,
    ) -> AsyncGenerator[VehicleEvent, None]:
        wanted = frozenset(t for t, v in VEHICLE_TYPES.items() if types is None or v in types)
        principal = info.context.principal
        async for e in _events(info, wanted, facility_id):
            p = e.payload
            yield VehicleEvent(event_id=e.id, type=VEHICLE_TYPES[e.type], facility_id=e.facility_id or "", zone_id=e.zone_id,
                               source=e.system_id, plate=personal(_str(p, "plate"), principal), region=_str(p, "region"),
                               occurred_at=e.occurred_at)

    @strawberry.subscription(description="Reservations made, arrived or cancelled.", directives=needs(Scope.RESERVATIONS_READ))
    async def reservation_events(self, info: Info, facility_id: FacilityArg = None) -> AsyncGenerator[ReservationEvent, None]:
        principal = info.context.principal
        async for e in _events(info, frozenset(RESERVATION_TYPES), facility_id):
            p = e.payload
            yield ReservationEvent(event_id=e.id, type=RESERVATION_TYPES[e.type], facility_id=e.facility_id or "",
                                   source=e.system_id, reservation_id=_str(p, "reservation_id"),
                                   plate=personal(_str(p, "plate"), principal), occurred_at=e.occurred_at)

    @strawberry.subscription(description="Hotel guests booking parking, checking in and out.", directives=needs(Scope.HOSPITALITY_READ))
    async def guest_events(self, info: Info, facility_id: FacilityArg = None) -> AsyncGenerator[GuestEvent, None]:
        principal = info.context.principal
        async for e in _events(info, frozenset(GUEST_TYPES), facility_id):
            p = e.payload
            yield GuestEvent(event_id=e.id, type=GUEST_TYPES[e.type], facility_id=e.facility_id or "", source=e.system_id,
                             guest_name=personal(_str(p, "guest_name"), principal),
                             car_registration=personal(_str(p, "car_registration"), principal), occurred_at=e.occurred_at)

    @strawberry.subscription(description="Citations issued and changed; plates masked without pii:read.",
                             directives=needs(Scope.ENFORCEMENT_READ))
    async def enforcement_events(self, info: Info, facility_id: FacilityArg = None) -> AsyncGenerator[EnforcementEvent, None]:
        principal = info.context.principal
        async for e in _events(info, frozenset(ENFORCEMENT_TYPES), facility_id):
            p = e.payload
            yield EnforcementEvent(event_id=e.id, type=ENFORCEMENT_TYPES[e.type], facility_id=e.facility_id or "",
                                   zone_id=e.zone_id, source=e.system_id, citation_number=_str(p, "citation_number"),
                                   violation_code=_str(p, "violation_code"), plate=personal(_str(p, "plate"), principal),
                                   occurred_at=e.occurred_at)


__all__: list[Any] = ["Subscription"]
