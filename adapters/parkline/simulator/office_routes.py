"""ParkLine's back-office endpoints: the world's `BackOffice` rendered in ParkLine's dialect.

Bookings (ParkLine's word for reservations), sessions, payments, permits, validations and
transactions. The business rules are the office's; this module only speaks the dialect:
snake_case, local times with their offset, pence with "currency": "GBP", bare arrays paged by
Link header, car parks by code, and refusals as {"reason": "<snake_case>", "detail": "..."}
with 404 (not_found), 402 (declined), 409 (duplicate_client_ref, naming the existing record)
or 422 (every other business refusal). ParkLine assigns every id; the client's `client_ref`
is kept with the record and refused the second time.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from adapters.operation_models import PaymentTarget, RefusalReason, normalize_plate
from adapters.parkline.simulator.backend import ParklineBackend
from adapters.parkline.simulator.office_view import OfficeView
from adapters.parkline.wire import parse_time
from adapters.simulated.back_office import OfficeRefusal
from adapters.simulated.harness import vendor_error

MAX_TRANSACTIONS_PER_PAGE = 500
STATUS_CODES = {RefusalReason.NOT_FOUND: 404, RefusalReason.DECLINED: 402, RefusalReason.DUPLICATE: 409}

Endpoint = Callable[[Request], Awaitable[Response]]
#: one method's handler: this system's view of the office, the request
OfficeHandler = Callable[[OfficeView, Request], Awaitable[Response]]


class BadRequest(Exception):
    """A body the vendor cannot read: 422 invalid."""


def refusal(exc: OfficeRefusal, id_field: str) -> Response:
    if exc.reason is RefusalReason.DUPLICATE:
        return vendor_error(409, {"reason": "duplicate_client_ref", "detail": exc.message, id_field: exc.existing_id})
    return vendor_error(STATUS_CODES.get(exc.reason, 422), {"reason": exc.reason.value.lower(), "detail": exc.message})


def invalid(detail: str) -> Response:
    return vendor_error(422, {"reason": "invalid", "detail": detail})


# --- reading bodies (a reader raises BadRequest; its `maybe_` twin lets the field be absent) --------

async def body_of(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body is not a JSON object")
    return body


def text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} must be a non-empty string")
    return value


def maybe_text(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else text(body, name)


def moment(body: dict[str, Any], name: str) -> datetime:
    try:
        parsed = parse_time(body.get(name))
    except ValueError:
        parsed = None
    if parsed is None:
        raise BadRequest(f"{name} must be a time with its offset, e.g. 2026-11-27T09:00:00+00:00")
    return parsed


def maybe_moment(body: dict[str, Any], name: str) -> datetime | None:
    return None if body.get(name) is None else moment(body, name)


def plate(body: dict[str, Any]) -> str:
    try:
        return normalize_plate(text(body, "registration"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def maybe_plate(body: dict[str, Any]) -> str | None:
    return None if body.get("registration") is None else plate(body)


def pounds(body: dict[str, Any], name: str) -> Decimal:
    """An amount in pence (an integer, never a float) as pounds."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be an integer amount in pence")
    return Decimal(value) / 100


def maybe_pounds(body: dict[str, Any], name: str) -> Decimal | None:
    return None if body.get(name) is None else pounds(body, name)


def query_plate(request: Request) -> str | None:
    return maybe_plate({"registration": request.query_params.get("registration") or None})


def first_use(view: OfficeView, table: dict[str, Any], reference: str) -> None:
    """Refuse a client_ref seen before, naming its record. Checked before the office's own rules, so
    a retry is a duplicate even when the first write changed the answer (last space taken, nothing owed)."""
    existing = view.existing(table, reference)
    if existing is not None:
        raise OfficeRefusal(RefusalReason.DUPLICATE, f"client_ref {reference!r} was used for {existing}", existing)


# --- the routes -------------------------------------------------------------------------------

def routes(backend: ParklineBackend, guarded: Callable[[Endpoint], Endpoint]) -> list[Route]:
    """The back office as one ParkLine system serves it: its car parks only, behind its key check."""
    view = OfficeView(backend)

    def route(path: str, id_field: str, handlers: Mapping[str, OfficeHandler]) -> Route:
        return Route(path, guarded(_answering(view, id_field, handlers)), methods=list(handlers))

    return [
        route("/v2/bookings", "booking_ref", {"GET": _list_bookings, "POST": _create_booking}),
        route("/v2/bookings/{ref}", "booking_ref",
              {"GET": _get_booking, "PATCH": _modify_booking, "DELETE": _cancel_booking}),
        route("/v2/sessions", "session_id", {"GET": _list_sessions}),
        route("/v2/sessions/{id}", "session_id", {"GET": _get_session}),
        route("/v2/payments", "payment_id", {"POST": _create_payment}),
        route("/v2/payments/{id}", "payment_id", {"GET": _get_payment}),
        route("/v2/permits", "permit_id", {"GET": _list_permits, "POST": _issue_permit}),
        route("/v2/permits/{id}", "permit_id", {"GET": _get_permit, "PATCH": _update_permit, "DELETE": _revoke_permit}),
        route("/v2/validations", "validation_id", {"GET": _list_validations, "POST": _grant_validation}),
        route("/v2/validations/{id}", "validation_id", {"GET": _get_validation}),
        route("/v2/transactions", "txn_id", {"GET": _transactions}),
    ]


def _answering(view: OfficeView, id_field: str, handlers: Mapping[str, OfficeHandler]) -> Endpoint:
    """Run the request method's handler against the office (HEAD as GET); its refusals and
    unreadable bodies become ParkLine errors, naming a duplicate's record in `id_field`."""

    async def endpoint(request: Request) -> Response:
        backend = view.backend
        if any(request.url.path.endswith(path) for path in backend.unreadable):
            return HTMLResponse("<html><body>Service temporarily moved</body></html>")  # a 200, not JSON
        backend.sync_closed()
        handler = handlers.get(request.method) or handlers["GET"]
        try:
            return await handler(view, request)
        except OfficeRefusal as exc:
            return refusal(exc, id_field)
        except BadRequest as exc:
            return invalid(str(exc))

    return endpoint


# --- bookings ---------------------------------------------------------------------------------

async def _list_bookings(view: OfficeView, request: Request) -> Response:
    items = view.office.list_reservations(view.keys(), query_plate(request))
    return view.backend.page(request, [view.booking(r) for r in items])


async def _create_booking(view: OfficeView, request: Request) -> Response:
    body = await body_of(request)
    key, reference = view.key(body.get("carpark")), text(body, "client_ref")
    first_use(view, view.office.reservations, reference)
    booked = view.office.book(key, plate=plate(body), starts_at=moment(body, "arrive"),
                              ends_at=moment(body, "depart"), reference=reference,
                              customer_name=maybe_text(body, "customer_name"),
                              expected_price=maybe_pounds(body, "expected_price_minor"))
    return JSONResponse(view.booking(booked), status_code=201)


def _owned_booking(view: OfficeView, request: Request) -> str:
    ref = request.path_params["ref"]
    view.owned(view.office.reservations.get(ref), f"booking {ref!r}")
    return ref


def _booking(view: OfficeView, ref: str) -> Response:
    return JSONResponse(view.booking(view.office.reservation(ref)))


async def _get_booking(view: OfficeView, request: Request) -> Response:
    return _booking(view, _owned_booking(view, request))


async def _modify_booking(view: OfficeView, request: Request) -> Response:
    ref = _owned_booking(view, request)
    body = await body_of(request)
    view.office.modify(ref, starts_at=maybe_moment(body, "arrive"), ends_at=maybe_moment(body, "depart"),
                       plate=maybe_plate(body))
    return _booking(view, ref)


async def _cancel_booking(view: OfficeView, request: Request) -> Response:
    ref = _owned_booking(view, request)
    view.office.cancel(ref)  # a cancelled booking is answered again, unchanged
    return _booking(view, ref)


# --- sessions and payments ----------------------------------------------------------------------

async def _list_sessions(view: OfficeView, request: Request) -> Response:
    wanted = query_plate(request)
    if wanted is None:
        raise BadRequest("registration is required")
    return view.backend.page(request, [view.session(s) for s in view.office.list_sessions(view.keys(), wanted)])


async def _get_session(view: OfficeView, request: Request) -> Response:
    return JSONResponse(view.session(view.owned(view.office.sessions.get(request.path_params["id"]), "such session")))


async def _create_payment(view: OfficeView, request: Request) -> Response:
    office = view.office
    body = await body_of(request)
    reference = text(body, "client_ref")
    first_use(view, office.charges, reference)
    if (body.get("session_id") is None) == (body.get("booking_ref") is None):
        raise BadRequest("give exactly one of session_id and booking_ref")
    if body.get("session_id") is not None:
        target, target_id = PaymentTarget.SESSION, text(body, "session_id")
        view.owned(office.sessions.get(target_id), "such session")
    else:
        target, target_id = PaymentTarget.RESERVATION, text(body, "booking_ref")
        view.owned(office.reservations.get(target_id), "such booking")
    charge = office.pay(target=target, target_id=target_id, amount=pounds(body, "amount_minor"),
                        currency=text(body, "currency"), token=text(body, "processor_token"), reference=reference)
    return JSONResponse(view.payment(charge), status_code=201)


async def _get_payment(view: OfficeView, request: Request) -> Response:
    return JSONResponse(view.payment(view.owned(view.office.charges.get(request.path_params["id"]), "such payment")))


# --- permits and validations --------------------------------------------------------------------

async def _list_permits(view: OfficeView, request: Request) -> Response:
    items = view.office.list_permits(view.keys(), query_plate(request))
    return view.backend.page(request, [view.permit(p) for p in items])


async def _issue_permit(view: OfficeView, request: Request) -> Response:
    body = await body_of(request)
    key, reference = view.key(body.get("carpark")), text(body, "client_ref")
    first_use(view, view.office.permits, reference)
    issued = view.office.issue_permit(key, plate=plate(body), holder_name=text(body, "holder"),
                                      valid_from=moment(body, "valid_from"), valid_until=maybe_moment(body, "valid_to"),
                                      reference=reference, description=maybe_text(body, "notes"))
    return JSONResponse(view.permit(issued), status_code=201)


def _owned_permit(view: OfficeView, request: Request) -> str:
    permit_id = request.path_params["id"]
    view.owned(view.office.permits.get(permit_id), f"permit {permit_id!r}")
    return permit_id


def _permit(view: OfficeView, permit_id: str) -> Response:
    return JSONResponse(view.permit(view.office.permit(permit_id)))


async def _get_permit(view: OfficeView, request: Request) -> Response:
    return _permit(view, _owned_permit(view, request))


async def _update_permit(view: OfficeView, request: Request) -> Response:
    permit_id = _owned_permit(view, request)
    body = await body_of(request)
    view.office.update_permit(permit_id, plate=maybe_plate(body), holder_name=maybe_text(body, "holder"),
                              valid_from=maybe_moment(body, "valid_from"), valid_until=maybe_moment(body, "valid_to"),
                              description=maybe_text(body, "notes"))
    return _permit(view, permit_id)


async def _revoke_permit(view: OfficeView, request: Request) -> Response:
    permit_id = _owned_permit(view, request)
    view.office.revoke_permit(permit_id)  # a revoked permit is answered again, unchanged
    return _permit(view, permit_id)


async def _list_validations(view: OfficeView, request: Request) -> Response:
    items = view.office.list_validations(view.keys(), query_plate(request))
    return view.backend.page(request, [view.validation(v) for v in items])


async def _grant_validation(view: OfficeView, request: Request) -> Response:
    body = await body_of(request)
    key, reference = view.key(body.get("carpark")), text(body, "client_ref")
    first_use(view, view.office.validations, reference)
    granted = view.office.validate(key, plate=plate(body), valid_from=moment(body, "valid_from"),
                                   valid_until=moment(body, "valid_to"), reference=reference,
                                   guest_name=maybe_text(body, "guest_name"), source=maybe_text(body, "source"))
    return JSONResponse(view.validation(granted), status_code=201)


async def _get_validation(view: OfficeView, request: Request) -> Response:
    found = view.owned(view.office.validations.get(request.path_params["id"]), "such validation")
    return JSONResponse(view.validation(found))


# --- transactions ---------------------------------------------------------------------------------

async def _transactions(view: OfficeView, request: Request) -> Response:
    query = dict(request.query_params)
    entries = view.office.transactions(view.keys(), moment(query, "from"), moment(query, "to"))
    items = [*(view.transaction(e) for e in entries), *view.backend.extra_transactions]
    return view.backend.page(request, items, max_per_page=MAX_TRANSACTIONS_PER_PAGE)
