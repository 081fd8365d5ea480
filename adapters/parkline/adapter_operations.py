"""The ParkLine adapter's operations, its back-office calls: bookings, sessions, payments, permits,
validations, transactions, mapped by `records`.

A mixin of `ParklineAdapter` (which brings the HTTP hop, paging and record mapping). ParkLine
assigns every id, so a create is made safe to retry by its `client_ref` (our `reference`):
ParkLine answers a second create with 409 duplicate_client_ref naming the first record, which
is then fetched and returned as if just made. Its refusals ({"reason", "detail"} with 402, 404,
409 or 422) become `VendorRefused`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from adapters import errors
from adapters.models import Batch
from adapters.operation_models import (
    ParkingSession,
    Payment,
    PaymentRequest,
    PaymentTarget,
    Permit,
    PermitChange,
    PermitRequest,
    RefusalReason,
    Reservation,
    ReservationChange,
    ReservationRequest,
    Transaction,
    Validation,
    ValidationRequest,
    VendorRefused,
)
from adapters.parkline import records
from adapters.parkline.wire import WireError, format_time

if TYPE_CHECKING:
    from adapters.base import SystemSpec
    from adapters.http import VendorHTTP

T = TypeVar("T")

CURRENCY = "GBP"  # all ParkLine bills
TRANSACTIONS_PER_PAGE = 500  # ParkLine's maximum for the ledger (other lists stop at 100)


def _segment(vendor_id: str) -> str:
    """An id as one path segment: a '/' or '?' in it must not reach another endpoint, nor "." or ".."
    the collection or its parent."""
    if vendor_id in ("", ".", ".."):
        raise VendorRefused("parkline", RefusalReason.NOT_FOUND, f"no record {vendor_id!r}", 404)
    return quote(vendor_id, safe="")


class ParklineOperations:
    """The `ParcsAdapter` operation methods in ParkLine's dialect."""

    if TYPE_CHECKING:  # provided by ParklineAdapter
        spec: SystemSpec
        http: VendorHTTP
        _headers: dict[str, str]
        _default_tz: ZoneInfo
        _time_zones: dict[str, ZoneInfo]

        @property
        def system_id(self) -> str: ...

        async def _get_all(self, path: str, query: dict[str, Any] | None = None,
                           per_page: int | None = None) -> list[Any]: ...

        def _map(self, items: list[Any], mapper: Callable[[dict[str, Any]], T], id_key: str = "code") -> Batch[T]: ...

    # --- reservations (ParkLine: bookings) ----------------------------------------------------

    async def reservations(self, plate: str | None = None) -> Batch[Reservation]:
        items = await self._get_all("/v2/bookings", _plate_query(plate))
        return self._map(items, records.reservation, "booking_ref")

    async def reservation(self, vendor_id: str) -> Reservation:
        return await self._read(f"/v2/bookings/{_segment(vendor_id)}", records.reservation, "booking_ref")

    async def create_reservation(self, request: ReservationRequest) -> Reservation:
        tz = self._zone(request.vendor_facility_id)
        body: dict[str, Any] = {
            "carpark": request.vendor_facility_id,
            "registration": request.plate,
            "arrive": format_time(request.starts_at, tz),
            "depart": format_time(request.ends_at, tz),
            "client_ref": request.reference,
        }
        if request.customer_name is not None:
            body["customer_name"] = request.customer_name
        if request.expected_price is not None:
            if request.expected_price.currency != CURRENCY:
                # ParkLine prices in pounds only: a price in anything else is not its price
                raise VendorRefused(self.system_id, RefusalReason.PRICE_CHANGED,
                                    f"ParkLine prices in {CURRENCY}, not {request.expected_price.currency}", 422)
            body["expected_price_minor"] = self._minor(request.expected_price)
        return await self._create("/v2/bookings", body, records.reservation, "booking_ref", self.reservation)

    async def modify_reservation(self, vendor_id: str, change: ReservationChange) -> Reservation:
        body: dict[str, Any] = {}
        # Any offset names the same instant; the car park's own zone is not known from the id alone.
        if change.starts_at is not None:
            body["arrive"] = format_time(change.starts_at, self._default_tz)
        if change.ends_at is not None:
            body["depart"] = format_time(change.ends_at, self._default_tz)
        if change.plate is not None:
            body["registration"] = change.plate
        if not body:
            return await self.reservation(vendor_id)  # nothing to change: no write
        return await self._write("PATCH", f"/v2/bookings/{_segment(vendor_id)}", body, records.reservation,
                                 "booking_ref")

    async def cancel_reservation(self, vendor_id: str) -> Reservation:
        # cancelling twice answers the cancelled booking: safe to retry
        return await self._write("DELETE", f"/v2/bookings/{_segment(vendor_id)}", None, records.reservation,
                                 "booking_ref", idempotent=True)

    # --- sessions and payments ------------------------------------------------------------------

    async def sessions(self, plate: str) -> Batch[ParkingSession]:
        items = await self._get_all("/v2/sessions", {"registration": plate})
        return self._map(items, records.session, "session_id")

    async def session(self, vendor_id: str) -> ParkingSession:
        return await self._read(f"/v2/sessions/{_segment(vendor_id)}", records.session, "session_id")

    async def pay(self, request: PaymentRequest) -> Payment:
        target = "session_id" if request.target is PaymentTarget.SESSION else "booking_ref"
        body = {
            target: request.target_id,
            "amount_minor": self._minor(request.amount),
            "currency": request.amount.currency,
            "processor_token": request.token,
            "client_ref": request.reference,
        }
        return await self._create("/v2/payments", body, records.payment, "payment_id", self._payment)

    async def _payment(self, vendor_id: str) -> Payment:
        return await self._read(f"/v2/payments/{_segment(vendor_id)}", records.payment, "payment_id")

    # --- permits and validations ------------------------------------------------------------------

    async def permits(self, plate: str | None = None) -> Batch[Permit]:
        items = await self._get_all("/v2/permits", _plate_query(plate))
        return self._map(items, records.permit, "permit_id")

    async def permit(self, vendor_id: str) -> Permit:
        return await self._read(f"/v2/permits/{_segment(vendor_id)}", records.permit, "permit_id")

    async def create_permit(self, request: PermitRequest) -> Permit:
        tz = self._zone(request.vendor_facility_id)
        body: dict[str, Any] = {
            "carpark": request.vendor_facility_id,
            "registration": request.plate,
            "holder": request.holder_name,
            "valid_from": format_time(request.valid_from, tz),
            "client_ref": request.reference,
        }
        if request.valid_until is not None:
            body["valid_to"] = format_time(request.valid_until, tz)
        if request.description is not None:
            body["notes"] = request.description
        return await self._create("/v2/permits", body, records.permit, "permit_id", self.permit)

    async def update_permit(self, vendor_id: str, change: PermitChange) -> Permit:
        body: dict[str, Any] = {}
        if change.plate is not None:
            body["registration"] = change.plate
        if change.holder_name is not None:
            body["holder"] = change.holder_name
        if change.valid_from is not None:
            body["valid_from"] = format_time(change.valid_from, self._default_tz)
        if change.valid_until is not None:
            body["valid_to"] = format_time(change.valid_until, self._default_tz)
        if change.description is not None:
            body["notes"] = change.description
        if not body:
            return await self.permit(vendor_id)
        return await self._write("PATCH", f"/v2/permits/{_segment(vendor_id)}", body, records.permit, "permit_id")

    async def revoke_permit(self, vendor_id: str) -> Permit:
        # revoking twice answers the revoked permit: safe to retry
        return await self._write("DELETE", f"/v2/permits/{_segment(vendor_id)}", None, records.permit, "permit_id",
                                 idempotent=True)

    async def validations(self, plate: str | None = None) -> Batch[Validation]:
        items = await self._get_all("/v2/validations", _plate_query(plate))
        return self._map(items, records.validation, "validation_id")

    async def _validation(self, vendor_id: str) -> Validation:
        return await self._read(f"/v2/validations/{_segment(vendor_id)}", records.validation, "validation_id")

    async def create_validation(self, request: ValidationRequest) -> Validation:
        tz = self._zone(request.vendor_facility_id)
        body: dict[str, Any] = {
            "carpark": request.vendor_facility_id,
            "registration": request.plate,
            "valid_from": format_time(request.valid_from, tz),
            "valid_to": format_time(request.valid_until, tz),
            "client_ref": request.reference,
        }
        if request.guest_name is not None:
            body["guest_name"] = request.guest_name
        if request.source is not None:
            body["source"] = request.source
        return await self._create("/v2/validations", body, records.validation, "validation_id", self._validation)

    # --- the ledger ---------------------------------------------------------------------------------

    async def transactions(self, since: datetime, until: datetime,
                           vendor_ids: Sequence[str] | None = None) -> Batch[Transaction]:
        """The ledger between `from` and `to` (ParkLine bounds it both ways); it has no car park filter,
        so every car park's, and its pages follow Link headers one after another."""
        query = {"from": format_time(since, self._default_tz), "to": format_time(until, self._default_tz)}
        items = await self._get_all("/v2/transactions", query, per_page=TRANSACTIONS_PER_PAGE)
        return self._map(items, records.transaction, "txn_id")

    # --- the calls ----------------------------------------------------------------------------------

    def _zone(self, code: str) -> ZoneInfo:
        return self._time_zones.get(code, self._default_tz)

    def _minor(self, amount: Any) -> int:
        try:
            return records.to_minor(amount)
        except ValueError as exc:
            raise VendorRefused(self.system_id, RefusalReason.INVALID, str(exc), 422) from None

    async def _read(self, path: str, mapper: Callable[[dict[str, Any]], T], id_field: str) -> T:
        try:
            response = await self.http.request("GET", path, headers=self._headers)
        except errors.UpstreamRejected as exc:
            raise self._refusal(exc, id_field) from exc
        return self._record(response, mapper, f"GET {path}")

    async def _create(self, path: str, body: dict[str, Any], mapper: Callable[[dict[str, Any]], T], id_field: str,
                      fetch: Callable[[str], Awaitable[T]]) -> T:
        """POST a record carrying client_ref; a client_ref ParkLine has seen returns the first record."""
        try:
            # client_ref makes a repeat harmless, so a lost answer may be retried
            response = await self.http.request("POST", path, json=body, headers=self._headers, idempotent=True)
        except errors.UpstreamRejected as exc:
            refusal = self._refusal(exc, id_field)
            if isinstance(refusal, VendorRefused) and refusal.reason is RefusalReason.DUPLICATE and refusal.existing_id:
                return await fetch(refusal.existing_id)
            raise refusal from exc
        return self._record(response, mapper, f"POST {path}")

    async def _write(self, method: str, path: str, body: dict[str, Any] | None, mapper: Callable[[dict[str, Any]], T],
                     id_field: str, idempotent: bool = False) -> T:
        try:
            response = await self.http.request(method, path, json=body, headers=self._headers, idempotent=idempotent)
        except errors.UpstreamRejected as exc:
            raise self._refusal(exc, id_field) from exc
        return self._record(response, mapper, f"{method} {path}")

    def _refusal(self, exc: errors.UpstreamRejected, id_field: str) -> errors.UpstreamRejected:
        """The business refusal in a rejected call, or the rejection itself when it is not one."""
        return records.refused(self.system_id, exc, id_field) or exc

    def _record(self, response: httpx.Response, mapper: Callable[[dict[str, Any]], T], call: str) -> T:
        body = self.http.json(response)
        try:
            if not isinstance(body, dict):
                raise WireError("the answer is not an object")
            return mapper(body)
        except ValueError as exc:
            raise errors.UpstreamError(self.system_id, f"{call} answered an unreadable record ({exc})") from None


def _plate_query(plate: str | None) -> dict[str, Any]:
    return {"registration": plate} if plate else {}
