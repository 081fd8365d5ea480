"""Reservations: book a space for a window at a facility's PARCS, change it, cancel it, look it up.

Every mutation takes an `idempotencyKey` (resolvers/writes.py): a retry returns the first
result and books nothing twice. A reservation's id is `<facility id>:<PARCS id>`; lookups check
that the PARCS record really is at that facility, so an id cannot reach past a client's tenancy.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, TypeAlias

import strawberry

from adapters.models import DomainEvent, EventType, SystemKind
from adapters.models import Money as DomainMoney
from adapters.operation_models import Reservation as DomainReservation
from adapters.operation_models import ReservationChange, ReservationRequest
from adapters.operation_models import ReservationStatus as DomainStatus
from gateway.auth.scopes import Scope
from gateway.codec import dump, load
from gateway.directory import FacilityEntry, SystemRef
from gateway.errors import bad_input
from gateway.events.processor import domain_event_id
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.costs import list_size
from gateway.kernel.permissions import needs
from gateway.kernel.pii import personal
from gateway.systems import RESERVATIONS
from resolvers.common import Money, PageInfo, offset_page
from resolvers.rates import check_window
from resolvers.writes import (
    aware,
    idempotent,
    parcs_record,
    parcs_records,
    plate_of,
    system_of,
    text_of,
    vendor_call,
    visible_facility,
)

ReservationStatus: TypeAlias = DomainStatus  # the domain enum, made a GraphQL enum in place (see resolvers/common.py)
strawberry.enum(
    ReservationStatus,
    description="BOOKED (confirmed, not arrived), ARRIVED (the car entered in its window), COMPLETED (it left), "
                "CANCELLED, NO_SHOW (the window ended without the car).",
)

IdempotencyKey = Annotated[str, strawberry.argument(
    description="A key of your choosing (a UUID), unique per intended change: a retry with the same key returns the "
                "first result and changes nothing twice; the same key with a different request is a CONFLICT.")]


@strawberry.type(description="A reservation at a facility, as its PARCS holds it.")
class Reservation:
    id: strawberry.ID = strawberry.field(description="Gateway id: `<facility id>:<id in the PARCS>`.")
    facility_id: strawberry.ID = strawberry.field(description="The facility.")
    plate: str = strawberry.field(description="The booked plate, normalized; masked without scope pii:read.")
    start: datetime = strawberry.field(description="Start of the window (UTC).")
    end: datetime = strawberry.field(description="End of the window (UTC).")
    status: ReservationStatus = strawberry.field(description="Where the reservation stands.")
    price: Money = strawberry.field(description="Price of the window, decimal string with currency.")
    paid: bool = strawberry.field(description="True once it has been paid (in advance or at the exit).")
    customer_name: str | None = strawberry.field(description="Who booked, where given; masked without scope pii:read.")
    arrived_at: datetime | None = strawberry.field(description="When the car entered, once it has.")
    created_at: datetime = strawberry.field(description="When it was booked.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    version: int = strawberry.field(description="The PARCS's version of the record; it grows with every change.")

    @classmethod
    def of(cls, ctx: RequestContext, facility_id: str, r: DomainReservation) -> Reservation:
        principal = ctx.principal
        return cls(id=strawberry.ID(f"{facility_id}:{r.vendor_id}"), facility_id=strawberry.ID(facility_id),
                   plate=personal(r.plate, principal) or "", start=r.starts_at, end=r.ends_at,
                   status=r.status, price=Money.of(r.price),
                   paid=r.paid, customer_name=personal(r.customer_name, principal), arrived_at=r.arrived_at,
                   created_at=r.created_at, updated_at=r.updated_at, version=r.version)


@strawberry.type(description="One reservation in a list.")
class ReservationEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this reservation.")
    node: Reservation = strawberry.field(description="The reservation.")


@strawberry.type(description="A page of reservations.")
class ReservationConnection:
    edges: list[ReservationEdge] = strawberry.field(description="The reservations of this page.")
    page_info: PageInfo = strawberry.field(description="Paging.")
    total_count: int = strawberry.field(description="Reservations matching the filter, on every page.")


@strawberry.input(description="A reservation to make: from a quote, or for a facility and window directly.")
class CreateReservationInput:
    plate: str = strawberry.field(description="The car's plate (case, spaces and dashes do not matter).")
    quote_id: str | None = strawberry.field(default=None, description="`Quote.id` from `Facility.quote`: books that facility, window and price, until the quote expires.")
    facility_id: strawberry.ID | None = strawberry.field(default=None, description="The facility (without a quote).")
    start: datetime | None = strawberry.field(default=None, description="Start of the window (without a quote).")
    end: datetime | None = strawberry.field(default=None, description="End of the window (without a quote).")
    customer_name: str | None = strawberry.field(default=None, description="Who is booking, up to 200 characters.")


@strawberry.input(description="Changes to a reservation; fields left out stay as they are.")
class ModifyReservationInput:
    start: datetime | None = strawberry.field(default=None, description="New start of the window.")
    end: datetime | None = strawberry.field(default=None, description="New end of the window.")
    plate: str | None = strawberry.field(default=None, description="New plate.")


def _stored(facility_id: str, reservation: DomainReservation) -> dict[str, Any]:
    return {"facility_id": facility_id, "reservation": dump(reservation)}


def _answer(ctx: RequestContext, stored: dict[str, Any]) -> Reservation:
    return Reservation.of(ctx, stored["facility_id"], load(DomainReservation, stored["reservation"]))


async def _publish(ctx: RequestContext, kind: EventType, entry: FacilityEntry, ref: SystemRef,
                   r: DomainReservation) -> None:
    await ctx.runtime.bus.publish(DomainEvent(
        id=domain_event_id(ref.system_id, f"{r.vendor_id}:{kind.value}", 1), type=kind, system_id=ref.system_id,
        facility_id=entry.id, occurred_at=r.updated_at, received_at=ctx.now, vendor_event_id=f"{r.vendor_id}:{kind.value}",
        payload={"reservation_id": r.vendor_id, "plate": r.plate},
    ))


async def find_reservation(ctx: RequestContext, reservation_id: str,
                           argument: str = "id") -> tuple[FacilityEntry, SystemRef, DomainReservation]:
    """The reservation behind a gateway id, if the client may see its facility; NOT_FOUND otherwise."""
    return await parcs_record(ctx, reservation_id, "reservation",
                              lambda adapter, vendor_id: adapter.reservation(vendor_id), argument)


@strawberry.type
class ReservationQueries:
    @strawberry.field(description="One reservation by id.", directives=needs(Scope.RESERVATIONS_READ))
    async def reservation(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")]) -> Reservation | None:
        entry, _, reservation = await find_reservation(info.context, str(id))
        return Reservation.of(info.context, entry.id, reservation)

    @strawberry.field(description="Reservations at the facilities this client may see, soonest first.",
                      directives=needs(Scope.RESERVATIONS_READ) + list_size(slicing_arguments=["first"], sized_fields=["edges"]))
    async def reservations(
        self, info: Info,
        facility_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only this facility.")] = None,
        plate: Annotated[str | None, strawberry.argument(description="Only this plate.")] = None,
        status: Annotated[ReservationStatus | None, strawberry.argument(description="Only reservations in this state.")] = None,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 20,
        after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
    ) -> ReservationConnection | None:
        ctx = info.context
        entries = [visible_facility(ctx, str(facility_id))] if facility_id is not None else ctx.visible_entries()
        wanted = None if plate is None else plate_of(plate)
        found = [(facility, r) for facility, r in await parcs_records(ctx, entries, RESERVATIONS, wanted, info)
                 if status is None or r.status is status]
        found.sort(key=lambda item: (item[1].starts_at, item[0], item[1].vendor_id))
        edges, page_info = offset_page("reservations", found, first, after)
        return ReservationConnection(
            edges=[ReservationEdge(cursor=cursor, node=Reservation.of(ctx, facility, r)) for cursor, (facility, r) in edges],
            page_info=page_info, total_count=len(found))


@strawberry.type
class ReservationMutations:
    @strawberry.mutation(description="Book a space: from a quote (its price is kept), or for a facility and window. "
                                     "No space in the window is a CONFLICT with `extensions.reason` (FULLY_BOOKED, CLOSED…).",
                         directives=needs(Scope.RESERVATIONS_WRITE))
    async def create_reservation(
        self, info: Info,
        input: Annotated[CreateReservationInput, strawberry.argument(description="The reservation.")],
        idempotency_key: IdempotencyKey,
    ) -> Reservation | None:
        ctx = info.context
        plate = plate_of(input.plate, "input.plate")
        customer = text_of(input.customer_name, "input.customerName")
        expected: DomainMoney | None = None
        if input.quote_id is not None:
            quoted = ctx.runtime.quote_tokens.read(input.quote_id)
            if quoted is None:
                raise bad_input("`input.quoteId` is not a quote id this gateway issued.", argument="input.quoteId")
            if quoted.expires_at <= ctx.now:
                raise bad_input("The quote has expired; ask for a new one.", argument="input.quoteId", reason="QUOTE_EXPIRED")
            for name, given, quoted_value in (("facilityId", input.facility_id, quoted.facility_id),
                                              ("start", input.start, quoted.starts_at), ("end", input.end, quoted.ends_at)):
                if given is not None and given != quoted_value:
                    raise bad_input(f"`input.{name}` differs from the quote's; leave it out or ask for a new quote.",
                                    argument=f"input.{name}")
            facility_id, start, end = quoted.facility_id, quoted.starts_at, quoted.ends_at
            expected = DomainMoney(quoted.amount, quoted.currency)
        else:
            if input.facility_id is None or input.start is None or input.end is None:
                raise bad_input("Give `input.quoteId`, or `input.facilityId`, `input.start` and `input.end`.",
                                argument="input")
            facility_id, start, end = str(input.facility_id), input.start, input.end
        check_window(start, end, ctx.now)
        entry = visible_facility(ctx, facility_id, "input.facilityId")
        ref = system_of(entry, SystemKind.PARCS, "reservations")
        arguments = {"facility": facility_id, "start": start.isoformat(), "end": end.isoformat(), "plate": plate,
                     "customer": customer, "price": None if expected is None else [str(expected.amount), expected.currency]}

        async def book(reference: str) -> dict[str, Any]:
            adapter = ctx.runtime.systems.parcs(ref.system_id)
            request = ReservationRequest(ref.vendor_id, plate, start, end, reference, customer, expected)
            reservation = await vendor_call(ctx, ref.system_id, adapter.create_reservation(request))
            await _publish(ctx, EventType.RESERVATION_CREATED, entry, ref, reservation)
            return _stored(entry.id, reservation)

        return _answer(ctx, await idempotent(ctx, "createReservation", idempotency_key, arguments, book))

    @strawberry.mutation(description="Move a BOOKED reservation's window or change its plate; the PARCS re-checks "
                                     "availability and re-prices.", directives=needs(Scope.RESERVATIONS_WRITE))
    async def modify_reservation(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")],
        input: Annotated[ModifyReservationInput, strawberry.argument(description="What changes.")],
        idempotency_key: IdempotencyKey,
    ) -> Reservation | None:
        ctx = info.context
        plate = None if input.plate is None else plate_of(input.plate, "input.plate")
        if input.start is None and input.end is None and plate is None:
            raise bad_input("Nothing to change: give `start`, `end` or `plate`.", argument="input")
        for name, value in (("input.start", input.start), ("input.end", input.end)):
            if value is not None:
                aware(value, name)
        arguments = {"id": str(id), "start": input.start and input.start.isoformat(),
                     "end": input.end and input.end.isoformat(), "plate": plate}

        async def change(reference: str) -> dict[str, Any]:
            entry, ref, current = await find_reservation(ctx, str(id))
            start, end = input.start or current.starts_at, input.end or current.ends_at
            if end <= start or end - start > timedelta(days=30):
                raise bad_input("The new window must end after it starts and last at most 30 days.", argument="input")
            adapter = ctx.runtime.systems.parcs(ref.system_id)
            changed = await vendor_call(ctx, ref.system_id, adapter.modify_reservation(
                current.vendor_id, ReservationChange(input.start, input.end, plate)))
            return _stored(entry.id, changed)

        return _answer(ctx, await idempotent(ctx, "modifyReservation", idempotency_key, arguments, change))

    @strawberry.mutation(description="Cancel a BOOKED reservation (cancelling a cancelled one returns it as it is).",
                         directives=needs(Scope.RESERVATIONS_WRITE))
    async def cancel_reservation(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")],
        idempotency_key: IdempotencyKey,
    ) -> Reservation | None:
        ctx = info.context

        async def cancel(reference: str) -> dict[str, Any]:
            entry, ref, current = await find_reservation(ctx, str(id))
            adapter = ctx.runtime.systems.parcs(ref.system_id)
            cancelled = await vendor_call(ctx, ref.system_id, adapter.cancel_reservation(current.vendor_id))
            if current.status is not DomainStatus.CANCELLED:
                await _publish(ctx, EventType.RESERVATION_CANCELLED, entry, ref, cancelled)
            return _stored(entry.id, cancelled)

        return _answer(ctx, await idempotent(ctx, "cancelReservation", idempotency_key, {"id": str(id)}, cancel))
