"""Parking sessions and payments: what a car owes at a facility, and paying it by processor token.

Only payment processors' tokens cross the gateway. A card number anywhere in a request never gets
here: the edge refuses it before anything runs (gateway/card_screen.py), with BAD_USER_INPUT naming
the argument, and the value goes nowhere — not to the vendor, the idempotency store, the logs, or
the error message.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeAlias

import strawberry

from adapters.models import Money as DomainMoney
from adapters.models import SystemKind
from adapters.operation_models import ParkingSession as DomainSession
from adapters.operation_models import Payment as DomainPayment
from adapters.operation_models import PaymentRequest
from adapters.operation_models import PaymentTarget as DomainTarget
from adapters.operation_models import SessionStatus as DomainSessionStatus
from gateway.auth.scopes import Scope
from gateway.codec import dump, load
from gateway.directory import FacilityEntry, SystemRef
from gateway.errors import bad_input
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.costs import list_size
from gateway.kernel.permissions import needs
from gateway.kernel.pii import personal
from resolvers.common import Money
from resolvers.reservations import IdempotencyKey, find_reservation
from resolvers.writes import idempotent, live_read, parcs_record, plate_of, system_of, vendor_call, visible_facility

# Aliases of the domain enums, made GraphQL enums in place (see resolvers/common.py).
SessionStatus: TypeAlias = DomainSessionStatus
strawberry.enum(SessionStatus, description="OPEN while the car is inside, CLOSED once it left.")
PaymentTarget: TypeAlias = DomainTarget
strawberry.enum(PaymentTarget, description="What a payment paid for.")

_AMOUNT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-:.]{6,255}")


@strawberry.input(description="An amount of money: a decimal string (never a float) and an ISO 4217 currency.")
class MoneyInput:
    amount: str = strawberry.field(description="Decimal amount in the major unit with at most two decimals, e.g. \"7.50\".")
    currency: str = strawberry.field(description="ISO 4217 code; must be the facility's currency.")


@strawberry.type(description="A car's stay at a facility, from its PARCS.")
class ParkingSession:
    id: strawberry.ID = strawberry.field(description="Gateway id: `<facility id>:<id in the PARCS>`.")
    facility_id: strawberry.ID = strawberry.field(description="The facility.")
    plate: str = strawberry.field(description="The plate read at entry; masked without scope pii:read.")
    entered_at: datetime = strawberry.field(description="When the car entered.")
    exited_at: datetime | None = strawberry.field(description="When it left; null while inside.")
    status: SessionStatus = strawberry.field(description="OPEN or CLOSED.")
    amount_due: Money = strawberry.field(description="What is owed now (zero while a permit, validation or reservation covers the stay, or after paying).")
    amount_paid: Money = strawberry.field(description="What has been paid for this stay.")
    paid_until: datetime | None = strawberry.field(description="After paying: leave by then without owing more.")
    reservation_id: strawberry.ID | None = strawberry.field(description="The reservation the car arrived for, if any.")

    @classmethod
    def of(cls, ctx: RequestContext, facility_id: str, s: DomainSession) -> ParkingSession:
        return cls(id=strawberry.ID(f"{facility_id}:{s.vendor_id}"), facility_id=strawberry.ID(facility_id),
                   plate=personal(s.plate, ctx.principal) or "", entered_at=s.entered_at, exited_at=s.exited_at,
                   status=s.status, amount_due=Money.of(s.amount_due), amount_paid=Money.of(s.amount_paid),
                   paid_until=s.paid_until,
                   reservation_id=strawberry.ID(f"{facility_id}:{s.reservation_id}") if s.reservation_id else None)


@strawberry.type(description="A payment taken by processor token.")
class Payment:
    id: strawberry.ID = strawberry.field(description="Gateway id: `<facility id>:<id in the PARCS>`.")
    facility_id: strawberry.ID = strawberry.field(description="The facility.")
    target: PaymentTarget = strawberry.field(description="SESSION or RESERVATION.")
    target_id: strawberry.ID = strawberry.field(description="Gateway id of the session or reservation paid for.")
    amount: Money = strawberry.field(description="The amount charged.")
    created_at: datetime = strawberry.field(description="When it was charged.")
    processor_reference: str | None = strawberry.field(description="The processor's id for the charge, as the PARCS reports it.")

    @classmethod
    def of(cls, stored: dict[str, Any]) -> Payment:
        facility_id, p = stored["facility_id"], load(DomainPayment, stored["payment"])
        return cls(id=strawberry.ID(f"{facility_id}:{p.vendor_id}"), facility_id=strawberry.ID(facility_id),
                   target=p.target, target_id=strawberry.ID(f"{facility_id}:{p.target_id}"),
                   amount=Money.of(p.amount), created_at=p.created_at,
                   processor_reference=p.processor_reference)


@strawberry.input(description="Pay what a parking session owes now.")
class PayForSessionInput:
    session_id: strawberry.ID = strawberry.field(description="The session (from `parkingSessions`).")
    amount: MoneyInput = strawberry.field(description="Exactly the session's `amountDue`.")
    payment_token: str = strawberry.field(description="The payment processor's token for the card (e.g. tok_…). Never a card number.")


@strawberry.input(description="Pay for a reservation in advance.")
class PayForReservationInput:
    reservation_id: strawberry.ID = strawberry.field(description="The reservation.")
    amount: MoneyInput = strawberry.field(description="Exactly the reservation's price.")
    payment_token: str = strawberry.field(description="The payment processor's token for the card (e.g. tok_…). Never a card number.")


def money_of(raw: MoneyInput, currency: str) -> DomainMoney:
    if not _AMOUNT.fullmatch(raw.amount) or Decimal(raw.amount) <= 0:
        raise bad_input("`input.amount.amount` must be a positive decimal string with at most two decimals, e.g. \"7.50\".",
                        argument="input.amount.amount")
    if not _CURRENCY.fullmatch(raw.currency):
        raise bad_input("`input.amount.currency` must be an ISO 4217 code such as EUR.", argument="input.amount.currency")
    if raw.currency != currency:
        raise bad_input(f"This facility charges in {currency}, not {raw.currency}.", argument="input.amount.currency",
                        reason="WRONG_CURRENCY")
    return DomainMoney(Decimal(raw.amount).quantize(Decimal("0.01")), raw.currency)


def check_token(token: str) -> None:
    if not _TOKEN.fullmatch(token):
        raise bad_input("`input.paymentToken` must be a payment processor's token: 6 to 255 letters, digits, "
                        "`_`, `-`, `:` or `.`.", argument="input.paymentToken")


async def find_session(ctx: RequestContext, session_id: str) -> tuple[FacilityEntry, SystemRef, DomainSession]:
    return await parcs_record(ctx, session_id, "session", lambda adapter, vendor_id: adapter.session(vendor_id),
                              "input.sessionId")


async def _pay(ctx: RequestContext, entry: FacilityEntry, ref: SystemRef, target: DomainTarget, target_id: str,
               amount: DomainMoney, token: str, reference: str) -> dict[str, Any]:
    adapter = ctx.runtime.systems.parcs(ref.system_id)
    payment = await vendor_call(ctx, ref.system_id, adapter.pay(
        PaymentRequest(ref.vendor_id, target, target_id, amount, token, reference)))
    return {"facility_id": entry.id, "payment": dump(payment)}


@strawberry.type
class PaymentQueries:
    @strawberry.field(description="A plate's parking sessions at a facility: the open one and those closed in the last 24 hours.",
                      directives=needs(Scope.SESSIONS_READ) + list_size(assumed_size=5))
    async def parking_sessions(
        self, info: Info,
        facility_id: Annotated[strawberry.ID, strawberry.argument(description="The facility.")],
        plate: Annotated[str, strawberry.argument(description="The plate (case, spaces and dashes do not matter).")],
    ) -> list[ParkingSession] | None:
        ctx = info.context
        entry = visible_facility(ctx, str(facility_id))
        ref = system_of(entry, SystemKind.PARCS, "parking sessions")
        sessions = await live_read(ctx, ref.system_id, ctx.runtime.systems.parcs(ref.system_id).sessions(plate_of(plate)))
        mine = [s for s in sessions.items if s.vendor_facility_id == ref.vendor_id]
        return [ParkingSession.of(ctx, entry.id, s) for s in sorted(mine, key=lambda s: s.entered_at, reverse=True)]


@strawberry.type
class PaymentMutations:
    @strawberry.mutation(description="Pay what a session owes now with a processor token; the car then has a grace "
                                     "period to leave (`paidUntil`).", directives=needs(Scope.PAYMENTS_WRITE))
    async def pay_for_session(self, info: Info,
                              input: Annotated[PayForSessionInput, strawberry.argument(description="The payment.")],
                              idempotency_key: IdempotencyKey) -> Payment | None:
        check_token(input.payment_token)
        ctx = info.context
        arguments = {"session": str(input.session_id), "amount": [input.amount.amount, input.amount.currency],
                     "token": input.payment_token}

        async def pay(reference: str) -> dict[str, Any]:
            entry, ref, session = await find_session(ctx, str(input.session_id))
            amount = money_of(input.amount, session.amount_due.currency)
            return await _pay(ctx, entry, ref, DomainTarget.SESSION, session.vendor_id, amount, input.payment_token, reference)

        return Payment.of(await idempotent(ctx, "payForSession", idempotency_key, arguments, pay))

    @strawberry.mutation(description="Pay a reservation's price in advance with a processor token.",
                         directives=needs(Scope.PAYMENTS_WRITE))
    async def pay_for_reservation(self, info: Info,
                                  input: Annotated[PayForReservationInput, strawberry.argument(description="The payment.")],
                                  idempotency_key: IdempotencyKey) -> Payment | None:
        check_token(input.payment_token)
        ctx = info.context
        arguments = {"reservation": str(input.reservation_id), "amount": [input.amount.amount, input.amount.currency],
                     "token": input.payment_token}

        async def pay(reference: str) -> dict[str, Any]:
            entry, ref, reservation = await find_reservation(ctx, str(input.reservation_id), "input.reservationId")
            amount = money_of(input.amount, reservation.price.currency)
            return await _pay(ctx, entry, ref, DomainTarget.RESERVATION, reservation.vendor_id, amount,
                              input.payment_token, reference)

        return Payment.of(await idempotent(ctx, "payForReservation", idempotency_key, arguments, pay))
