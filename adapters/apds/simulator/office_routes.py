"""The APDS simulator's operations: the shared back office (`adapters.simulated.back_office`)
as APDS assigned rights and sessions (the mapping: adapters/apds/operations_wire.py).

    GET  /rights/assigned           list: right_spec, place, credential_id, start/end_after|before, modified_since
    POST /rights/assigned           a reservation, permit or validation right (the client's id; 409 if taken)
    GET  /rights/assigned/{id}      one right (reservations, permits, validations, tickets of sessions)
    PUT  /rights/assigned/{id}      the whole right, next version: new window or plate, cancelTime, payments
    GET  /sessions, /sessions/{id}  stays of cars whose plate the barrier read, their segments and money

Business rules live in the office; this module reads requests, calls it, and renders its records.
Only records at garages this platform runs are visible here: the office is shared with the world's
other PARCS, whose records answer 404 as if they did not exist. The ledger's history (before the
sandbox started) appears as rights of no holder, each with its one payment, to `modified_since`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.apds import operations_wire as ow
from adapters.apds.simulator import catalog
from adapters.apds.simulator.plumbing import body_of, error, guard, listing, ok, param
from adapters.apds.simulator.plumbing import now as sim_now
from adapters.apds.simulator.state import OPERATOR, ApdsState
from adapters.apds.wire import (
    RightKind,
    SpecInfo,
    WireError,
    amount,
    format_time,
    items,
    number,
    obj,
    opt_items,
    opt_text,
    opt_time,
    parse_time,
    text,
    text_body,
    versioned,
)
from adapters.models import Money
from adapters.operation_models import PaymentTarget, RefusalReason, ReservationStatus, normalize_plate
from adapters.simulated.back_office import (
    EXIT_GRACE,
    BackOffice,
    BookedReservation,
    GrantedValidation,
    HeldPermit,
    OfficeRefusal,
    PostedTransaction,
    Session,
    office_of,
)
from adapters.simulated.harness import vendor_error

MAX_ID = 100
TICKET = "-ticket"

OfficeHandler = Callable[[ApdsState, BackOffice, Request], Awaitable[Response]]


def routes(state: ApdsState, root: str) -> list[Route]:
    def route(path: str, handler: OfficeHandler, method: str) -> Route:
        return Route(root + path, guard(state, _office(handler)), methods=[method])

    return [
        route("/rights/assigned", _list_rights, "GET"),
        route("/rights/assigned", _create_right, "POST"),
        route("/rights/assigned/{id}", _get_right, "GET"),
        route("/rights/assigned/{id}", _update_right, "PUT"),
        route("/sessions", _list_sessions, "GET"),
        route("/sessions/{id}", _get_session, "GET"),
    ]


def _office(handler: OfficeHandler) -> Callable[[ApdsState, Request], Awaitable[Response]]:
    """The office's refusals as ResponseStatus answers naming the reason; a WireError goes on (400)."""

    async def run(state: ApdsState, request: Request) -> Response:
        try:
            return await handler(state, office_of(state.world), request)
        except OfficeRefusal as exc:
            status, body = ow.refusal_body(exc.reason, exc.message)
            return vendor_error(status, body)

    return run


# --- the rights the office holds, as APDS renders them ------------------------------------------------


@dataclass
class Right:
    kind: RightKind
    garage: str
    body: dict[str, Any]
    #: the office record behind it (None: a history entry)
    record: BookedReservation | HeldPermit | GrantedValidation | Session | None = None


def _spec(state: ApdsState, garage: str, kind: RightKind) -> SpecInfo:
    return catalog.spec(state, state.place_ids[garage], kind)


def _mine(state: ApdsState, garage: str, what: str, record_id: str) -> None:
    if garage not in state.place_ids:
        raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no {what} {record_id!r}")


def collected(office: BackOffice, reference: str) -> list[tuple[PostedTransaction, dict[str, Any]]]:
    """The money collected for `reference` (a reservation, session, validation id): ledger entries
    and the Payments they are on the wire (a charge made through the API under the client's id)."""
    out = []
    for entry in office.ledger:
        if entry.reference != reference:
            continue
        charge = next((c for c in office.charges.values() if c.target_id == reference
                       and c.created_at == entry.occurred_at and c.amount == entry.amount), None)
        out.append((entry, _payment(entry, charge.id if charge else entry.id,
                                    charge.processor_reference if charge else entry.id,
                                    entry.occurred_at + EXIT_GRACE if charge and charge.target is PaymentTarget.SESSION
                                    else None)))
    return out


def payments(office: BackOffice, reference: str) -> list[dict[str, Any]]:
    return [payment for _, payment in collected(office, reference)]


def _payment(entry: PostedTransaction, payment_id: str, transaction_id: str, covered: datetime | None) -> dict[str, Any]:
    return ow.payment_body(payment_id=payment_id, gross=Money(entry.amount, entry.currency), tax=entry.tax,
                           method=entry.payment_type, transaction_id=transaction_id, collected_at=entry.occurred_at,
                           provider=OPERATOR, covered_until=covered,
                           kind="validation" if entry.category.value == "VALIDATION" else "payment")


def reservation_right(state: ApdsState, office: BackOffice, r: BookedReservation) -> Right:
    cancelled = r.updated_at if r.status is ReservationStatus.CANCELLED else None
    body = ow.right_body(right_id=r.id, version=r.version, spec=_spec(state, r.garage, RightKind.RESERVATION),
                         plate=r.plate, issuer=OPERATOR, starts_at=r.starts_at, ends_at=r.ends_at, issued_at=r.created_at,
                         name=r.customer_name, cancelled_at=cancelled, price=Money(r.price, r.currency),
                         payments=payments(office, r.id))
    return Right(RightKind.RESERVATION, r.garage, body, r)


def permit_right(state: ApdsState, office: BackOffice, p: HeldPermit) -> Right:
    body = ow.right_body(right_id=p.id, version=p.version, spec=_spec(state, p.garage, RightKind.PERMIT),
                         plate=p.plate, issuer=OPERATOR, starts_at=p.valid_from, ends_at=p.valid_until,
                         issued_at=p.created_at, name=p.holder_name, cancelled_at=p.revoked_at)
    return Right(RightKind.PERMIT, p.garage, body, p)


def validation_right(state: ApdsState, office: BackOffice, v: GrantedValidation) -> Right:
    body = ow.right_body(right_id=v.id, version=2 if v.revoked else 1, spec=_spec(state, v.garage, RightKind.VALIDATION),
                         plate=v.plate, issuer=OPERATOR, starts_at=v.valid_from, ends_at=v.valid_until,
                         issued_at=v.created_at, name=v.guest_name,
                         cancelled_at=state.revoked_at.get(v.id) if v.revoked else None,
                         payments=payments(office, v.id), source=v.source)
    return Right(RightKind.VALIDATION, v.garage, body, v)


def ticket_right(state: ApdsState, office: BackOffice, s: Session) -> Right:
    paid = payments(office, s.id)
    body: dict[str, Any] = {
        "id": s.id + TICKET, "version": 1 + len(paid),
        "rightSpecification": versioned(_spec(state, s.garage, RightKind.TRANSIENT).id),
        "rightHolder": {"credentials": [ow.plate_credential(s.plate, OPERATOR)]},
        "issuanceTime": format_time(s.entered_at), "issueMethod": "ticket",
    }
    if paid:
        body["payments"] = paid
    return Right(RightKind.TRANSIENT, s.garage, body, s)


def history_right(state: ApdsState, entry: PostedTransaction) -> Right:
    kind = RightKind(entry.category.value)
    body = {"id": entry.id, "version": 1, "rightSpecification": versioned(_spec(state, entry.garage, kind).id),
            "rightHolder": {}, "issuanceTime": format_time(entry.occurred_at),
            "payments": [_payment(entry, entry.id, entry.id, None)]}
    return Right(kind, entry.garage, body)


def session_right(state: ApdsState, office: BackOffice, s: Session) -> Right:
    """The right a session runs under: its reservation, the plate's permit or validation, else a ticket."""
    reservation = office.reservations.get(s.reservation_id or "")
    if reservation is not None:
        return reservation_right(state, office, reservation)
    permit = office.permit_for(s.garage, s.plate, s.entered_at)
    if permit is not None:
        return permit_right(state, office, permit)
    validation = office.validation_for(s.garage, s.plate, s.entered_at)
    if validation is not None:
        return validation_right(state, office, validation)
    return ticket_right(state, office, s)


def all_rights(state: ApdsState, office: BackOffice, history_since: datetime | None) -> list[Right]:
    garages = state.place_ids
    rights = [reservation_right(state, office, r) for r in office.reservations.values() if r.garage in garages]
    rights += [permit_right(state, office, p) for p in office.permits.values() if p.garage in garages]
    rights += [validation_right(state, office, v) for v in office.validations.values() if v.garage in garages]
    rights += [ticket_right(state, office, s) for s in office.sessions.values() if s.garage in garages]
    if history_since is not None:
        rights += [history_right(state, e) for e in office.transactions(list(garages), history_since, datetime.now(UTC))
                   if e.reference is None]
    return rights


def find_right(state: ApdsState, office: BackOffice, right_id: str) -> Right:
    garages = state.place_ids
    record: BookedReservation | HeldPermit | GrantedValidation | Session | None
    record = office.reservations.get(right_id) or office.permits.get(right_id) or office.validations.get(right_id)
    if record is None and right_id.endswith(TICKET):
        record = office.sessions.get(right_id[:-len(TICKET)])
    if record is None or record.garage not in garages:  # another PARCS's records do not exist here
        raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no assigned right {right_id!r}")
    if isinstance(record, BookedReservation):
        return reservation_right(state, office, record)
    if isinstance(record, HeldPermit):
        return permit_right(state, office, record)
    if isinstance(record, GrantedValidation):
        return validation_right(state, office, record)
    return ticket_right(state, office, record)


def modified(body: Mapping[str, Any]) -> datetime:
    times = [parse_time(body["issuanceTime"], "issuanceTime")]
    for use in opt_items(body, "plannedUses"):
        times.append(opt_time(use, "cancelTime") or times[0])
    times += [parse_time(p["dateCollected"], "dateCollected") for p in opt_items(body, "payments") if p.get("dateCollected")]
    return max(times)


# --- /rights/assigned ----------------------------------------------------------------------------


def _epoch(request: Request, name: str) -> datetime | None:
    value = param(request, name)
    return None if value is None else datetime.fromtimestamp(value, UTC)


async def _list_rights(state: ApdsState, office: BackOffice, request: Request) -> Response:
    since = _epoch(request, "modified_since")
    specs, places = set(listing(request, "right_spec")), set(listing(request, "place"))
    plates = _plates(request)
    windows = {name: _epoch(request, name) for name in ("start_before", "end_before", "start_after", "end_after")}

    def build() -> list[Any]:
        out = []
        for right in all_rights(state, office, since):
            body = right.body
            if specs and body["rightSpecification"]["id"] not in specs:
                continue
            if places and state.place_ids[right.garage] not in places:
                continue
            if plates is not None and ow.credential_value(ow.holder_credentials(body), ow.PLATE_CLASS) not in plates:
                continue
            if since is not None and modified(body) < since:
                continue
            if any(windows.values()) and not _in_window(body, windows):
                continue
            out.append(body)
        out.sort(key=lambda b: (b["issuanceTime"], b["id"]))
        return state.listed("rights", out)

    return state.views.page(request, "rights", build)


def _plates(request: Request) -> set[str] | None:
    """The plates a `credential_id` filter names (None: no filter); an id no plate could be matches nothing."""
    asked = listing(request, "credential_id")
    if not asked:
        return None
    plates = set()
    for value in asked:
        try:
            plates.add(normalize_plate(value))
        except ValueError:
            continue
    return plates


def _in_window(body: Mapping[str, Any], windows: Mapping[str, datetime | None]) -> bool:
    uses = opt_items(body, "plannedUses")
    if not uses:
        return False  # a right with no planned use has no window to match
    start = parse_time(uses[0]["startTime"], "startTime")
    end = opt_time(uses[0], "endTime")
    checks = {
        "start_before": lambda at: start < at, "start_after": lambda at: start > at,
        "end_before": lambda at: end is not None and end < at, "end_after": lambda at: end is None or end > at,
    }
    return all(checks[name](at) for name, at in windows.items() if at is not None)


async def _get_right(state: ApdsState, office: BackOffice, request: Request) -> Response:
    right = find_right(state, office, request.path_params["id"])
    return JSONResponse(state.overridden("rights", right.body))


@dataclass(frozen=True)
class RightRequest:
    """What a client's AssignedRight asks for."""

    id: str
    version: int
    garage: str
    kind: RightKind
    plate: str
    name: str | None
    starts_at: datetime
    ends_at: datetime | None
    cancelled: bool
    price: Money | None
    source: str | None
    payments: list[Mapping[str, Any]]


def _read_right(state: ApdsState, body: Mapping[str, Any]) -> RightRequest:
    right_id = text(body, "id")
    if len(right_id) > MAX_ID:
        raise WireError(f"id is longer than {MAX_ID} characters")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise WireError("version must be a positive integer")
    found = catalog.spec_by_id(state, text(obj(body.get("rightSpecification"), "rightSpecification"), "id"))
    if found is None:
        raise OfficeRefusal(RefusalReason.INVALID, "no such right specification here")
    garage, spec = found
    assert spec.kind is not None
    credentials = ow.holder_credentials(body)
    uses = items(body, "plannedUses") if spec.kind is not RightKind.TRANSIENT else opt_items(body, "plannedUses")
    use = obj(uses[0], "plannedUse") if uses else {}
    price = None
    if body.get("monetaryValue") is not None:
        price = amount(obj(body["monetaryValue"], "monetaryValue").get("value"), "monetaryValue.value")
    issuer = body.get("assignedRightIssuer")
    return RightRequest(
        id=right_id, version=version, garage=garage, kind=spec.kind, plate=ow.plate_of(credentials),
        name=ow.credential_value(credentials, ow.NAME_CLASS),
        starts_at=parse_time(use.get("startTime"), "startTime") if use else parse_time(body.get("issuanceTime"), "issuanceTime"),
        ends_at=opt_time(use, "endTime") if use else None, cancelled=bool(use) and use.get("cancelTime") is not None,
        price=price, source=opt_text(obj(issuer), "id") if issuer is not None else None,
        payments=[obj(p, "payment") for p in opt_items(body, "payments")],
    )


async def _create_right(state: ApdsState, office: BackOffice, request: Request) -> Response:
    body = await body_of(request)
    if "rightSpecification" not in body:
        raise WireError("booking by a quote reference is not offered here: send the AssignedRight")
    asked = _read_right(state, body)
    if asked.version != 1:
        raise WireError("a new right has version 1")
    if any(asked.id in table for table in (office.reservations, office.permits, office.validations)):
        raise OfficeRefusal(RefusalReason.DUPLICATE, f"the id {asked.id!r} is taken")
    if asked.kind is RightKind.RESERVATION:
        if asked.ends_at is None:
            raise WireError("a reservation's planned use needs an endTime")
        office.book(asked.garage, plate=asked.plate, starts_at=asked.starts_at, ends_at=asked.ends_at,
                    reference=asked.id, customer_name=asked.name,
                    expected_price=asked.price.amount if asked.price else None, record_id=asked.id)
    elif asked.kind is RightKind.PERMIT:
        office.issue_permit(asked.garage, plate=asked.plate, holder_name=asked.name or "", valid_from=asked.starts_at,
                            valid_until=asked.ends_at, reference=asked.id, record_id=asked.id)
    elif asked.kind is RightKind.VALIDATION:
        if asked.ends_at is None:
            raise WireError("a validation's planned use needs an endTime")
        office.validate(asked.garage, plate=asked.plate, valid_from=asked.starts_at, valid_until=asked.ends_at,
                        reference=asked.id, guest_name=asked.name, source=asked.source, record_id=asked.id)
    else:
        raise WireError("tickets are issued at the barrier, not through the API")
    return ok(201)


async def _update_right(state: ApdsState, office: BackOffice, request: Request) -> Response:
    right_id = request.path_params["id"]
    current = find_right(state, office, right_id)
    body = await body_of(request)
    asked = _read_right(state, body)
    if asked.id != right_id or asked.kind is not current.kind:
        raise WireError("the body is not this right")
    version = int(current.body["version"])
    if asked.version == version and _same(asked, current):
        return ok()  # the same update again (a retry after a lost answer): done already
    if asked.version != version + 1:
        return error(409, f"Outdated version number provided: {asked.version}, the right is at {version}")
    record = current.record
    if isinstance(record, BookedReservation):
        if asked.cancelled:
            office.cancel(record.id)
        elif (asked.plate, asked.starts_at, asked.ends_at) != (record.plate, record.starts_at, record.ends_at):
            office.modify(record.id, starts_at=asked.starts_at, ends_at=asked.ends_at, plate=asked.plate)
        _pay(office, current, asked, PaymentTarget.RESERVATION, record.id)
        record.version = asked.version
    elif isinstance(record, HeldPermit):
        if asked.cancelled:
            office.revoke_permit(record.id)
        else:
            office.update_permit(record.id, plate=asked.plate, holder_name=asked.name, valid_from=asked.starts_at,
                                 valid_until=asked.ends_at)
        record.version = asked.version
    elif isinstance(record, GrantedValidation):
        if asked.cancelled and not record.revoked:
            record.revoked = True
            state.revoked_at[record.id] = sim_now()
    elif isinstance(record, Session):
        _pay(office, current, asked, PaymentTarget.SESSION, record.id)
    return ok()


def _same(asked: RightRequest, current: Right) -> bool:
    """Whether a PUT of the right's current version asks for what the right already is (a retry)."""
    uses = opt_items(current.body, "plannedUses")
    use = uses[0] if uses else {}
    paid = {p.get("id") for p in opt_items(current.body, "payments")}
    return (asked.plate == ow.plate_of(ow.holder_credentials(current.body))
            and asked.cancelled == (bool(use) and use.get("cancelTime") is not None)
            and {p.get("id") for p in asked.payments} <= paid)


def _pay(office: BackOffice, current: Right, asked: RightRequest, target: PaymentTarget, target_id: str) -> None:
    """Charge each payment the client added: its token is its transactionID, its lines the amount."""
    known = {p.get("id") for p in opt_items(current.body, "payments")} | set(office.charges)
    for payment in asked.payments:
        payment_id = text(payment, "id")
        if payment_id in known:
            continue
        lines = [obj(line, "paymentLine") for line in items(payment, "paymentLines")]
        values = [amount(line.get("value"), "paymentLine.value") for line in lines]
        if not values or len({v.currency for v in values}) != 1:
            raise WireError("a payment needs lines in one currency")
        total = sum((v.amount for v in values), Decimal(0))
        office.pay(target=target, target_id=target_id, amount=total, currency=values[0].currency,
                   token=text(payment, "transactionID"), reference=payment_id, record_id=payment_id[:MAX_ID])


# --- /sessions -----------------------------------------------------------------------------------


def render_session(state: ApdsState, office: BackOffice, s: Session, expand: Iterable[str]) -> dict[str, Any]:
    place_id = state.place_ids[s.garage]
    right = session_right(state, office, s)
    expanded = {"all", "segments.assignedRight"} & set(expand)
    currency = office.terms[s.garage].currency
    transactions: list[dict[str, Any]] = [
        {"segmentValue": number(entry.amount), "currency": currency, "serviceProvider": text_body(OPERATOR),
         "taxIncluded": True, "dateCollected": payment["dateCollected"], "transactionId": payment["transactionID"]}
        for entry, payment in collected(office, s.id)
    ]
    if s.exited_at is None:  # what the stay owes now (nothing while a right covers it), not yet collected
        transactions.append({"segmentValue": number(office.amount_due(s)), "currency": currency,
                             "serviceProvider": text_body(OPERATOR), "taxIncluded": True})
    segment: dict[str, Any] = {
        "id": f"{s.id}-1", "version": 1, "actualStart": format_time(s.entered_at),
        "assignedRight": right.body if expanded else versioned(right.body["id"], right.body["version"], "AssignedRight"),
        "validationType": ["licensePlate"], "financialTransactions": transactions,
    }
    body: dict[str, Any] = {
        "id": s.id, "version": 1 + len(collected(office, s.id)) + (s.exited_at is not None),
        "actualStart": format_time(s.entered_at),
        "initiator": versioned("IN-1"), "identifiedCredentials": [ow.plate_credential(s.plate, OPERATOR)],
        "segments": [segment], "hierachyElement": versioned(place_id, catalog.VERSIONS.get(s.garage, 1)),
    }
    if s.exited_at is not None:
        body["actualEnd"] = segment["actualEnd"] = format_time(s.exited_at)
    return state.overridden("sessions", body)


async def _list_sessions(state: ApdsState, office: BackOffice, request: Request) -> Response:
    garages = state.place_ids
    places, specs = set(listing(request, "place")), set(listing(request, "right_spec"))
    plates = _plates(request)
    start_after, end_after = _epoch(request, "start_after"), _epoch(request, "end_after")
    expand = listing(request, "expand")

    def build() -> list[Any]:
        out = []
        for s in office.sessions.values():
            if s.garage not in garages or (places and garages[s.garage] not in places) \
                    or (plates is not None and s.plate not in plates):
                continue
            if start_after is not None and s.entered_at <= start_after:
                continue
            if end_after is not None and s.exited_at is not None and s.exited_at <= end_after:
                continue
            if specs and session_right(state, office, s).body["rightSpecification"]["id"] not in specs:
                continue
            out.append(render_session(state, office, s, expand))
        return state.listed("sessions", out)

    return state.views.page(request, "sessions", build)


async def _get_session(state: ApdsState, office: BackOffice, request: Request) -> Response:
    session = office.session(request.path_params["id"])
    _mine(state, session.garage, "session", session.id)
    return JSONResponse(render_session(state, office, session, listing(request, "expand")))

