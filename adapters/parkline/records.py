"""ParkLine's back-office records (bookings, sessions, payments, permits, validations,
transactions) and its refusals, read into domain types.

Like `wire`, every mapper raises WireError (a ValueError) on a record it cannot use; the
adapter turns that into a RecordError for that record alone (lists) or an UpstreamError (single
answers).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from adapters.errors import UpstreamRejected
from adapters.models import Money
from adapters.operation_models import (
    ParkingSession,
    Payment,
    PaymentTarget,
    PaymentType,
    Permit,
    PermitStatus,
    RefusalReason,
    Reservation,
    ReservationStatus,
    RevenueCategory,
    SessionStatus,
    Transaction,
    Validation,
    ValidationStatus,
    VendorRefused,
)
from adapters.parkline.wire import WireError, _optional_text, _text, money, parse_time

CENT = Decimal("0.01")

BOOKING_STATUSES = {status.value.lower(): status for status in ReservationStatus}
PERMIT_STATUSES = {status.value.lower(): status for status in PermitStatus}
VALIDATION_STATUSES = {status.value.lower(): status for status in ValidationStatus}
SESSION_STATES = {"in_car_park": SessionStatus.OPEN, "departed": SessionStatus.CLOSED}
TENDERS = {"card": PaymentType.CARD, "cash": PaymentType.CASH, "app": PaymentType.MOBILE,
           "account": PaymentType.INVOICE}
CATEGORIES = {"transient": RevenueCategory.TRANSIENT, "prebook": RevenueCategory.RESERVATION,
              "season": RevenueCategory.PERMIT, "validation": RevenueCategory.VALIDATION}

#: ParkLine's refusal reasons; an unknown one is judged by its status (REFUSALS_BY_STATUS)
REFUSALS = {
    "not_found": RefusalReason.NOT_FOUND,
    "unknown_carpark": RefusalReason.NOT_FOUND,
    "duplicate_client_ref": RefusalReason.DUPLICATE,
    "fully_booked": RefusalReason.FULLY_BOOKED,
    "closed": RefusalReason.CLOSED,
    "invalid_window": RefusalReason.INVALID_WINDOW,
    "depart_before_arrive": RefusalReason.INVALID_WINDOW,
    "price_changed": RefusalReason.PRICE_CHANGED,
    "amount_mismatch": RefusalReason.AMOUNT_MISMATCH,
    "wrong_state": RefusalReason.WRONG_STATE,
    "declined": RefusalReason.DECLINED,
    "invalid": RefusalReason.INVALID,
}
REFUSALS_BY_STATUS = {404: RefusalReason.NOT_FOUND, 402: RefusalReason.DECLINED, 409: RefusalReason.DUPLICATE}


# --- values ---------------------------------------------------------------------------------

def amount(raw: dict[str, Any], key: str) -> Money:
    """Pence to a Decimal amount to the cent (450 -> 4.50), never through a float."""
    value = money(raw.get(key), raw.get("currency"))
    return Money(value.amount.quantize(CENT), value.currency)


def to_minor(value: Money) -> int:
    """A Decimal amount as integer pence; ValueError for a fraction of a penny."""
    minor = value.amount * 100
    if minor != minor.to_integral_value():
        raise ValueError(f"{value.amount} {value.currency} is not a whole number of pence")
    return int(minor)


def when(raw: dict[str, Any], key: str) -> datetime:
    value = parse_time(raw.get(key))
    if value is None:
        raise WireError(f"{key} missing")
    return value


def choice(raw: dict[str, Any], key: str, table: dict[str, Any]) -> Any:
    value = raw.get(key)
    if value not in table:
        raise WireError(f"unknown {key}: {value!r}")
    return table[value]


def flag(raw: dict[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise WireError(f"{key} is not true or false: {value!r}")
    return value


def version(raw: dict[str, Any]) -> int:
    value = raw.get("version", 1)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"version is not an integer: {value!r}")
    return value


# --- records ----------------------------------------------------------------------------------

def reservation(raw: dict[str, Any]) -> Reservation:
    return Reservation(
        vendor_id=_text(raw, "booking_ref"),
        vendor_facility_id=_text(raw, "carpark"),
        plate=_text(raw, "registration"),
        starts_at=when(raw, "arrive"),
        ends_at=when(raw, "depart"),
        status=choice(raw, "status", BOOKING_STATUSES),
        price=amount(raw, "price_minor"),
        reference=_text(raw, "client_ref"),
        created_at=when(raw, "created"),
        updated_at=when(raw, "updated"),
        customer_name=_optional_text(raw, "customer_name"),
        paid=flag(raw, "paid"),
        arrived_at=parse_time(raw.get("arrived_at")),
        version=version(raw),
    )


def session(raw: dict[str, Any]) -> ParkingSession:
    return ParkingSession(
        vendor_id=_text(raw, "session_id"),
        vendor_facility_id=_text(raw, "carpark"),
        plate=_text(raw, "registration"),
        entered_at=when(raw, "entered"),
        exited_at=parse_time(raw.get("exited")),
        status=choice(raw, "state", SESSION_STATES),
        amount_due=amount(raw, "due_minor"),
        amount_paid=amount(raw, "paid_minor"),
        paid_until=parse_time(raw.get("paid_until")),
        reservation_id=_optional_text(raw, "booking_ref"),
    )


def payment(raw: dict[str, Any]) -> Payment:
    if raw.get("session_id") is not None:
        target, target_id = PaymentTarget.SESSION, _text(raw, "session_id")
    else:
        target, target_id = PaymentTarget.RESERVATION, _text(raw, "booking_ref")
    return Payment(
        vendor_id=_text(raw, "payment_id"),
        vendor_facility_id=_text(raw, "carpark"),
        target=target,
        target_id=target_id,
        amount=amount(raw, "amount_minor"),
        reference=_text(raw, "client_ref"),
        created_at=when(raw, "created"),
        processor_reference=_optional_text(raw, "processor_ref"),
    )


def permit(raw: dict[str, Any]) -> Permit:
    return Permit(
        vendor_id=_text(raw, "permit_id"),
        vendor_facility_id=_text(raw, "carpark"),
        plate=_text(raw, "registration"),
        holder_name=_text(raw, "holder"),
        valid_from=when(raw, "valid_from"),
        valid_until=parse_time(raw.get("valid_to")),
        status=choice(raw, "status", PERMIT_STATUSES),
        reference=_text(raw, "client_ref"),
        created_at=when(raw, "created"),
        updated_at=when(raw, "updated"),
        description=_optional_text(raw, "notes"),
        version=version(raw),
    )


def validation(raw: dict[str, Any]) -> Validation:
    return Validation(
        vendor_id=_text(raw, "validation_id"),
        vendor_facility_id=_text(raw, "carpark"),
        plate=_text(raw, "registration"),
        valid_from=when(raw, "valid_from"),
        valid_until=when(raw, "valid_to"),
        status=choice(raw, "status", VALIDATION_STATUSES),
        reference=_text(raw, "client_ref"),
        created_at=when(raw, "created"),
        guest_name=_optional_text(raw, "guest_name"),
        source=_optional_text(raw, "source"),
    )


def transaction(raw: dict[str, Any]) -> Transaction:
    gross, vat = amount(raw, "gross_minor"), amount(raw, "vat_minor")
    if not 0 <= vat.amount <= gross.amount:
        raise WireError(f"VAT {vat.amount} does not fit in the gross {gross.amount}")
    return Transaction(
        vendor_id=_text(raw, "txn_id"),
        vendor_facility_id=_text(raw, "carpark"),
        occurred_at=when(raw, "at"),
        amount=gross,
        tax=vat,
        payment_type=choice(raw, "tender", TENDERS),
        revenue_category=choice(raw, "category", CATEGORIES),
        description=_optional_text(raw, "description") or "",
        reference=_optional_text(raw, "ref"),
    )


# --- refusals ---------------------------------------------------------------------------------

def refused(system_id: str, exc: UpstreamRejected, id_field: str) -> VendorRefused | None:
    """ParkLine's business refusal in `exc` as a VendorRefused; None when it is not one (e.g. 429)."""
    try:
        body = orjson.loads(exc.body) if exc.body else {}
    except orjson.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("reason")
    reason = REFUSALS.get(code) if isinstance(code, str) else None
    if reason is None:
        reason = REFUSALS_BY_STATUS.get(exc.status)
    if reason is None:
        if exc.status not in (400, 422):
            return None
        reason = RefusalReason.INVALID
    detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    existing = body.get(id_field) if isinstance(body.get(id_field), str) else None
    message = f"ParkLine refused ({body.get('reason') or exc.status})" + (f": {detail}" if detail else "")
    return VendorRefused(system_id, reason, message, exc.status, existing)
