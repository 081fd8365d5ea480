"""A PARCS back office for the sandbox world: what the operator's PARCS keeps besides counts.

Reservations, parking sessions of cars with known plates, payments, permits, parking
validations, and the ledger of money that finance pulls. Vendor-neutral, like `world`:
each PARCS simulator (APDS, ParkLine) renders this state in its own dialect, so the
business rules (availability, prices, what a plate may do) are written once. One office per
world (`office_of`); each simulator registers the garages it runs with their tariff.

Every write may carry a caller's `reference`; seeing one twice is refused as a DUPLICATE
naming the first record, which is how a client's retried write stays a single booking.
Refusals are `OfficeRefusal` with an `adapters.operation_models.RefusalReason` reason; simulators turn them
into their dialect's error answer.

The ledger has a history before the office opened (seeded per garage and local day, so the same
range always sums to the same totals) and, after it, the payments made here.
"""

from __future__ import annotations

import functools
import itertools
import random
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from adapters.operation_models import (
    PaymentTarget,
    PaymentType,
    PermitStatus,
    RefusalReason,
    ReservationStatus,
    RevenueCategory,
    SessionStatus,
    ValidationStatus,
    normalize_plate,
)
from adapters.simulated.world import World

CENT = Decimal("0.01")
EXIT_GRACE = timedelta(minutes=15)  # after paying, time to reach the barrier
EARLY_ARRIVAL = timedelta(minutes=30)  # a reserved car may arrive this much before its window
MAX_WINDOW = timedelta(days=30)
MAX_AHEAD = timedelta(days=365)
PAST_TOLERANCE = timedelta(minutes=5)
RECENT = timedelta(hours=24)  # closed sessions still listed for a plate
RESERVATIONS_KEPT = timedelta(days=7)
PERMITS_KEPT = timedelta(days=30)
VALIDATIONS_KEPT = timedelta(days=7)
MONTHLY_PERMIT = Decimal("120.00")
#: tokens the simulated processor declines (as Stripe's test tokens do)
DECLINED_TOKENS = ("tok_chargeDeclined", "tok_declined")


class OfficeRefusal(Exception):
    def __init__(self, reason: RefusalReason, message: str, existing_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.existing_id = existing_id


@dataclass(frozen=True)
class GarageTerms:
    """What a PARCS vendor registers for a garage it runs: its currency, tax and tariff."""

    key: str
    currency: str
    vat_rate: Decimal
    reservable: int  # spaces set aside for reservations
    price: Callable[[timedelta], Decimal]  # the tariff for a stay of that length
    time_zone: str
    hotel: bool = False


@dataclass
class BookedReservation:
    id: str
    garage: str
    plate: str
    starts_at: datetime
    ends_at: datetime
    status: ReservationStatus
    price: Decimal
    currency: str
    reference: str
    created_at: datetime
    updated_at: datetime
    customer_name: str | None = None
    paid: bool = False
    arrived_at: datetime | None = None
    version: int = 1

    def effective_status(self, now: datetime) -> ReservationStatus:
        if self.status is ReservationStatus.BOOKED and now > self.ends_at:
            return ReservationStatus.NO_SHOW
        return self.status


@dataclass
class Session:
    id: str
    garage: str
    plate: str
    entered_at: datetime
    exited_at: datetime | None = None
    paid: Decimal = Decimal("0.00")
    paid_until: datetime | None = None
    reservation_id: str | None = None

    @property
    def status(self) -> SessionStatus:
        return SessionStatus.OPEN if self.exited_at is None else SessionStatus.CLOSED


@dataclass
class CardCharge:
    """A payment taken here: a processor token charged for a session or a reservation."""

    id: str
    garage: str
    target: PaymentTarget
    target_id: str
    amount: Decimal
    currency: str
    reference: str
    created_at: datetime
    processor_reference: str


@dataclass
class HeldPermit:
    id: str
    garage: str
    plate: str
    holder_name: str
    valid_from: datetime
    valid_until: datetime | None
    reference: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    revoked_at: datetime | None = None
    version: int = 1

    def status(self, now: datetime) -> PermitStatus:
        if self.revoked_at is not None:
            return PermitStatus.REVOKED
        if self.valid_until is not None and now >= self.valid_until:
            return PermitStatus.EXPIRED
        return PermitStatus.PENDING if now < self.valid_from else PermitStatus.ACTIVE


@dataclass
class GrantedValidation:
    id: str
    garage: str
    plate: str
    valid_from: datetime
    valid_until: datetime
    reference: str
    created_at: datetime
    guest_name: str | None = None
    source: str | None = None
    revoked: bool = False

    def status(self, now: datetime) -> ValidationStatus:
        if self.revoked:
            return ValidationStatus.REVOKED
        return ValidationStatus.EXPIRED if now >= self.valid_until else ValidationStatus.ACTIVE


@dataclass(frozen=True)
class PostedTransaction:
    """One money movement posted to the ledger; a PARCS renders it as a transaction."""

    id: str
    garage: str
    occurred_at: datetime
    amount: Decimal  # gross
    tax: Decimal
    currency: str
    payment_type: PaymentType
    category: RevenueCategory
    description: str
    reference: str | None = None


@dataclass
class BackOffice:
    world: World
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    terms: dict[str, GarageTerms] = field(default_factory=dict)
    reservations: dict[str, BookedReservation] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    charges: dict[str, CardCharge] = field(default_factory=dict)
    permits: dict[str, HeldPermit] = field(default_factory=dict)
    validations: dict[str, GrantedValidation] = field(default_factory=dict)
    ledger: list[PostedTransaction] = field(default_factory=list)
    #: garages that take no bookings (the sandbox closes one to show the refusal)
    closed: set[str] = field(default_factory=set)
    opened_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _references: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, reference) -> id
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))

    # --- setup ------------------------------------------------------------------------------

    def register(self, terms: GarageTerms) -> None:
        self.terms[terms.key] = terms

    def _terms(self, garage: str) -> GarageTerms:
        try:
            return self.terms[garage]
        except KeyError:
            raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no garage {garage!r}") from None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _unseen(self, kind: str, reference: str) -> None:
        """First of all: a reference seen before is a DUPLICATE naming its record, whatever else changed since."""
        if not reference:
            raise OfficeRefusal(RefusalReason.INVALID, "a reference is required")
        existing = self._references.get((kind, reference))
        if existing is not None:
            raise OfficeRefusal(RefusalReason.DUPLICATE, f"reference {reference!r} was used for {existing}", existing)

    def _claim(self, kind: str, reference: str, record_id: str) -> None:
        self._unseen(kind, reference)
        self._references[(kind, reference)] = record_id

    def _taken_id(self, table: Mapping[str, object], record_id: str | None) -> None:
        if record_id is not None and record_id in table:
            raise OfficeRefusal(RefusalReason.DUPLICATE, f"id {record_id!r} exists", record_id)

    # --- reservations -------------------------------------------------------------------------

    def quote(self, garage: str, starts_at: datetime, ends_at: datetime, exclude: str | None = None) -> Decimal:
        """The price of a window, or an OfficeRefusal saying why it cannot be booked."""
        terms = self._terms(garage)
        now = self.clock()
        if not timedelta(0) < ends_at - starts_at <= MAX_WINDOW:
            raise OfficeRefusal(RefusalReason.INVALID_WINDOW,
                                "the window must end after it starts and last at most 30 days")
        if starts_at < now - PAST_TOLERANCE or starts_at > now + MAX_AHEAD:
            raise OfficeRefusal(RefusalReason.INVALID_WINDOW, "the window must start from now to a year ahead")
        if garage in self.closed:
            raise OfficeRefusal(RefusalReason.CLOSED, "the garage takes no bookings")
        overlapping = sum(
            1 for r in self.reservations.values()
            if r.garage == garage and r.id != exclude and r.effective_status(now) in (ReservationStatus.BOOKED,
                                                                                     ReservationStatus.ARRIVED)
            and r.starts_at < ends_at and starts_at < r.ends_at
        )
        if overlapping >= terms.reservable:
            raise OfficeRefusal(RefusalReason.FULLY_BOOKED,
                                f"all {terms.reservable} reservable spaces are taken in that window")
        return terms.price(ends_at - starts_at).quantize(CENT)

    def book(self, garage: str, *, plate: str, starts_at: datetime, ends_at: datetime, reference: str,
             customer_name: str | None = None, expected_price: Decimal | None = None,
             record_id: str | None = None) -> BookedReservation:
        self._taken_id(self.reservations, record_id)
        self._unseen("reservation", reference)
        price = self.quote(garage, starts_at, ends_at)
        if expected_price is not None and expected_price != price:
            raise OfficeRefusal(RefusalReason.PRICE_CHANGED, f"the price is now {price}, not {expected_price}")
        now = self.clock()
        record_id = record_id or self._new_id("R")
        self._claim("reservation", reference, record_id)
        reservation = BookedReservation(record_id, garage, normalize_plate(plate), starts_at, ends_at,
                                        ReservationStatus.BOOKED, price, self.terms[garage].currency, reference, now,
                                        now, customer_name)
        self.reservations[record_id] = reservation
        return reservation

    def reservation(self, record_id: str) -> BookedReservation:
        try:
            return self.reservations[record_id]
        except KeyError:
            raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no reservation {record_id!r}") from None

    def list_reservations(self, garages: Iterable[str], plate: str | None = None) -> list[BookedReservation]:
        now, keys = self.clock(), set(garages)
        wanted = None if plate is None else normalize_plate(plate)
        return [r for r in self.reservations.values()
                if r.garage in keys and (wanted is None or r.plate == wanted) and r.ends_at > now - RESERVATIONS_KEPT]

    def modify(self, record_id: str, *, starts_at: datetime | None = None, ends_at: datetime | None = None,
               plate: str | None = None) -> BookedReservation:
        reservation = self.reservation(record_id)
        if reservation.effective_status(self.clock()) is not ReservationStatus.BOOKED:
            raise OfficeRefusal(RefusalReason.WRONG_STATE, f"a {reservation.effective_status(self.clock()).value} "
                                                           "reservation cannot be changed")
        starts, ends = starts_at or reservation.starts_at, ends_at or reservation.ends_at
        if (starts, ends) != (reservation.starts_at, reservation.ends_at):
            price = self.quote(reservation.garage, starts, ends, exclude=record_id)
            if reservation.paid and price != reservation.price:
                raise OfficeRefusal(RefusalReason.WRONG_STATE,
                                    "a paid reservation can only move to a window of the same price")
            reservation.starts_at, reservation.ends_at, reservation.price = starts, ends, price
        if plate is not None:
            reservation.plate = normalize_plate(plate)
        reservation.updated_at = self.clock()
        reservation.version += 1
        return reservation

    def cancel(self, record_id: str) -> BookedReservation:
        reservation = self.reservation(record_id)
        status = reservation.effective_status(self.clock())
        if status is ReservationStatus.CANCELLED:
            return reservation
        if status is not ReservationStatus.BOOKED:
            raise OfficeRefusal(RefusalReason.WRONG_STATE, f"a {status.value} reservation cannot be cancelled")
        reservation.status = ReservationStatus.CANCELLED
        reservation.updated_at = self.clock()
        reservation.version += 1
        return reservation

    # --- cars at the gates ----------------------------------------------------------------------

    def vehicle_entered(self, garage: str, plate: str, at: datetime | None = None
                        ) -> tuple[Session, BookedReservation | None]:
        """A car with a read plate passed the entry: its session, and the reservation it arrived for."""
        at = at or self.clock()
        plate = normalize_plate(plate)
        session = Session(self._new_id("S"), garage, plate, at)
        arrived = next((r for r in self.reservations.values()
                        if r.garage == garage and r.plate == plate and r.status is ReservationStatus.BOOKED
                        and r.starts_at - EARLY_ARRIVAL <= at <= r.ends_at), None)
        if arrived is not None:
            arrived.status, arrived.arrived_at, arrived.updated_at = ReservationStatus.ARRIVED, at, at
            arrived.version += 1
            session.reservation_id = arrived.id
        self.sessions[session.id] = session
        return session, arrived

    def vehicle_exited(self, garage: str, plate: str, at: datetime | None = None) -> Session | None:
        """The car leaves: whatever it still owes is paid at the exit lane, and the ledger says how."""
        at = at or self.clock()
        plate = normalize_plate(plate)
        session = next((s for s in self.sessions.values()
                        if s.garage == garage and s.plate == plate and s.exited_at is None), None)
        if session is None:
            return None
        terms = self.terms[garage]
        stay_price = terms.price(at - session.entered_at).quantize(CENT)
        reservation = self.reservations.get(session.reservation_id or "")
        if reservation is not None:
            reservation.status, reservation.updated_at = ReservationStatus.COMPLETED, at
            reservation.version += 1
            if not reservation.paid:
                reservation.paid = True
                self._record(garage, at, reservation.price, PaymentType.CARD, RevenueCategory.RESERVATION,
                             "Reservation paid at exit", reservation.id)
        elif (validation := self._validation_for(garage, plate, at)) is not None:
            self._record(garage, at, stay_price, PaymentType.INVOICE, RevenueCategory.VALIDATION,
                         f"Validated stay ({validation.source or 'hotel'})", validation.id)
        elif self._permit_for(garage, plate, at) is None:
            due = self.amount_due(session, at)
            if due > 0:
                kind = PaymentType.CASH if zlib.crc32(plate.encode()) % 4 == 0 else PaymentType.CARD
                self._record(garage, at, due, kind, RevenueCategory.TRANSIENT, "Paid at exit lane", session.id)
                session.paid += due
        session.exited_at = at
        return session

    def list_sessions(self, garages: Iterable[str], plate: str) -> list[Session]:
        now, keys, plate = self.clock(), set(garages), normalize_plate(plate)
        return [s for s in self.sessions.values() if s.garage in keys and s.plate == plate
                and (s.exited_at is None or s.exited_at > now - RECENT)]

    def session(self, record_id: str) -> Session:
        try:
            return self.sessions[record_id]
        except KeyError:
            raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no session {record_id!r}") from None

    def amount_due(self, session: Session, at: datetime | None = None) -> Decimal:
        """What the session owes at `at`: nothing while a right covers it or within a paid period."""
        at = at or self.clock()
        if session.exited_at is not None:
            return Decimal("0.00")
        if session.reservation_id is not None:
            return Decimal("0.00")  # the reservation is paid on its own
        if self._permit_for(session.garage, session.plate, at) or self._validation_for(session.garage, session.plate, at):
            return Decimal("0.00")
        if session.paid_until is not None and at <= session.paid_until:
            return Decimal("0.00")
        owed = self.terms[session.garage].price(at - session.entered_at).quantize(CENT) - session.paid
        return max(owed, Decimal("0.00"))

    # --- payments ---------------------------------------------------------------------------

    def pay(self, *, target: PaymentTarget, target_id: str, amount: Decimal, currency: str, token: str,
            reference: str, record_id: str | None = None) -> CardCharge:
        self._taken_id(self.charges, record_id)
        self._unseen("payment", reference)
        now = self.clock()
        if target is PaymentTarget.SESSION:
            session = self.session(target_id)
            garage, owed = session.garage, self.amount_due(session, now)
            if session.exited_at is not None:
                raise OfficeRefusal(RefusalReason.WRONG_STATE, "the session has ended")
        else:
            reservation = self.reservation(target_id)
            garage, owed = reservation.garage, reservation.price
            if reservation.paid or reservation.effective_status(now) not in (ReservationStatus.BOOKED,
                                                                              ReservationStatus.ARRIVED):
                raise OfficeRefusal(RefusalReason.WRONG_STATE, "the reservation is paid already or no longer open")
        terms = self.terms[garage]
        if currency != terms.currency:
            raise OfficeRefusal(RefusalReason.INVALID, f"this garage takes {terms.currency}, not {currency}")
        if owed <= 0:
            raise OfficeRefusal(RefusalReason.WRONG_STATE, "nothing is owed")
        if amount != owed:
            raise OfficeRefusal(RefusalReason.AMOUNT_MISMATCH, f"{owed} {terms.currency} is owed, not {amount}")
        if token in DECLINED_TOKENS:
            raise OfficeRefusal(RefusalReason.DECLINED, "the processor declined the token")
        record_id = record_id or self._new_id("P")
        self._claim("payment", reference, record_id)
        charge = CardCharge(record_id, garage, target, target_id, amount, terms.currency, reference, now,
                            f"ch_{zlib.crc32((token + record_id).encode()):08x}")
        self.charges[record_id] = charge
        if target is PaymentTarget.SESSION:
            session.paid += amount
            session.paid_until = now + EXIT_GRACE
            self._record(garage, now, amount, PaymentType.CARD, RevenueCategory.TRANSIENT, "Paid by app", session.id)
        else:
            reservation.paid = True
            reservation.updated_at = now
            reservation.version += 1
            self._record(garage, now, amount, PaymentType.CARD, RevenueCategory.RESERVATION, "Reservation prepaid",
                         reservation.id)
        return charge

    # --- permits and validations ------------------------------------------------------------

    def issue_permit(self, garage: str, *, plate: str, holder_name: str, valid_from: datetime,
                     valid_until: datetime | None, reference: str, description: str | None = None,
                     record_id: str | None = None) -> HeldPermit:
        self._terms(garage)
        self._taken_id(self.permits, record_id)
        self._unseen("permit", reference)
        if valid_until is not None and valid_until <= valid_from:
            raise OfficeRefusal(RefusalReason.INVALID, "a permit must end after it starts")
        now = self.clock()
        record_id = record_id or self._new_id("PM")
        self._claim("permit", reference, record_id)
        permit = HeldPermit(record_id, garage, normalize_plate(plate), holder_name, valid_from, valid_until, reference,
                            now, now, description)
        self.permits[record_id] = permit
        return permit

    def permit(self, record_id: str) -> HeldPermit:
        try:
            return self.permits[record_id]
        except KeyError:
            raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no permit {record_id!r}") from None

    def update_permit(self, record_id: str, *, plate: str | None = None, holder_name: str | None = None,
                      valid_from: datetime | None = None, valid_until: datetime | None = None,
                      description: str | None = None) -> HeldPermit:
        permit = self.permit(record_id)
        if permit.revoked_at is not None:
            raise OfficeRefusal(RefusalReason.WRONG_STATE, "a revoked permit cannot be changed")
        starts, ends = valid_from or permit.valid_from, valid_until or permit.valid_until
        if ends is not None and ends <= starts:
            raise OfficeRefusal(RefusalReason.INVALID, "a permit must end after it starts")
        permit.valid_from, permit.valid_until = starts, ends
        if plate is not None:
            permit.plate = normalize_plate(plate)
        permit.holder_name = holder_name or permit.holder_name
        permit.description = description if description is not None else permit.description
        permit.updated_at = self.clock()
        permit.version += 1
        return permit

    def revoke_permit(self, record_id: str) -> HeldPermit:
        permit = self.permit(record_id)
        if permit.revoked_at is None:
            permit.revoked_at = permit.updated_at = self.clock()
            permit.version += 1
        return permit

    def list_permits(self, garages: Iterable[str], plate: str | None = None) -> list[HeldPermit]:
        now, keys = self.clock(), set(garages)
        wanted = None if plate is None else normalize_plate(plate)
        return [p for p in self.permits.values() if p.garage in keys and (wanted is None or p.plate == wanted)
                and (p.valid_until is None or p.valid_until > now - PERMITS_KEPT)]

    def validate(self, garage: str, *, plate: str, valid_from: datetime, valid_until: datetime, reference: str,
                 guest_name: str | None = None, source: str | None = None,
                 record_id: str | None = None) -> GrantedValidation:
        self._terms(garage)
        self._taken_id(self.validations, record_id)
        self._unseen("validation", reference)
        if valid_until <= valid_from:
            raise OfficeRefusal(RefusalReason.INVALID, "a validation must end after it starts")
        record_id = record_id or self._new_id("V")
        self._claim("validation", reference, record_id)
        validation = GrantedValidation(record_id, garage, normalize_plate(plate), valid_from, valid_until, reference,
                                       self.clock(), guest_name, source)
        self.validations[record_id] = validation
        return validation

    def list_validations(self, garages: Iterable[str], plate: str | None = None) -> list[GrantedValidation]:
        now, keys = self.clock(), set(garages)
        wanted = None if plate is None else normalize_plate(plate)
        return [v for v in self.validations.values() if v.garage in keys and (wanted is None or v.plate == wanted)
                and v.valid_until > now - VALIDATIONS_KEPT]

    def permit_for(self, garage: str, plate: str, at: datetime) -> HeldPermit | None:
        """The active permit that lets `plate` park at `garage` at `at`, if any."""
        return self._permit_for(garage, normalize_plate(plate), at)

    def validation_for(self, garage: str, plate: str, at: datetime) -> GrantedValidation | None:
        """The validation that covers `plate` at `garage` at `at`, if any."""
        return self._validation_for(garage, normalize_plate(plate), at)

    def _permit_for(self, garage: str, plate: str, at: datetime) -> HeldPermit | None:
        return next((p for p in self.permits.values()
                     if p.garage == garage and p.plate == plate and p.status(at) is PermitStatus.ACTIVE), None)

    def _validation_for(self, garage: str, plate: str, at: datetime) -> GrantedValidation | None:
        return next((v for v in self.validations.values() if v.garage == garage and v.plate == plate
                     and not v.revoked and v.valid_from <= at < v.valid_until), None)

    # --- the ledger -----------------------------------------------------------------------------

    def _record(self, garage: str, at: datetime, amount: Decimal, payment_type: PaymentType,
                category: RevenueCategory, description: str, reference: str | None) -> None:
        terms = self.terms[garage]
        self.ledger.append(PostedTransaction(self._new_id("T"), garage, at, amount, tax_in(amount, terms.vat_rate),
                                             terms.currency, payment_type, category, description, reference))

    def transactions(self, garages: Iterable[str], since: datetime, until: datetime) -> list[PostedTransaction]:
        """Every entry in [since, until) at these garages, oldest first: history, then what happened here."""
        out: list[PostedTransaction] = []
        # The ledger's history begins HISTORY_KEPT before the office opened: a read from 2000 would else
        # make up a quarter century of days (a minute of CPU) on every page of the vendor's list.
        first = max(since, self.opened_at - HISTORY_KEPT)
        for key in garages:
            terms = self._terms(key)
            zone = ZoneInfo(terms.time_zone)
            day = first.astimezone(zone).date()
            while datetime.combine(day, time(0), zone) < until:
                out.extend(e for e in history(terms, day) if since <= e.occurred_at < until and e.occurred_at < self.opened_at)
                day += timedelta(days=1)
        keys = set(garages)
        out.extend(e for e in self.ledger if e.garage in keys and since <= e.occurred_at < until)
        return sorted(out, key=lambda e: (e.occurred_at, e.id))


#: how far back the simulated PARCS keeps its ledger, as a real one keeps a bounded retention
HISTORY_KEPT = timedelta(days=400)
#: garage days of history kept made (~5 kB each): a year of the six sandbox garages, a week of 1,000
HISTORY_DAYS_CACHED = 8192


def tax_in(gross: Decimal, rate: Decimal) -> Decimal:
    """The tax contained in a gross amount, to the cent."""
    return (gross * rate / (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)


@functools.lru_cache(maxsize=HISTORY_DAYS_CACHED)
def history(terms: GarageTerms, day: date) -> tuple[PostedTransaction, ...]:
    """One garage's ledger for one local day before the sandbox started: the same every time it is
    asked, so made once (a vendor's list of a quarter's rights asks each of its days again per view)."""
    rng = random.Random(zlib.crc32(f"{terms.key}/{day.isoformat()}".encode()))
    zone = ZoneInfo(terms.time_zone)
    entries: list[PostedTransaction] = []
    for index in range(rng.randint(18, 36)):
        at = datetime.combine(day, time(6), zone) + timedelta(minutes=rng.randint(0, 17 * 60 - 1),
                                                              seconds=rng.randint(0, 59))
        roll = rng.random()
        if roll < 0.06:
            category, kind, amount = RevenueCategory.PERMIT, rng.choice((PaymentType.INVOICE, PaymentType.CARD)), MONTHLY_PERMIT
            text = "Monthly permit"
        elif roll < 0.18:
            category, kind = RevenueCategory.RESERVATION, rng.choice((PaymentType.CARD, PaymentType.MOBILE))
            amount, text = terms.price(timedelta(minutes=rng.randint(60, 600))), "Reservation"
        elif roll < 0.30 and terms.hotel:
            category, kind = RevenueCategory.VALIDATION, PaymentType.INVOICE
            amount, text = terms.price(timedelta(hours=rng.randint(8, 20))), "Validated hotel stay"
        else:
            category = RevenueCategory.TRANSIENT
            kind = rng.choices((PaymentType.CARD, PaymentType.CASH, PaymentType.MOBILE), (60, 15, 25))[0]
            amount, text = terms.price(timedelta(minutes=rng.randint(20, 540))), "Transient parking"
        amount = amount.quantize(CENT)
        if amount <= 0:
            continue  # a stay inside the free tier moves no money
        entries.append(PostedTransaction(f"H{day:%Y%m%d}{zlib.crc32(terms.key.encode()) % 1000:03d}{index:02d}",
                                         terms.key, at.astimezone(UTC), amount, tax_in(amount, terms.vat_rate),
                                         terms.currency, kind, category, text))
    return tuple(entries)


def office_of(world: World) -> BackOffice:
    """The world's one back office, made on first use."""
    office = world.back_office
    if not isinstance(office, BackOffice):
        office = world.back_office = BackOffice(world)
    return office
