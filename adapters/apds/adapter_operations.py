"""The APDS adapter's operations: reservations, sessions, payments, permits, validations, and
the transactions finance pulls, over `operations_wire`.

Creates send a client-chosen id derived from the write's reference, so they are safe to retry
(`idempotent=True`): the vendor answers the second attempt with 409 `duplicate` naming the
record, which is then fetched and returned as if the first answer had arrived. Every other
refusal becomes `VendorRefused` with the reason the vendor's error code names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from adapters.apds import operations_wire as ow
from adapters.apds.pages import RECORD_FAULTS, Page
from adapters.apds.wire import format_time
from adapters.errors import UpstreamError, UpstreamRejected
from adapters.models import Batch
from adapters.operation_models import (
    ParkingSession,
    Payment,
    PaymentRequest,
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

T = TypeVar("T")

class ApdsOperations:
    """Mixed into `ApdsAdapter`, ahead of `ParcsAdapter` whose stubs it fills in."""

    if TYPE_CHECKING:
        system_id: str
        _transactions_page_size: int

        async def _call(self, method: str, path: str, **kwargs: Any) -> Any: ...

        async def _pages(self, path: str, params: Mapping[str, Any] | None = None,
                         limit: int | None = None) -> list[Page]: ...

        def _map(self, pages: list[Page], mapper: Callable[[Any, datetime], T]) -> Batch[T]: ...

    # --- reservations --------------------------------------------------------------------

    async def reservations(self, plate: str | None = None) -> Batch[Reservation]:
        return await self._list("/reservations", _plate(plate), ow.reservation)

    async def reservation(self, vendor_id: str) -> Reservation:
        return await self._one(f"/reservations/{self._segment(vendor_id)}", ow.reservation)

    async def create_reservation(self, request: ReservationRequest) -> Reservation:
        return await self._create("/reservations", "/reservations", ow.reservation_body(request), ow.reservation)

    async def modify_reservation(self, vendor_id: str, change: ReservationChange) -> Reservation:
        # The change names the values it sets, so sending it twice leaves the same reservation.
        body = await self._op("PATCH", f"/reservations/{self._segment(vendor_id)}",
                              json=ow.reservation_change_body(change), idempotent=True)
        return self._record(body, ow.reservation)

    async def cancel_reservation(self, vendor_id: str) -> Reservation:
        # Cancelling a cancelled reservation answers it unchanged: safe to retry.
        body = await self._op("POST", f"/reservations/{self._segment(vendor_id)}/cancel", idempotent=True)
        return self._record(body, ow.reservation)

    # --- sessions and payments -----------------------------------------------------------

    async def sessions(self, plate: str) -> Batch[ParkingSession]:
        return await self._list("/sessions", {"plate": plate}, ow.session)

    async def session(self, vendor_id: str) -> ParkingSession:
        return await self._one(f"/sessions/{self._segment(vendor_id)}", ow.session)

    async def pay(self, request: PaymentRequest) -> Payment:
        return await self._create("/payments", "/payments", ow.payment_body(request), ow.payment)

    # --- permits and validations ---------------------------------------------------------

    async def permits(self, plate: str | None = None) -> Batch[Permit]:
        return await self._list("/permits", _plate(plate), ow.permit)

    async def permit(self, vendor_id: str) -> Permit:
        return await self._one(f"/permits/{self._segment(vendor_id)}", ow.permit)

    async def create_permit(self, request: PermitRequest) -> Permit:
        return await self._create("/permits", "/permits", ow.permit_body(request), ow.permit)

    async def update_permit(self, vendor_id: str, change: PermitChange) -> Permit:
        body = await self._op("PATCH", f"/permits/{self._segment(vendor_id)}", json=ow.permit_change_body(change),
                              idempotent=True)
        return self._record(body, ow.permit)

    async def revoke_permit(self, vendor_id: str) -> Permit:
        body = await self._op("POST", f"/permits/{self._segment(vendor_id)}/revoke", idempotent=True)
        return self._record(body, ow.permit)

    async def validations(self, plate: str | None = None) -> Batch[Validation]:
        return await self._list("/validations", _plate(plate), ow.validation)

    async def create_validation(self, request: ValidationRequest) -> Validation:
        return await self._create("/validations", "/validations", ow.validation_body(request), ow.validation)

    # --- transactions --------------------------------------------------------------------

    async def transactions(self, since: datetime, until: datetime) -> Batch[Transaction]:
        """Every page of every window the vendor allows per call (`MAX_TRANSACTIONS_RANGE`)."""
        batch: Batch[Transaction] = Batch()
        start = since
        while start < until:
            end = min(start + ow.MAX_TRANSACTIONS_RANGE, until)
            params = {"from": format_time(start), "to": format_time(end)}
            window = await self._list("/transactions", params, ow.transaction, self._transactions_page_size)
            batch.items.extend(window.items)
            batch.errors.extend(window.errors)
            start = end
        return batch

    # --- wire ----------------------------------------------------------------------------

    async def _op(self, method: str, path: str, **kwargs: Any) -> Any:
        """One operations call; a refusal in the vendor's words becomes VendorRefused."""
        with self._refusals():
            return await self._call(method, path, **kwargs)

    async def _list(self, path: str, params: Mapping[str, Any] | None, parse: Callable[[Any], T],
                    limit: int | None = None) -> Batch[T]:
        with self._refusals():
            pages = await self._pages(path, params, limit)
        return self._map(pages, lambda raw, _: parse(raw))

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        try:
            yield
        except VendorRefused:
            raise
        except UpstreamRejected as exc:
            refused = ow.refusal(exc.status, exc.body) if exc.status != 429 else None
            if refused is None:
                raise
            reason, message, existing_id = refused
            raise VendorRefused(self.system_id, reason, message, exc.status, existing_id) from exc

    async def _one(self, path: str, parse: Callable[[Any], T]) -> T:
        return self._record(await self._op("GET", path), parse)

    async def _create(self, path: str, by_id: str, body: dict[str, Any], parse: Callable[[Any], T]) -> T:
        """POST a create with its client-chosen id; a duplicate is answered with the record made first."""
        try:
            answer = await self._op("POST", path, json=body, idempotent=True)  # the id makes a retry harmless
        except VendorRefused as refused:
            if refused.reason is not RefusalReason.DUPLICATE:
                raise
            existing = refused.existing_id or body["id"]
            return await self._one(f"{by_id}/{self._segment(existing)}", parse)
        return self._record(answer, parse)

    def _segment(self, vendor_id: str) -> str:
        """A vendor id as exactly one path segment, whatever it contains."""
        if vendor_id in ("", ".", ".."):  # would name the collection or its parent: no such record
            raise VendorRefused(self.system_id, RefusalReason.NOT_FOUND, f"no record {vendor_id!r}", 404)
        return quote(vendor_id, safe="")

    def _record(self, body: Any, parse: Callable[[Any], T]) -> T:
        """A single record answer: one that breaks the contract is the vendor's error, not a refusal."""
        try:
            return parse(body)
        except RECORD_FAULTS as exc:
            raise UpstreamError(self.system_id, f"the system answered a malformed record: {exc}") from exc


def _plate(plate: str | None) -> dict[str, str] | None:
    return None if plate is None else {"plate": plate}


