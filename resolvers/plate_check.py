"""Plate checks: what an enforcement handheld asks at the kerb — may this car be parked here now?

One answer merged from everything the facility's PARCS knows about the plate, asked live and in
parallel (no cache: a payment made a minute ago must count): its permits, reservations,
validations and parking sessions with their payments. The verdict is the strongest right that
holds now, in this order:

    PERMITTED   an active permit
    RESERVED    a reservation whose window holds now (or that the car arrived for)
    VALIDATED   an active hotel or merchant validation
    PAID        an open session paid up (`paidUntil` not passed)
    GRACE       an open session inside its grace period or free tier: nothing owed yet
    UNPAID      an open session that owes money
    UNKNOWN     the PARCS knows nothing of the plate here

`rights` lists every right that matched, so the officer sees why.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated

import strawberry

from adapters.models import SystemKind
from adapters.operation_models import ParkingSession as DomainSession
from adapters.operation_models import (
    PermitStatus,
    ReservationStatus,
    SessionStatus,
    ValidationStatus,
)
from gateway.auth.scopes import Scope
from gateway.kernel.context import Info
from gateway.kernel.costs import cost
from gateway.kernel.permissions import needs
from gateway.kernel.pii import personal
from resolvers.payments import ParkingSession
from resolvers.writes import facility_or_zone, live_read, plate_of, system_of

#: a car that just entered has this long to pay or display before it counts as unpaid
ENTRY_GRACE = timedelta(minutes=10)
#: a reserved car may arrive this much before its window
EARLY_ARRIVAL = timedelta(minutes=30)


@strawberry.enum(description="The verdict of a plate check, strongest right first.")
class PlateVerdict(Enum):
    PERMITTED = "PERMITTED"
    RESERVED = "RESERVED"
    VALIDATED = "VALIDATED"
    PAID = "PAID"
    GRACE = "GRACE"
    UNPAID = "UNPAID"
    UNKNOWN = "UNKNOWN"


@strawberry.enum(description="What entitles a vehicle to park.")
class RightKind(Enum):
    PERMIT = "PERMIT"
    RESERVATION = "RESERVATION"
    VALIDATION = "VALIDATION"
    TRANSIENT = "TRANSIENT"


@strawberry.type(description="A right that matched the plate at the facility now.")
class MatchedRight:
    kind: RightKind = strawberry.field(description="PERMIT, RESERVATION, VALIDATION or TRANSIENT (a paid session).")
    id: strawberry.ID = strawberry.field(description="Gateway id of the permit, reservation, validation or session.")
    valid_from: datetime | None = strawberry.field(description="Since when it holds.")
    valid_until: datetime | None = strawberry.field(description="Until when it holds; null: open-ended.")
    description: str | None = strawberry.field(description="What it is, in words.")


@strawberry.type(description="The answer to a plate check.")
class PlateCheck:
    plate: str = strawberry.field(description="The plate as checked, normalized; masked without scope pii:read.")
    facility_id: strawberry.ID = strawberry.field(description="The facility checked.")
    verdict: PlateVerdict = strawberry.field(description="The strongest right that holds now, or what is wrong.")
    rights: list[MatchedRight] = strawberry.field(description="Every right that matched.")
    session: ParkingSession | None = strawberry.field(description="The car's open session, if the PARCS has one.")
    checked_at: datetime = strawberry.field(description="The instant the verdict is for.")


def verdict_of(rights: list[MatchedRight], session: DomainSession | None, now: datetime) -> PlateVerdict:
    kinds = {right.kind for right in rights}
    for kind, verdict in ((RightKind.PERMIT, PlateVerdict.PERMITTED), (RightKind.RESERVATION, PlateVerdict.RESERVED),
                          (RightKind.VALIDATION, PlateVerdict.VALIDATED), (RightKind.TRANSIENT, PlateVerdict.PAID)):
        if kind in kinds:
            return verdict
    if session is None:
        return PlateVerdict.UNKNOWN
    if session.amount_due.amount == 0 or now - session.entered_at <= ENTRY_GRACE:
        return PlateVerdict.GRACE
    return PlateVerdict.UNPAID


@strawberry.type
class PlateCheckQueries:
    @strawberry.field(description="Check a plate at a facility (or an enforcement zone) now: permits, reservations, "
                                  "validations and paid sessions merged into one verdict.",
                      directives=needs(Scope.ENFORCEMENT_READ) + cost(weight=4))
    async def plate_status(
        self, info: Info,
        plate: Annotated[str, strawberry.argument(description="The plate as read (case, spaces and dashes do not matter).")],
        facility_id: Annotated[strawberry.ID | None, strawberry.argument(description="The facility; or give `zoneId`.")] = None,
        zone_id: Annotated[str | None, strawberry.argument(description="The enforcement platform's zone code; or give `facilityId`.")] = None,
    ) -> PlateCheck | None:
        ctx = info.context
        normalized = plate_of(plate)
        entry = facility_or_zone(ctx, None if facility_id is None else str(facility_id), zone_id)
        ref = system_of(entry, SystemKind.PARCS, "plate checks")
        adapter = ctx.runtime.systems.parcs(ref.system_id)
        system_id = ref.system_id
        permits, reservations, validations, sessions = await asyncio.gather(
            live_read(ctx, system_id, adapter.permits(normalized)),
            live_read(ctx, system_id, adapter.reservations(normalized)),
            live_read(ctx, system_id, adapter.validations(normalized)),
            live_read(ctx, system_id, adapter.sessions(normalized)))
        now, here, fid = ctx.now, ref.vendor_id, entry.id
        rights = [MatchedRight(kind=RightKind.PERMIT, id=strawberry.ID(f"{fid}:{p.vendor_id}"), valid_from=p.valid_from,
                               valid_until=p.valid_until, description=p.description or "Permit")
                  for p in permits.items if p.vendor_facility_id == here and p.status is PermitStatus.ACTIVE]
        rights += [MatchedRight(kind=RightKind.RESERVATION, id=strawberry.ID(f"{fid}:{r.vendor_id}"), valid_from=r.starts_at,
                                valid_until=r.ends_at, description=f"Reservation ({r.status.value.lower()})")
                   for r in reservations.items if r.vendor_facility_id == here and (
                       r.status is ReservationStatus.ARRIVED
                       or (r.status is ReservationStatus.BOOKED and r.starts_at - EARLY_ARRIVAL <= now <= r.ends_at))]
        rights += [MatchedRight(kind=RightKind.VALIDATION, id=strawberry.ID(f"{fid}:{v.vendor_id}"), valid_from=v.valid_from,
                                valid_until=v.valid_until, description=f"Validated by {v.source or 'the hotel'}")
                   for v in validations.items if v.vendor_facility_id == here and v.status is ValidationStatus.ACTIVE
                   and v.valid_from <= now]
        open_sessions = sorted((s for s in sessions.items if s.vendor_facility_id == here and s.status is SessionStatus.OPEN),
                               key=lambda s: s.entered_at, reverse=True)
        session = open_sessions[0] if open_sessions else None
        if session is not None and session.paid_until is not None and session.paid_until >= now:
            rights.append(MatchedRight(kind=RightKind.TRANSIENT, id=strawberry.ID(f"{fid}:{session.vendor_id}"),
                                       valid_from=session.entered_at, valid_until=session.paid_until,
                                       description="Paid parking session"))
        return PlateCheck(plate=personal(normalized, ctx.principal) or "", facility_id=strawberry.ID(fid),
                          verdict=verdict_of(rights, session, now), rights=rights,
                          session=None if session is None else ParkingSession.of(ctx, fid, session), checked_at=now)
