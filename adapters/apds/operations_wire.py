"""APDS v4 operations on the wire: assigned rights (reservations, permits, validations), their
payments, sessions, and the answers a write is refused with. Shared by the adapter (bodies out,
strict parsers in) and the simulator (the platform's side).

The mapping, and what APDS has no field for:
- Reservations, permits and validations are `AssignedRight`s of the place's right specification
  of that kind (wire.RIGHT_KINDS): the holder's plate is a `licensePlate` credential of the
  `rightHolder`, the holder's name a customer credential (`className: CustomerName`: APDS has no
  name field), the window the right's one `plannedUse` (startTime, endTime), cancelling or revoking
  sets that planned use's `cancelTime` (PUT, the whole right, version + 1). A right's place is its
  specification's (one) hierarchy element. The price is `monetaryValue`; a booking that sends one
  asks for exactly that price. APDS has no update time: the latest of issuance, cancellation and
  collected payments stands in. A validation's `source` (what granted it) is its
  `assignedRightIssuer` (`className: ValidationSource`). A permit's description has no place.
- Ids are the client's (the README: clients manage ids and versions; a duplicate id is 409):
  derived from the write's reference (`record_id`), so a retried create sends the same id.
- Payments are where APDS puts them, on the right (`payments`): paying a reservation adds one to
  the reservation, paying a session adds one to the ticket right its open segment runs under. A
  payment's `transactionID` carries the processor's token going in and the charge's reference coming
  back; its lines are the net amount (`idCode`: how it was paid: card, cash, mobile, invoice) and
  the tax (`idCode: tax`); `endPeriodCovered` is how long the car may stay (paidUntil).
- Sessions: the plate is the `licensePlate` of `identifiedCredentials`, the place `hierachyElement`
  (sic), amounts the segments' `financialTransactions` (collected: `dateCollected`; outstanding:
  none yet), a reserved car's reservation the right of its segment.
- Transactions (finance) are the payments collected on rights, by `dateCollected`: APDS has no
  ledger; the revenue category is the kind of right paid for.
- Refusals are `ResponseStatus` answers (status, code = HTTP status, message). APDS names no
  reasons, so the simulator starts its message with one (`FULLY_BOOKED: ...`); from any other
  platform the HTTP status says what it can.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from adapters.apds.wire import (
    LICENSE_PLATE,
    RightKind,
    SpecInfo,
    WireError,
    amount,
    amount_body,
    decimal,
    format_time,
    integer,
    items,
    obj,
    opt_items,
    opt_text,
    opt_time,
    parse_time,
    ref_id,
    text,
    text_body,
    versioned,
)
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
    normalize_plate,
)

PLATE_CLASS = "LicensePlate"
NAME_CLASS = "CustomerName"
SOURCE_CLASS = "ValidationSource"
TAX_CODE = "tax"
METHODS: dict[str, PaymentType] = {t.value.lower(): t for t in PaymentType}
CATEGORIES: dict[RightKind, RevenueCategory] = {
    RightKind.TRANSIENT: RevenueCategory.TRANSIENT, RightKind.RESERVATION: RevenueCategory.RESERVATION,
    RightKind.PERMIT: RevenueCategory.PERMIT, RightKind.VALIDATION: RevenueCategory.VALIDATION,
}

# --- client-chosen ids ---------------------------------------------------------------------------

PREFIXES = {"reservation": "res-", "payment": "pay-", "permit": "pmt-", "validation": "val-", "quote": "quo-"}


def record_id(kind: str, reference: str) -> str:
    """The id a create sends: derived from its reference, so a retry sends the same id. Two halves
    of hex around a letter: no run of 13 digits, so the gateway's card-number screen never refuses
    the id when a client sends it back (one 24-digit hex string in ~2,500 would otherwise trip it)."""
    digest = hashlib.sha256(reference.encode()).hexdigest()
    return f"{PREFIXES[kind]}{digest[:12]}g{digest[12:24]}"


# --- answers: ResponseStatus ---------------------------------------------------------------------

#: the HTTP status the simulator refuses each reason with (those the document declares: 400, 404, 409)
REFUSAL_STATUS: dict[RefusalReason, int] = {
    RefusalReason.NOT_FOUND: 404, RefusalReason.DUPLICATE: 409, RefusalReason.FULLY_BOOKED: 409,
    RefusalReason.CLOSED: 409, RefusalReason.INVALID_WINDOW: 400, RefusalReason.PRICE_CHANGED: 409,
    RefusalReason.AMOUNT_MISMATCH: 400, RefusalReason.WRONG_STATE: 409, RefusalReason.DECLINED: 409,
    RefusalReason.INVALID: 400,
}
#: what a status says without a reason we know
STATUS_REFUSALS: dict[int, RefusalReason] = {400: RefusalReason.INVALID, 402: RefusalReason.DECLINED,
                                             404: RefusalReason.NOT_FOUND, 409: RefusalReason.WRONG_STATE,
                                             422: RefusalReason.INVALID}


def status_body(code: int, message: str | None = None) -> dict[str, Any]:
    """A ResponseStatus: ok for 2xx, else an error with its code and message."""
    body: dict[str, Any] = {"status": "ok" if code < 300 else "error", "code": code}
    if message:
        body["message"] = message
    return body


def refusal_body(reason: RefusalReason, message: str) -> tuple[int, dict[str, Any]]:
    status = REFUSAL_STATUS[reason]
    return status, status_body(status, f"{reason.value}: {message}")


def refusal(status: int, body: bytes) -> tuple[RefusalReason, str] | None:
    """(reason, message) of a refused call, or None when the answer says nothing we can act on."""
    try:
        message = obj(orjson.loads(body), "body").get("message")
    except (orjson.JSONDecodeError, WireError):
        message = None
    reason = None
    if isinstance(message, str):
        word = message.split(":", 1)[0].strip()
        reason = RefusalReason.__members__.get(word)
    reason = reason or STATUS_REFUSALS.get(status)
    if reason is None:
        return None
    return reason, message if isinstance(message, str) and message else f"refused ({status})"


# --- credentials -----------------------------------------------------------------------------------


def credential(class_name: str, value: str, issuer: str, kind: str | None = None) -> dict[str, Any]:
    """A CredentialAssigned (a HolderCredential): what identifies the holder, and who vouches for it."""
    body: dict[str, Any] = {"identifier": {"className": class_name, "id": value}, "issuer": text_body(issuer)}
    if kind is not None:
        body["type"] = kind
    return body


def plate_credential(plate: str, issuer: str) -> dict[str, Any]:
    return credential(PLATE_CLASS, plate, issuer, LICENSE_PLATE)


def credential_value(credentials: Sequence[Any], class_name: str, kind: str | None = None) -> str | None:
    for raw in credentials:
        raw = obj(raw, "credential")
        identifier = obj(raw.get("identifier"), "credential.identifier")
        if identifier.get("className") == class_name or (kind is not None and raw.get("type") == kind):
            return text(identifier, "id")
    return None


def plate_of(credentials: Sequence[Any]) -> str:
    plate = credential_value(credentials, PLATE_CLASS, LICENSE_PLATE)
    if plate is None:
        raise WireError("no licensePlate credential")
    try:
        return normalize_plate(plate)
    except ValueError as exc:
        raise WireError(f"plate: {exc}") from None


def holder_credentials(raw: Mapping[str, Any]) -> list[Any]:
    return opt_items(obj(raw.get("rightHolder"), "rightHolder"), "credentials")


# --- assigned rights -------------------------------------------------------------------------------


def right_body(*, right_id: str, version: int, spec: SpecInfo, plate: str, issuer: str, starts_at: datetime,
               ends_at: datetime | None, issued_at: datetime, name: str | None = None,
               cancelled_at: datetime | None = None, price: Money | None = None,
               payments: Sequence[Mapping[str, Any]] = (), source: str | None = None) -> dict[str, Any]:
    """An AssignedRight of `spec` to the holder of `plate`, for one planned use."""
    credentials = [plate_credential(plate, issuer)]
    if name is not None:
        credentials.append(credential(NAME_CLASS, name, issuer))
    use: dict[str, Any] = {"startTime": format_time(starts_at), "issuanceTime": format_time(issued_at),
                           "issueMethod": "electronic"}
    if ends_at is not None:
        use["endTime"] = format_time(ends_at)
    if cancelled_at is not None:
        use["cancelTime"] = format_time(cancelled_at)
    body: dict[str, Any] = {
        "id": right_id,
        "version": version,
        "rightSpecification": versioned(spec.id, spec.version),
        "rightHolder": {"credentials": credentials},
        "issuanceTime": format_time(issued_at),
        "issueMethod": "electronic",
        "plannedUses": [use],
    }
    if price is not None:
        body["monetaryValue"] = {"taxIncluded": True, "serviceProvider": versioned(spec.place_id),
                                 "value": amount_body(price)}
    if payments:
        body["payments"] = [dict(p) for p in payments]
    if source is not None:
        body["assignedRightIssuer"] = {"className": SOURCE_CLASS, "id": source}
    return body


def planned_use(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    uses = items(raw, "plannedUses")
    if len(uses) != 1:
        raise WireError(f"a right with {len(uses)} planned uses, not one")
    return obj(uses[0], "plannedUse")


def spec_of(raw: Mapping[str, Any]) -> str:
    return ref_id(raw.get("rightSpecification"), "rightSpecification")


def _updated(raw: Mapping[str, Any], use: Mapping[str, Any], *also: datetime | None) -> datetime:
    times = [parse_time(raw.get("issuanceTime"), "issuanceTime"), opt_time(use, "cancelTime"), *also]
    times += [opt_time(obj(p, "payment"), "dateCollected") for p in opt_items(raw, "payments")]
    return max(t for t in times if t is not None)


def _price(raw: Mapping[str, Any]) -> Money:
    return amount(obj(raw.get("monetaryValue"), "monetaryValue").get("value"), "monetaryValue.value")


def reservation(raw: Any, place_id: str, now: datetime, arrival: tuple[datetime, bool] | None = None) -> Reservation:
    """An assigned reservation right; `arrival`: when its car entered and whether it has left (from sessions)."""
    raw = obj(raw, "assigned right")
    use = planned_use(raw)
    starts, ends = parse_time(use.get("startTime"), "startTime"), parse_time(use.get("endTime"), "endTime")
    if use.get("cancelTime") is not None:
        status = ReservationStatus.CANCELLED
    elif arrival is not None:
        status = ReservationStatus.COMPLETED if arrival[1] else ReservationStatus.ARRIVED
    else:
        status = ReservationStatus.NO_SHOW if now > ends else ReservationStatus.BOOKED
    right_id = text(raw, "id")
    return Reservation(
        vendor_id=right_id,
        vendor_facility_id=place_id,
        plate=plate_of(holder_credentials(raw)),
        starts_at=starts,
        ends_at=ends,
        status=status,
        price=_price(raw),
        reference=right_id,
        created_at=parse_time(raw.get("issuanceTime"), "issuanceTime"),
        updated_at=_updated(raw, use, arrival[0] if arrival else None),
        customer_name=credential_value(holder_credentials(raw), NAME_CLASS),
        paid=bool(collected(raw)),
        arrived_at=arrival[0] if arrival else None,
        version=_version(raw),
    )


def permit(raw: Any, place_id: str, now: datetime) -> Permit:
    raw = obj(raw, "assigned right")
    use = planned_use(raw)
    starts, ends = parse_time(use.get("startTime"), "startTime"), opt_time(use, "endTime")
    if use.get("cancelTime") is not None:
        status = PermitStatus.REVOKED
    elif ends is not None and now >= ends:
        status = PermitStatus.EXPIRED
    else:
        status = PermitStatus.PENDING if now < starts else PermitStatus.ACTIVE
    right_id = text(raw, "id")
    credentials = holder_credentials(raw)
    return Permit(
        vendor_id=right_id,
        vendor_facility_id=place_id,
        plate=plate_of(credentials),
        holder_name=credential_value(credentials, NAME_CLASS) or "",
        valid_from=starts,
        valid_until=ends,
        status=status,
        reference=right_id,
        created_at=parse_time(raw.get("issuanceTime"), "issuanceTime"),
        updated_at=_updated(raw, use),
        version=_version(raw),
    )


def validation(raw: Any, place_id: str, now: datetime) -> Validation:
    raw = obj(raw, "assigned right")
    use = planned_use(raw)
    starts, ends = parse_time(use.get("startTime"), "startTime"), parse_time(use.get("endTime"), "endTime")
    if use.get("cancelTime") is not None:
        status = ValidationStatus.REVOKED
    else:
        status = ValidationStatus.EXPIRED if now >= ends else ValidationStatus.ACTIVE
    issuer = raw.get("assignedRightIssuer")
    source = text(obj(issuer, "assignedRightIssuer"), "id") if issuer is not None else None
    right_id = text(raw, "id")
    return Validation(
        vendor_id=right_id,
        vendor_facility_id=place_id,
        plate=plate_of(holder_credentials(raw)),
        valid_from=starts,
        valid_until=ends,
        status=status,
        reference=right_id,
        created_at=parse_time(raw.get("issuanceTime"), "issuanceTime"),
        guest_name=credential_value(holder_credentials(raw), NAME_CLASS),
        source=source,
    )


def _version(raw: Mapping[str, Any]) -> int:
    version = integer(raw, "version")
    if version < 1:
        raise WireError(f"version must be positive: {version}")
    return version


# --- payments ------------------------------------------------------------------------------------


def payment_body(*, payment_id: str, gross: Money, tax: Decimal, method: PaymentType, transaction_id: str,
                 collected_at: datetime | None, provider: str, covered_until: datetime | None = None,
                 kind: str = "payment") -> dict[str, Any]:
    """A Payment on a right: the net line (its idCode how it was paid) and the tax line."""
    lines = [
        {"id": f"{payment_id}-net", "version": 1, "paymentType": kind, "idCode": method.value.lower(),
         "value": amount_body(Money(gross.amount - tax, gross.currency))},
        {"id": f"{payment_id}-tax", "version": 1, "paymentType": kind, "idCode": TAX_CODE,
         "value": amount_body(Money(tax, gross.currency))},
    ]
    body: dict[str, Any] = {"id": payment_id, "version": 1, "serviceProvider": versioned(provider),
                            "transactionID": transaction_id, "paymentLines": lines}
    if collected_at is not None:
        body["dateCollected"] = format_time(collected_at)
    if covered_until is not None:
        body["endPeriodCovered"] = format_time(covered_until)
    return body


def token_payment(payment_id: str, money: Money, token: str, provider: str) -> dict[str, Any]:
    """What the gateway sends to pay: the whole amount on one line, the processor's token as transactionID
    (the platform charges it, splits out the tax and records the charge's reference)."""
    return {"id": payment_id, "version": 1, "serviceProvider": versioned(provider), "transactionID": token,
            "paymentLines": [{"id": f"{payment_id}-1", "version": 1, "paymentType": "payment",
                              "value": amount_body(money)}]}


def collected(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The right's payments that were collected (have a dateCollected)."""
    return [obj(p, "payment") for p in opt_items(raw, "payments") if obj(p, "payment").get("dateCollected") is not None]


def _gross_and_tax(raw: Mapping[str, Any]) -> tuple[Money, Money, PaymentType, str]:
    lines = [obj(line, "paymentLine") for line in items(raw, "paymentLines")]
    if not lines:
        raise WireError("a payment without lines")
    values = [(amount(line.get("value"), "paymentLine.value"), line) for line in lines]
    currency = values[0][0].currency
    if any(v.currency != currency for v, _ in values):
        raise WireError("a payment in several currencies")
    gross = sum((v.amount for v, _ in values), Decimal(0))
    tax = sum((v.amount for v, line in values if line.get("idCode") == TAX_CODE), Decimal(0))
    methods = [line.get("idCode") for _, line in values if line.get("idCode") != TAX_CODE]
    method = METHODS.get(methods[0]) if methods and isinstance(methods[0], str) else None
    kind = text(lines[0], "paymentType")
    return Money(gross, currency), Money(tax, currency), method or PaymentType.CARD, kind


def payment(raw: Any, place_id: str, target: PaymentTarget, target_id: str) -> Payment:
    raw = obj(raw, "payment")
    gross, _, _, _ = _gross_and_tax(raw)
    payment_id = text(raw, "id")
    return Payment(
        vendor_id=payment_id,
        vendor_facility_id=place_id,
        target=target,
        target_id=target_id,
        amount=gross,
        reference=payment_id,
        created_at=parse_time(raw.get("dateCollected"), "dateCollected"),
        processor_reference=opt_text(raw, "transactionID"),
    )


def transactions(raw: Any, place_id: str, kind: RightKind, since: datetime, until: datetime) -> list[Transaction]:
    """The money collected on one right in [since, until): one transaction per payment."""
    raw = obj(raw, "assigned right")
    out = []
    for pay in collected(raw):
        at = parse_time(pay.get("dateCollected"), "dateCollected")
        if not since <= at < until:
            continue
        gross, tax, method, line_kind = _gross_and_tax(pay)
        category = CATEGORIES[kind]
        out.append(Transaction(
            vendor_id=text(pay, "id"), vendor_facility_id=place_id, occurred_at=at, amount=gross, tax=tax,
            payment_type=PaymentType.INVOICE if line_kind == "validation" else method, revenue_category=category,
            description=f"{category.value.lower().capitalize()} ({method.value.lower()})", reference=text(raw, "id"),
        ))
    return out


# --- sessions ------------------------------------------------------------------------------------


def session(raw: Any, kind_of: Callable[[str], RightKind | None], currency: str | None = None) -> ParkingSession:
    """A Session (expanded with its segments' rights); `kind_of` tells a right specification's kind."""
    raw = obj(raw, "session")
    segments = [obj(s, "segment") for s in items(raw, "segments")]
    if not segments:
        raise WireError("a session without segments")
    due, paid = Decimal("0.00"), Decimal("0.00")
    currencies: set[str] = set()
    for segment in segments:
        for entry in opt_items(segment, "financialTransactions"):
            entry = obj(entry, "financialTransaction")
            value = decimal(entry.get("segmentValue"), "segmentValue")
            currencies.add(text(entry, "currency"))
            if entry.get("dateCollected") is None:
                due += value
            else:
                paid += value
    if len(currencies) > 1:
        raise WireError("a session in several currencies")
    money_in = next(iter(currencies), currency)
    if money_in is None:
        raise WireError("a session whose currency is unknown")
    current = segments[-1]
    right = current.get("assignedRight")
    reservation_id = paid_until = None
    if isinstance(right, Mapping) and "rightSpecification" in right:  # expanded
        if kind_of(spec_of(right)) is RightKind.RESERVATION:
            reservation_id = text(right, "id")
        covered = [opt_time(obj(p, "payment"), "endPeriodCovered") for p in opt_items(right, "payments")]
        paid_until = max((t for t in covered if t is not None), default=None)
    ended = opt_time(raw, "actualEnd")
    return ParkingSession(
        vendor_id=text(raw, "id"),
        vendor_facility_id=ref_id(raw.get("hierachyElement"), "hierachyElement"),
        plate=plate_of(items(raw, "identifiedCredentials")),
        entered_at=parse_time(raw.get("actualStart"), "actualStart"),
        exited_at=ended,
        status=SessionStatus.CLOSED if ended is not None else SessionStatus.OPEN,
        amount_due=Money(due, money_in),
        amount_paid=Money(paid, money_in),
        paid_until=paid_until,
        reservation_id=reservation_id,
    )


def segment_right(raw: Any) -> Mapping[str, Any]:
    """The (expanded) right the session's open segment runs under."""
    segments = items(obj(raw, "session"), "segments")
    if not segments:
        raise WireError("a session without segments")
    return obj(obj(segments[-1], "segment").get("assignedRight"), "segment.assignedRight")
