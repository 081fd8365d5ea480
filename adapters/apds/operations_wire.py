"""The APDS-style wire contract for operations: reservations, sessions, payments, permits,
validations, transactions, and the error answers a write is refused with.

Shared by the adapter (request bodies out, strict record parsers in) and the simulator (the
vendor words it renders). Records are camelCase with ISO 8601 UTC times, money as
`{"amount": "12.50", "currency": "EUR"}`, status words in lower case; versioned entities
(reservations, permits) carry `version`. Writes carry a client-chosen `id` (`record_id`), and
the vendor answers a second create with that id, or with a reference it has seen, with
`409 {"error": {"code": "duplicate", "existingId": ...}}`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from adapters.apds.wire import (
    WireError,
    currency_of,
    format_amount,
    format_time,
    integer,
    obj,
    opt_text,
    parse_amount,
    parse_time,
    text,
)
from adapters.models import Money
from adapters.operation_models import (
    ParkingSession,
    Payment,
    PaymentRequest,
    PaymentTarget,
    PaymentType,
    Permit,
    PermitChange,
    PermitRequest,
    PermitStatus,
    RefusalReason,
    Reservation,
    ReservationChange,
    ReservationRequest,
    ReservationStatus,
    RevenueCategory,
    SessionStatus,
    Transaction,
    Validation,
    ValidationRequest,
    ValidationStatus,
    normalize_plate,
)

MAX_TRANSACTIONS_LIMIT = 1000  # GET /transactions pages further than the other lists
MAX_TRANSACTIONS_RANGE = timedelta(days=31)  # from..to of one GET /transactions

# --- vendor words <-> enums ----------------------------------------------------------------

RESERVATION_STATUSES: dict[str, ReservationStatus] = {s.value.lower(): s for s in ReservationStatus}
PERMIT_STATUSES: dict[str, PermitStatus] = {s.value.lower(): s for s in PermitStatus}
VALIDATION_STATUSES: dict[str, ValidationStatus] = {s.value.lower(): s for s in ValidationStatus}
SESSION_STATUSES: dict[str, SessionStatus] = {s.value.lower(): s for s in SessionStatus}
PAYMENT_TYPES: dict[str, PaymentType] = {s.value.lower(): s for s in PaymentType}
REVENUE_CATEGORIES: dict[str, RevenueCategory] = {s.value.lower(): s for s in RevenueCategory}

#: how the vendor answers each refusal: HTTP status and its error code
REFUSALS: dict[RefusalReason, tuple[int, str]] = {
    RefusalReason.NOT_FOUND: (404, "not_found"),
    RefusalReason.DUPLICATE: (409, "duplicate"),
    RefusalReason.FULLY_BOOKED: (409, "fully_booked"),
    RefusalReason.CLOSED: (409, "closed"),
    RefusalReason.INVALID_WINDOW: (422, "invalid_window"),
    RefusalReason.PRICE_CHANGED: (409, "price_changed"),
    RefusalReason.AMOUNT_MISMATCH: (422, "amount_mismatch"),
    RefusalReason.WRONG_STATE: (409, "wrong_state"),
    RefusalReason.DECLINED: (402, "declined"),
    RefusalReason.INVALID: (422, "invalid"),
}
CODES: dict[str, RefusalReason] = {code: reason for reason, (_, code) in REFUSALS.items()}
CODES["bad_request"] = RefusalReason.INVALID  # the simulator's answer to a body it cannot read
#: a code we do not know still says something through its status
STATUS_REFUSALS: dict[int, RefusalReason] = {400: RefusalReason.INVALID, 402: RefusalReason.DECLINED,
                                             404: RefusalReason.NOT_FOUND, 422: RefusalReason.INVALID}


def word(mapping: Mapping[str, Any], value: Any, name: str) -> Any:
    if not isinstance(value, str) or value not in mapping:
        raise WireError(f"{name} is not one of {', '.join(mapping)}: {value!r}")
    return mapping[value]


# --- client-chosen ids ---------------------------------------------------------------------

PREFIXES = {"reservation": "res-", "payment": "pay-", "permit": "pmt-", "validation": "val-"}


def record_id(kind: str, reference: str) -> str:
    """The id a create sends: derived from its reference, so a retry sends the same id. Two halves
    of hex around a letter: no run of 13 digits, so the gateway's card-number screen never refuses
    the id when a client sends it back (one 24-digit hex string in ~2,500 would otherwise trip it)."""
    digest = hashlib.sha256(reference.encode()).hexdigest()
    return f"{PREFIXES[kind]}{digest[:12]}g{digest[12:24]}"


# --- error answers -------------------------------------------------------------------------


def error_body(reason: RefusalReason, message: str, existing_id: str | None = None) -> tuple[int, dict[str, Any]]:
    status, code = REFUSALS[reason]
    error: dict[str, Any] = {"code": code, "message": message}
    if existing_id is not None:
        error["existingId"] = existing_id
    return status, {"error": error}


def refusal(status: int, body: bytes) -> tuple[RefusalReason, str, str | None] | None:
    """(reason, message, existingId) of a refused write, or None when the answer says no reason we know."""
    try:
        error = obj(obj(orjson.loads(body), "body").get("error"), "error")
    except (orjson.JSONDecodeError, WireError):
        error = {}
    code, message, existing = error.get("code"), error.get("message"), error.get("existingId")
    reason = CODES.get(code) if isinstance(code, str) else None
    reason = reason or STATUS_REFUSALS.get(status)
    if reason is None:
        return None
    return (reason, message if isinstance(message, str) and message else f"refused ({status})",
            existing if isinstance(existing, str) and existing else None)


# --- money ---------------------------------------------------------------------------------


def money_body(money: Money) -> dict[str, str]:
    return {"amount": format_amount(money.amount), "currency": money.currency}


def money(value: Any, name: str) -> Money:
    raw = obj(value, name)
    return Money(parse_amount(raw.get("amount"), f"{name}.amount"), currency_of(raw))


def _opt_time(raw: Mapping[str, Any], key: str) -> datetime | None:
    return None if raw.get(key) is None else parse_time(raw[key], key)


def _plate(raw: Mapping[str, Any]) -> str:
    try:
        return normalize_plate(text(raw, "plate"))
    except ValueError as exc:
        raise WireError(f"plate: {exc}") from None


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise WireError(f"{key!r} is not a boolean: {value!r}")
    return value


def _version(raw: Mapping[str, Any]) -> int:
    version = integer(raw, "version")
    if version < 1:
        raise WireError(f"version must be positive: {version}")
    return version


# --- reservations --------------------------------------------------------------------------


def reservation_body(request: ReservationRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record_id("reservation", request.reference),
        "placeId": request.vendor_facility_id,
        "plate": request.plate,
        "from": format_time(request.starts_at),
        "to": format_time(request.ends_at),
        "reference": request.reference,
    }
    if request.customer_name is not None:
        body["customerName"] = request.customer_name
    if request.expected_price is not None:
        body["expectedPrice"] = money_body(request.expected_price)
    return body


def reservation_change_body(change: ReservationChange) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if change.starts_at is not None:
        body["from"] = format_time(change.starts_at)
    if change.ends_at is not None:
        body["to"] = format_time(change.ends_at)
    if change.plate is not None:
        body["plate"] = change.plate
    return body


def reservation(value: Any) -> Reservation:
    raw = obj(value, "reservation")
    return Reservation(
        vendor_id=text(raw, "id"),
        vendor_facility_id=text(raw, "placeId"),
        plate=_plate(raw),
        starts_at=parse_time(raw.get("from"), "from"),
        ends_at=parse_time(raw.get("to"), "to"),
        status=word(RESERVATION_STATUSES, raw.get("status"), "status"),
        price=money(raw.get("price"), "price"),
        reference=text(raw, "reference"),
        created_at=parse_time(raw.get("createdAt"), "createdAt"),
        updated_at=parse_time(raw.get("updatedAt"), "updatedAt"),
        customer_name=opt_text(raw, "customerName"),
        paid=_flag(raw, "paid"),
        arrived_at=_opt_time(raw, "arrivedAt"),
        version=_version(raw),
    )


# --- sessions and payments -----------------------------------------------------------------


def session(value: Any) -> ParkingSession:
    raw = obj(value, "session")
    return ParkingSession(
        vendor_id=text(raw, "id"),
        vendor_facility_id=text(raw, "placeId"),
        plate=_plate(raw),
        entered_at=parse_time(raw.get("entryTime"), "entryTime"),
        exited_at=_opt_time(raw, "exitTime"),
        status=word(SESSION_STATUSES, raw.get("status"), "status"),
        amount_due=money(raw.get("amountDue"), "amountDue"),
        amount_paid=money(raw.get("amountPaid"), "amountPaid"),
        paid_until=_opt_time(raw, "paidUntil"),
        reservation_id=opt_text(raw, "reservationId"),
    )


TARGET_FIELDS = {PaymentTarget.SESSION: "sessionId", PaymentTarget.RESERVATION: "reservationId"}


def payment_body(request: PaymentRequest) -> dict[str, Any]:
    return {
        "id": record_id("payment", request.reference),
        "placeId": request.vendor_facility_id,
        TARGET_FIELDS[request.target]: request.target_id,
        "amount": money_body(request.amount),
        "token": request.token,
        "reference": request.reference,
    }


def payment(value: Any) -> Payment:
    raw = obj(value, "payment")
    targets = [(target, raw[key]) for target, key in TARGET_FIELDS.items() if raw.get(key) is not None]
    if len(targets) != 1:
        raise WireError("a payment names exactly one of sessionId, reservationId")
    target, target_id = targets[0]
    if not isinstance(target_id, str) or not target_id:
        raise WireError(f"{TARGET_FIELDS[target]} is not a non-empty string")
    return Payment(
        vendor_id=text(raw, "id"),
        vendor_facility_id=text(raw, "placeId"),
        target=target,
        target_id=target_id,
        amount=money(raw.get("amount"), "amount"),
        reference=text(raw, "reference"),
        created_at=parse_time(raw.get("createdAt"), "createdAt"),
        processor_reference=opt_text(raw, "processorReference"),
    )


# --- permits and validations ---------------------------------------------------------------


def permit_body(request: PermitRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record_id("permit", request.reference),
        "placeId": request.vendor_facility_id,
        "plate": request.plate,
        "holderName": request.holder_name,
        "validFrom": format_time(request.valid_from),
        "reference": request.reference,
    }
    if request.valid_until is not None:
        body["validUntil"] = format_time(request.valid_until)
    if request.description is not None:
        body["description"] = request.description
    return body


def permit_change_body(change: PermitChange) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if change.plate is not None:
        body["plate"] = change.plate
    if change.holder_name is not None:
        body["holderName"] = change.holder_name
    if change.valid_from is not None:
        body["validFrom"] = format_time(change.valid_from)
    if change.valid_until is not None:
        body["validUntil"] = format_time(change.valid_until)
    if change.description is not None:
        body["description"] = change.description
    return body


def permit(value: Any) -> Permit:
    raw = obj(value, "permit")
    return Permit(
        vendor_id=text(raw, "id"),
        vendor_facility_id=text(raw, "placeId"),
        plate=_plate(raw),
        holder_name=text(raw, "holderName"),
        valid_from=parse_time(raw.get("validFrom"), "validFrom"),
        valid_until=_opt_time(raw, "validUntil"),
        status=word(PERMIT_STATUSES, raw.get("status"), "status"),
        reference=text(raw, "reference"),
        created_at=parse_time(raw.get("createdAt"), "createdAt"),
        updated_at=parse_time(raw.get("updatedAt"), "updatedAt"),
        description=opt_text(raw, "description"),
        version=_version(raw),
    )


def validation_body(request: ValidationRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record_id("validation", request.reference),
        "placeId": request.vendor_facility_id,
        "plate": request.plate,
        "validFrom": format_time(request.valid_from),
        "validUntil": format_time(request.valid_until),
        "reference": request.reference,
    }
    if request.guest_name is not None:
        body["guestName"] = request.guest_name
    if request.source is not None:
        body["source"] = request.source
    return body


def validation(value: Any) -> Validation:
    raw = obj(value, "validation")
    return Validation(
        vendor_id=text(raw, "id"),
        vendor_facility_id=text(raw, "placeId"),
        plate=_plate(raw),
        valid_from=parse_time(raw.get("validFrom"), "validFrom"),
        valid_until=parse_time(raw.get("validUntil"), "validUntil"),
        status=word(VALIDATION_STATUSES, raw.get("status"), "status"),
        reference=text(raw, "reference"),
        created_at=parse_time(raw.get("createdAt"), "createdAt"),
        guest_name=opt_text(raw, "guestName"),
        source=opt_text(raw, "source"),
    )


# --- transactions ------------------------------------------------------------------------


def transaction(value: Any) -> Transaction:
    raw = obj(value, "transaction")
    amount, tax = money(raw.get("amount"), "amount"), money(raw.get("tax"), "tax")
    if tax.currency != amount.currency:
        raise WireError(f"tax in {tax.currency} on an amount in {amount.currency}")
    return Transaction(
        vendor_id=text(raw, "id"),
        vendor_facility_id=text(raw, "placeId"),
        occurred_at=parse_time(raw.get("occurredAt"), "occurredAt"),
        amount=amount,
        tax=tax,
        payment_type=word(PAYMENT_TYPES, raw.get("paymentType"), "paymentType"),
        revenue_category=word(REVENUE_CATEGORIES, raw.get("revenueCategory"), "revenueCategory"),
        description=opt_text(raw, "description") or "",
        reference=opt_text(raw, "reference"),
    )
