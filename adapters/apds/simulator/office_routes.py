"""The APDS simulator's operations endpoints: the shared back office
(`adapters.simulated.back_office`) rendered in the APDS dialect (`adapters/apds/operations_wire.py`).

Business rules live in the office; this module only reads requests, calls it, and renders its
records and refusals. Only records at garages this vendor runs are visible here: the office is
shared with the world's other PARCS, whose records answer 404 as if they did not exist.

Test knobs on `ApdsState` apply to the lists here too: `raw_overrides[(resource, record id)]`
and `extra_records[resource]` for "reservations", "sessions", "permits", "validations",
"transactions".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.apds import operations_wire as ow
from adapters.apds.simulator.plumbing import guard, paged
from adapters.apds.simulator.state import REMOVE, ApdsState
from adapters.apds.wire import PREFIX, WireError, format_amount, format_time, obj, opt_text, parse_time, text
from adapters.models import Money
from adapters.operation_models import PaymentTarget, RefusalReason
from adapters.simulated.back_office import (
    BackOffice,
    BookedReservation,
    CardCharge,
    GrantedValidation,
    HeldPermit,
    OfficeRefusal,
    PostedTransaction,
    Session,
    office_of,
)
from adapters.simulated.harness import vendor_error

MAX_ID = 100
MAX_REFERENCE = 200

OfficeHandler = Callable[[ApdsState, BackOffice, Request], Awaitable[Response]]


def routes(state: ApdsState) -> list[Route]:
    def route(path: str, handler: OfficeHandler, method: str) -> Route:
        return Route(PREFIX + path, guard(state, _office(handler)), methods=[method])

    return [
        route("/reservations", _list_reservations, "GET"),
        route("/reservations", _create_reservation, "POST"),
        route("/reservations/{id}", _get_reservation, "GET"),
        route("/reservations/{id}", _modify_reservation, "PATCH"),
        route("/reservations/{id}/cancel", _cancel_reservation, "POST"),
        route("/sessions", _list_sessions, "GET"),
        route("/sessions/{id}", _get_session, "GET"),
        route("/payments", _create_payment, "POST"),
        route("/payments/{id}", _get_payment, "GET"),
        route("/permits", _list_permits, "GET"),
        route("/permits", _create_permit, "POST"),
        route("/permits/{id}", _get_permit, "GET"),
        route("/permits/{id}", _update_permit, "PATCH"),
        route("/permits/{id}/revoke", _revoke_permit, "POST"),
        route("/validations", _list_validations, "GET"),
        route("/validations", _create_validation, "POST"),
        route("/validations/{id}", _get_validation, "GET"),
        route("/transactions", _transactions, "GET"),
    ]


# --- plumbing ----------------------------------------------------------------------------


def _office(handler: OfficeHandler) -> Callable[[ApdsState, Request], Awaitable[Response]]:
    """The office's refusals as APDS error answers; a WireError goes on to the guard (400)."""

    async def run(state: ApdsState, request: Request) -> Response:
        try:
            return await handler(state, office_of(state.world), request)
        except WireError:
            raise
        except OfficeRefusal as exc:
            return _refused(exc.reason, exc.message, exc.existing_id)
        except ValueError as exc:  # e.g. a plate that normalizes to nothing
            return _refused(RefusalReason.INVALID, str(exc))

    return run


def _refused(reason: RefusalReason, message: str, existing_id: str | None = None) -> JSONResponse:
    status, body = ow.error_body(reason, message, existing_id)
    return vendor_error(status, body)


async def _body(request: Request) -> Mapping[str, Any]:
    try:
        return obj(orjson.loads(await request.body()), "body")
    except orjson.JSONDecodeError as exc:
        raise WireError("the body is not JSON") from exc


def _bounded(raw: Mapping[str, Any], key: str, limit: int) -> str:
    value = text(raw, key)
    if len(value) > limit:
        raise WireError(f"{key!r} is longer than {limit} characters")
    return value


def _opt_time(raw: Mapping[str, Any], key: str) -> datetime | None:
    return None if raw.get(key) is None else parse_time(raw[key], key)


def _garage(state: ApdsState, place_id: str) -> str:
    for key, vendor_id in state.places():
        if vendor_id == place_id:
            return key
    raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no place {place_id!r}")


def _place(state: ApdsState, garage: str) -> str:
    return dict(state.places())[garage]


def _mine(state: ApdsState, garage: str, what: str, record_id: str) -> None:
    """Another vendor's record is, to this vendor, no record at all."""
    if garage not in dict(state.places()):
        raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no {what} {record_id!r}")


def _garages(state: ApdsState) -> list[str]:
    return [key for key, _ in state.places()]


def _plate_param(request: Request) -> str | None:
    return request.query_params.get("plate") or None


def _listed(state: ApdsState, resource: str, records: list[dict[str, Any]]) -> list[Any]:
    """The records with the test knobs applied: per-record overrides, then extra raw records."""
    out: list[Any] = []
    for record in records:
        for name, value in state.raw_overrides.get((resource, record["id"]), {}).items():
            if value is REMOVE:
                record.pop(name, None)
            else:
                record[name] = value
        out.append(record)
    return out + list(state.extra_records.get(resource, ()))


def _money(office: BackOffice, garage: str, amount: Decimal) -> dict[str, str]:
    return {"amount": format_amount(amount), "currency": office.terms[garage].currency}


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


# --- renderers: office records in APDS words ---------------------------------------------


def _reservation(state: ApdsState, office: BackOffice, r: BookedReservation) -> dict[str, Any]:
    return {
        "id": r.id, "version": r.version, "placeId": _place(state, r.garage), "plate": r.plate,
        "from": format_time(r.starts_at), "to": format_time(r.ends_at),
        "status": r.effective_status(office.clock()).value.lower(),
        "price": {"amount": format_amount(r.price), "currency": r.currency},
        "reference": r.reference, "customerName": r.customer_name, "paid": r.paid,
        "arrivedAt": _time(r.arrived_at), "createdAt": format_time(r.created_at),
        "updatedAt": format_time(r.updated_at),
    }


def _session(state: ApdsState, office: BackOffice, s: Session) -> dict[str, Any]:
    return {
        "id": s.id, "placeId": _place(state, s.garage), "plate": s.plate,
        "entryTime": format_time(s.entered_at), "exitTime": _time(s.exited_at), "status": s.status.value.lower(),
        "amountDue": _money(office, s.garage, office.amount_due(s)), "amountPaid": _money(office, s.garage, s.paid),
        "paidUntil": _time(s.paid_until), "reservationId": s.reservation_id,
    }


def _payment(state: ApdsState, c: CardCharge) -> dict[str, Any]:
    return {
        "id": c.id, "placeId": _place(state, c.garage), ow.TARGET_FIELDS[c.target]: c.target_id,
        "amount": {"amount": format_amount(c.amount), "currency": c.currency},
        "reference": c.reference, "createdAt": format_time(c.created_at), "processorReference": c.processor_reference,
    }


def _permit(state: ApdsState, office: BackOffice, p: HeldPermit) -> dict[str, Any]:
    return {
        "id": p.id, "version": p.version, "placeId": _place(state, p.garage), "plate": p.plate,
        "holderName": p.holder_name, "validFrom": format_time(p.valid_from), "validUntil": _time(p.valid_until),
        "status": p.status(office.clock()).value.lower(), "reference": p.reference, "description": p.description,
        "createdAt": format_time(p.created_at), "updatedAt": format_time(p.updated_at),
    }


def _validation(state: ApdsState, office: BackOffice, v: GrantedValidation) -> dict[str, Any]:
    return {
        "id": v.id, "placeId": _place(state, v.garage), "plate": v.plate,
        "validFrom": format_time(v.valid_from), "validUntil": format_time(v.valid_until),
        "status": v.status(office.clock()).value.lower(), "reference": v.reference,
        "guestName": v.guest_name, "source": v.source, "createdAt": format_time(v.created_at),
    }


def _transaction(state: ApdsState, e: PostedTransaction) -> dict[str, Any]:
    return {
        "id": e.id, "placeId": _place(state, e.garage), "occurredAt": format_time(e.occurred_at),
        "amount": {"amount": format_amount(e.amount), "currency": e.currency},
        "tax": {"amount": format_amount(e.tax), "currency": e.currency},
        "paymentType": e.payment_type.value.lower(), "revenueCategory": e.category.value.lower(),
        "description": e.description, "reference": e.reference,
    }


# --- reservations ------------------------------------------------------------------------


async def _list_reservations(state: ApdsState, office: BackOffice, request: Request) -> Response:
    records = [_reservation(state, office, r) for r in office.list_reservations(_garages(state), _plate_param(request))]
    return paged(request, _listed(state, "reservations", records))


async def _create_reservation(state: ApdsState, office: BackOffice, request: Request) -> Response:
    body = await _body(request)
    garage = _garage(state, text(body, "placeId"))
    expected = None if body.get("expectedPrice") is None else ow.money(body["expectedPrice"], "expectedPrice")
    if expected is not None and expected.currency != office.terms[garage].currency:
        raise OfficeRefusal(RefusalReason.PRICE_CHANGED, f"prices here are in {office.terms[garage].currency}")
    reservation = office.book(
        garage, plate=text(body, "plate"), starts_at=parse_time(body.get("from"), "from"),
        ends_at=parse_time(body.get("to"), "to"), reference=_bounded(body, "reference", MAX_REFERENCE),
        customer_name=opt_text(body, "customerName"), expected_price=None if expected is None else expected.amount,
        record_id=_bounded(body, "id", MAX_ID),
    )
    return JSONResponse(_reservation(state, office, reservation), status_code=201)


def _owned_reservation(state: ApdsState, office: BackOffice, record_id: str) -> BookedReservation:
    reservation = office.reservation(record_id)
    _mine(state, reservation.garage, "reservation", record_id)
    return reservation


async def _get_reservation(state: ApdsState, office: BackOffice, request: Request) -> Response:
    return JSONResponse(_reservation(state, office, _owned_reservation(state, office, request.path_params["id"])))


async def _modify_reservation(state: ApdsState, office: BackOffice, request: Request) -> Response:
    record_id = request.path_params["id"]
    _owned_reservation(state, office, record_id)
    body = await _body(request)
    reservation = office.modify(record_id, starts_at=_opt_time(body, "from"), ends_at=_opt_time(body, "to"),
                                plate=opt_text(body, "plate"))
    return JSONResponse(_reservation(state, office, reservation))


async def _cancel_reservation(state: ApdsState, office: BackOffice, request: Request) -> Response:
    record_id = request.path_params["id"]
    _owned_reservation(state, office, record_id)
    return JSONResponse(_reservation(state, office, office.cancel(record_id)))


# --- sessions and payments ---------------------------------------------------------------


async def _list_sessions(state: ApdsState, office: BackOffice, request: Request) -> Response:
    plate = request.query_params.get("plate")
    if not plate:
        raise WireError("plate is required")
    records = [_session(state, office, s) for s in office.list_sessions(_garages(state), plate)]
    return paged(request, _listed(state, "sessions", records))


async def _get_session(state: ApdsState, office: BackOffice, request: Request) -> Response:
    session = office.session(request.path_params["id"])
    _mine(state, session.garage, "session", session.id)
    return JSONResponse(_session(state, office, session))


async def _create_payment(state: ApdsState, office: BackOffice, request: Request) -> Response:
    body = await _body(request)
    targets = [(target, key) for target, key in ow.TARGET_FIELDS.items() if body.get(key) is not None]
    if len(targets) != 1:
        raise WireError("a payment names exactly one of sessionId, reservationId")
    target, key = targets[0]
    target_id = text(body, key)
    record_id = _bounded(body, "id", MAX_ID)
    existing = office.charges.get(record_id)
    if existing is None:  # a duplicate id is answered as a duplicate below, whatever its target does now
        owner = office.session(target_id) if target is PaymentTarget.SESSION else office.reservation(target_id)
        _mine(state, owner.garage, key, target_id)
        place_id = opt_text(body, "placeId")
        if place_id is not None and place_id != _place(state, owner.garage):
            raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no {key} {target_id!r} at place {place_id!r}")
    amount: Money = ow.money(body.get("amount"), "amount")
    charge = office.pay(target=target, target_id=target_id, amount=amount.amount, currency=amount.currency,
                        token=text(body, "token"), reference=_bounded(body, "reference", MAX_REFERENCE),
                        record_id=record_id)
    return JSONResponse(_payment(state, charge), status_code=201)


async def _get_payment(state: ApdsState, office: BackOffice, request: Request) -> Response:
    record_id = request.path_params["id"]
    charge = office.charges.get(record_id)
    if charge is None:
        raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no payment {record_id!r}")
    _mine(state, charge.garage, "payment", record_id)
    return JSONResponse(_payment(state, charge))


# --- permits -----------------------------------------------------------------------------


async def _list_permits(state: ApdsState, office: BackOffice, request: Request) -> Response:
    records = [_permit(state, office, p) for p in office.list_permits(_garages(state), _plate_param(request))]
    return paged(request, _listed(state, "permits", records))


async def _create_permit(state: ApdsState, office: BackOffice, request: Request) -> Response:
    body = await _body(request)
    permit = office.issue_permit(
        _garage(state, text(body, "placeId")), plate=text(body, "plate"), holder_name=text(body, "holderName"),
        valid_from=parse_time(body.get("validFrom"), "validFrom"), valid_until=_opt_time(body, "validUntil"),
        reference=_bounded(body, "reference", MAX_REFERENCE), description=opt_text(body, "description"),
        record_id=_bounded(body, "id", MAX_ID),
    )
    return JSONResponse(_permit(state, office, permit), status_code=201)


def _owned_permit(state: ApdsState, office: BackOffice, record_id: str) -> HeldPermit:
    permit = office.permit(record_id)
    _mine(state, permit.garage, "permit", record_id)
    return permit


async def _get_permit(state: ApdsState, office: BackOffice, request: Request) -> Response:
    return JSONResponse(_permit(state, office, _owned_permit(state, office, request.path_params["id"])))


async def _update_permit(state: ApdsState, office: BackOffice, request: Request) -> Response:
    record_id = request.path_params["id"]
    _owned_permit(state, office, record_id)
    body = await _body(request)
    permit = office.update_permit(
        record_id, plate=opt_text(body, "plate"), holder_name=opt_text(body, "holderName"),
        valid_from=_opt_time(body, "validFrom"), valid_until=_opt_time(body, "validUntil"),
        description=opt_text(body, "description"),
    )
    return JSONResponse(_permit(state, office, permit))


async def _revoke_permit(state: ApdsState, office: BackOffice, request: Request) -> Response:
    record_id = request.path_params["id"]
    _owned_permit(state, office, record_id)
    return JSONResponse(_permit(state, office, office.revoke_permit(record_id)))


# --- validations -------------------------------------------------------------------------


async def _list_validations(state: ApdsState, office: BackOffice, request: Request) -> Response:
    records = [_validation(state, office, v) for v in office.list_validations(_garages(state), _plate_param(request))]
    return paged(request, _listed(state, "validations", records))


async def _create_validation(state: ApdsState, office: BackOffice, request: Request) -> Response:
    body = await _body(request)
    validation = office.validate(
        _garage(state, text(body, "placeId")), plate=text(body, "plate"),
        valid_from=parse_time(body.get("validFrom"), "validFrom"),
        valid_until=parse_time(body.get("validUntil"), "validUntil"),
        reference=_bounded(body, "reference", MAX_REFERENCE), guest_name=opt_text(body, "guestName"),
        source=opt_text(body, "source"), record_id=_bounded(body, "id", MAX_ID),
    )
    return JSONResponse(_validation(state, office, validation), status_code=201)


async def _get_validation(state: ApdsState, office: BackOffice, request: Request) -> Response:
    record_id = request.path_params["id"]
    validation = office.validations.get(record_id)
    if validation is None:
        raise OfficeRefusal(RefusalReason.NOT_FOUND, f"no validation {record_id!r}")
    _mine(state, validation.garage, "validation", record_id)
    return JSONResponse(_validation(state, office, validation))


# --- transactions ------------------------------------------------------------------------


async def _transactions(state: ApdsState, office: BackOffice, request: Request) -> Response:
    since = parse_time(request.query_params.get("from"), "from")
    until = parse_time(request.query_params.get("to"), "to")
    if not since < until <= since + ow.MAX_TRANSACTIONS_RANGE:
        raise OfficeRefusal(RefusalReason.INVALID,
                            f"to must be after from, at most {ow.MAX_TRANSACTIONS_RANGE.days} days")
    records = [_transaction(state, e) for e in office.transactions(_garages(state), since, until)]
    return paged(request, _listed(state, "transactions", records), ow.MAX_TRANSACTIONS_LIMIT)

