"""Normalized domain types for a PARCS's operations: reservations, sessions, payments, permits,
validations, and the money that moves (transactions), plus the refusals a vendor answers a write with.

Like `adapters.models`, plain dataclasses in vendor ids with no GraphQL in sight. Every write
carries a `reference`: an id the gateway derives from the client and its idempotency key, which
the vendor keeps with the record and refuses to see twice (`RefusalReason.DUPLICATE`), so a write
retried after a lost answer never books, pays or issues twice.

Plates are compared in their normalized form (`normalize_plate`): upper case, no spaces,
dashes or dots, the way a camera reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from adapters.errors import UpstreamRejected
from adapters.models import Money

_PLATE_NOISE = re.compile(r"[\s\-.·]+")
_PLATE = re.compile(r"[A-Z0-9ÄÖÜ]{1,12}")  # the longest national formats are 10


def normalize_plate(raw: str) -> str:
    """`b-pg 123` -> `BPG123`. ValueError when what is left is not 1..12 letters and digits."""
    plate = _PLATE_NOISE.sub("", raw).upper()
    if not _PLATE.fullmatch(plate):
        raise ValueError("a plate is 1 to 12 letters and digits (spaces, dashes and dots are ignored)")
    return plate


class ReservationStatus(StrEnum):
    BOOKED = "BOOKED"  # confirmed, the car has not arrived
    ARRIVED = "ARRIVED"  # the car entered during the window
    COMPLETED = "COMPLETED"  # the car left
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"  # the window ended without the car


class PermitStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PENDING = "PENDING"  # valid from a later date
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


class ValidationStatus(StrEnum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


class SessionStatus(StrEnum):
    OPEN = "OPEN"  # the car is inside
    CLOSED = "CLOSED"  # the car left


class PaymentType(StrEnum):
    """How money arrived (the debit side of a journal)."""

    CARD = "CARD"  # card at a pay station or lane, or a processor token through the API
    CASH = "CASH"
    MOBILE = "MOBILE"  # a mobile payment app
    INVOICE = "INVOICE"  # billed to an account (a hotel for its validations, a company for its permits)


class RevenueCategory(StrEnum):
    """What the money was for (the credit side of a journal)."""

    TRANSIENT = "TRANSIENT"  # pay-as-you-go parking
    RESERVATION = "RESERVATION"
    PERMIT = "PERMIT"
    VALIDATION = "VALIDATION"  # parking a hotel or merchant validated and pays for


class PaymentTarget(StrEnum):
    SESSION = "SESSION"
    RESERVATION = "RESERVATION"


@dataclass(frozen=True, slots=True)
class Reservation:
    vendor_id: str
    vendor_facility_id: str
    plate: str
    starts_at: datetime
    ends_at: datetime
    status: ReservationStatus
    price: Money
    reference: str
    created_at: datetime
    updated_at: datetime
    customer_name: str | None = None
    paid: bool = False
    arrived_at: datetime | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    vendor_facility_id: str
    plate: str  # normalized
    starts_at: datetime
    ends_at: datetime
    reference: str
    customer_name: str | None = None
    #: the price the client agreed to (from a quote); the vendor refuses with PRICE_CHANGED when it differs
    expected_price: Money | None = None


@dataclass(frozen=True, slots=True)
class ReservationChange:
    """Only the fields given change; the vendor re-checks availability and re-prices."""

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    plate: str | None = None


@dataclass(frozen=True, slots=True)
class ParkingSession:
    vendor_id: str
    vendor_facility_id: str
    plate: str
    entered_at: datetime
    exited_at: datetime | None
    status: SessionStatus
    #: what is owed now (zero when a right covers the stay or it has been paid)
    amount_due: Money
    amount_paid: Money
    #: the car may leave without paying more until then
    paid_until: datetime | None = None
    reservation_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    vendor_facility_id: str
    target: PaymentTarget
    target_id: str  # the session's or reservation's vendor id
    amount: Money
    token: str  # the payment processor's token: never a card number (checked before it gets here)
    reference: str


@dataclass(frozen=True, slots=True)
class Payment:
    vendor_id: str
    vendor_facility_id: str
    target: PaymentTarget
    target_id: str
    amount: Money
    reference: str
    created_at: datetime
    #: the processor's id for the charge, as the PARCS reports it
    processor_reference: str | None = None


@dataclass(frozen=True, slots=True)
class Permit:
    vendor_id: str
    vendor_facility_id: str
    plate: str
    holder_name: str
    valid_from: datetime
    valid_until: datetime | None  # None: until revoked
    status: PermitStatus
    reference: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class PermitRequest:
    vendor_facility_id: str
    plate: str  # normalized
    holder_name: str
    valid_from: datetime
    valid_until: datetime | None
    reference: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class PermitChange:
    plate: str | None = None
    holder_name: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Validation:
    """Parking a hotel (or merchant) grants its guest: the car parks free, the hotel is invoiced."""

    vendor_id: str
    vendor_facility_id: str
    plate: str
    valid_from: datetime
    valid_until: datetime
    status: ValidationStatus
    reference: str
    created_at: datetime
    guest_name: str | None = None
    #: what granted it, e.g. the PMS reservation id
    source: str | None = None


@dataclass(frozen=True, slots=True)
class ValidationRequest:
    vendor_facility_id: str
    plate: str  # normalized
    valid_from: datetime
    valid_until: datetime
    reference: str
    guest_name: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One money movement: gross amount with the tax in it, how it was paid, what it was for."""

    vendor_id: str
    vendor_facility_id: str
    occurred_at: datetime
    amount: Money  # gross, tax included
    tax: Money
    payment_type: PaymentType
    revenue_category: RevenueCategory
    description: str
    #: the session, reservation, permit or validation it settles
    reference: str | None = None


class RefusalReason(StrEnum):
    """Why a vendor refused a write: the business answer, not a failure of the system."""

    NOT_FOUND = "NOT_FOUND"  # no such reservation, permit, session…
    DUPLICATE = "DUPLICATE"  # the reference (or id) was seen before: `existing_id` names the record
    FULLY_BOOKED = "FULLY_BOOKED"  # no reservable space left in the window
    CLOSED = "CLOSED"  # the facility takes no bookings
    INVALID_WINDOW = "INVALID_WINDOW"  # ends before it starts, in the past, or too long
    PRICE_CHANGED = "PRICE_CHANGED"  # the expected price is no longer the price
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"  # a payment that is not what is owed
    WRONG_STATE = "WRONG_STATE"  # e.g. cancelling an arrived reservation, paying a paid one
    DECLINED = "DECLINED"  # the payment processor declined the token
    INVALID = "INVALID"  # the vendor found the request itself invalid


class VendorRefused(UpstreamRejected):
    """The vendor understood the write and said no, for `reason`.

    `existing_id` is the record a DUPLICATE refers to, when the vendor says; `detail` is the
    vendor's own words (never containing secrets or card data: only tokens reach a vendor).
    """

    def __init__(self, system_id: str, reason: RefusalReason, message: str, status: int = 409,
                 existing_id: str | None = None) -> None:
        super().__init__(system_id, message, status)
        self.reason = reason
        self.existing_id = existing_id
