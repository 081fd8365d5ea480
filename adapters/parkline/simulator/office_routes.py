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
from collections.abc import Callable
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

Handler = Callable[[Request], Any]


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

def office_routes(backend: ParklineBackend, guarded: Callable[[Handler], Handler]) -> list[Route]:
    view = OfficeView(backend)
    office = view.office

    def answering(id_field: str) -> Callable[[Handler], Handler]:
        """Run a handler against the office; its refusals and unreadable bodies become ParkLine errors."""
        def wrap(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                if any(request.url.path.endswith(path) for path in backend.unreadable):
                    return HTMLResponse("<html><body>Service temporarily moved</body></html>")  # a 200, not JSON
                backend.sync_closed()
                try:
                    return await handler(request)
                except OfficeRefusal as exc:
                    return refusal(exc, id_field)
                except BadRequest as exc:
                    return invalid(str(exc))
            return guarded(endpoint)
        return wrap

    # --- bookings -----------------------------------------------------------------------------

    @answering("booking_ref")
    async def bookings(request: Request) -> Response:
        if request.method == "GET":
            items = office.list_reservations(view.keys(), query_plate(request))
            return backend.page(request, [view.booking(r) for r in items])
        body = await body_of(request)
        key, reference = view.key(body.get("carpark")), text(body, "client_ref")
        first_use(view, office.reservations, reference)
        booked = office.book(key, plate=plate(body), starts_at=moment(body, "arrive"), ends_at=moment(body, "depart"),
                             reference=reference, customer_name=maybe_text(body, "customer_name"),
                             expected_price=maybe_pounds(body, "expected_price_minor"))
        return JSONResponse(view.booking(booked), status_code=201)

    @answering("booking_ref")
    async def booking(request: Request) -> Response:
        ref = request.path_params["ref"]
        view.owned(office.reservations.get(ref), f"booking {ref!r}")
        if request.method == "PATCH":
            body = await body_of(request)
            office.modify(ref, starts_at=maybe_moment(body, "arrive"), ends_at=maybe_moment(body, "depart"),
                          plate=maybe_plate(body))
        elif request.method == "DELETE":
            office.cancel(ref)  # a cancelled booking is answered again, unchanged
        return JSONResponse(view.booking(office.reservation(ref)))

    # --- sessions and payments -------------------------------------------------------------------

    @answering("session_id")
    async def sessions(request: Request) -> Response:
        wanted = query_plate(request)
        if wanted is None:
            raise BadRequest("registration is required")
        return backend.page(request, [view.session(s) for s in office.list_sessions(view.keys(), wanted)])

    @answering("session_id")
    async def session(request: Request) -> Response:
        return JSONResponse(view.session(view.owned(office.sessions.get(request.path_params["id"]), "such session")))

    @answering("payment_id")
    async def payments(request: Request) -> Response:
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

    @answering("payment_id")
    async def payment(request: Request) -> Response:
        return JSONResponse(view.payment(view.owned(office.charges.get(request.path_params["id"]), "such payment")))

    # --- permits and validations -----------------------------------------------------------------

    @answering("permit_id")
    async def permits(request: Request) -> Response:
        if request.method == "GET":
            items = office.list_permits(view.keys(), query_plate(request))
            return backend.page(request, [view.permit(p) for p in items])
        body = await body_of(request)
        key, reference = view.key(body.get("carpark")), text(body, "client_ref")
        first_use(view, office.permits, reference)
        issued = office.issue_permit(key, plate=plate(body), holder_name=text(body, "holder"),
                                     valid_from=moment(body, "valid_from"), valid_until=maybe_moment(body, "valid_to"),
                                     reference=reference, description=maybe_text(body, "notes"))
        return JSONResponse(view.permit(issued), status_code=201)

    @answering("permit_id")
    async def permit(request: Request) -> Response:
        permit_id = request.path_params["id"]
        view.owned(office.permits.get(permit_id), f"permit {permit_id!r}")
        if request.method == "PATCH":
            body = await body_of(request)
            office.update_permit(permit_id, plate=maybe_plate(body), holder_name=maybe_text(body, "holder"),
                                 valid_from=maybe_moment(body, "valid_from"),
                                 valid_until=maybe_moment(body, "valid_to"),
                                 description=maybe_text(body, "notes"))
        elif request.method == "DELETE":
            office.revoke_permit(permit_id)  # a revoked permit is answered again, unchanged
        return JSONResponse(view.permit(office.permit(permit_id)))

    @answering("validation_id")
    async def validations(request: Request) -> Response:
        if request.method == "GET":
            items = office.list_validations(view.keys(), query_plate(request))
            return backend.page(request, [view.validation(v) for v in items])
        body = await body_of(request)
        key, reference = view.key(body.get("carpark")), text(body, "client_ref")
        first_use(view, office.validations, reference)
        granted = office.validate(key, plate=plate(body), valid_from=moment(body, "valid_from"),
                                  valid_until=moment(body, "valid_to"), reference=reference,
                                  guest_name=maybe_text(body, "guest_name"), source=maybe_text(body, "source"))
        return JSONResponse(view.validation(granted), status_code=201)

    @answering("validation_id")
    async def validation(request: Request) -> Response:
        found = view.owned(office.validations.get(request.path_params["id"]), "such validation")
        return JSONResponse(view.validation(found))

    # --- transactions ----------------------------------------------------------------------------

    @answering("txn_id")
    async def transactions(request: Request) -> Response:
        query = dict(request.query_params)
        entries = office.transactions(view.keys(), moment(query, "from"), moment(query, "to"))
        items = [*(view.transaction(e) for e in entries), *backend.extra_transactions]
        return backend.page(request, items, max_per_page=MAX_TRANSACTIONS_PER_PAGE)

    return [
        Route("/v2/bookings", bookings, methods=["GET", "POST"]),
        Route("/v2/bookings/{ref}", booking, methods=["GET", "PATCH", "DELETE"]),
        Route("/v2/sessions", sessions),
        Route("/v2/sessions/{id}", session),
        Route("/v2/payments", payments, methods=["POST"]),
        Route("/v2/payments/{id}", payment),
        Route("/v2/permits", permits, methods=["GET", "POST"]),
        Route("/v2/permits/{id}", permit, methods=["GET", "PATCH", "DELETE"]),
        Route("/v2/validations", validations, methods=["GET", "POST"]),
        Route("/v2/validations/{id}", validation),
        Route("/v2/transactions", transactions),
    ]
