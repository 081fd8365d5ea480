"""The APDS adapter's operations: reservations, permits and validations as assigned rights
(`/rights/assigned`), sessions (`/sessions`), payments on rights, and the transactions finance
pulls, over `operations_wire` (whose opening note is the mapping).

Creates POST a right whose id derives from the write's reference, so a retry is harmless: the
platform answers a second create of that id with 409, and the right made first is read and
returned. Updates, cancellations and payments PUT the whole right with the next version (the
README: clients manage versions; an outdated one is 409). Every other refusal becomes
`VendorRefused` with the reason the platform's answer names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from adapters.apds import operations_wire as ow
from adapters.apds.pages import RECORD_FAULTS, Page
from adapters.apds.wire import (
    LICENSE_PLATE,
    RightKind,
    SpecInfo,
    WireError,
    amount,
    epoch,
    obj,
    opt_items,
    parse_time,
    text,
)
from adapters.errors import UpstreamError, UpstreamRejected
from adapters.models import Batch, RecordError
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

T = TypeVar("T")

RESERVATIONS_KEPT = timedelta(days=7)  # the contract: reservations ending in the last 7 days or later
LONGEST_STAY = timedelta(days=31)  # how far back a session that used a listed reservation may have started
PERMITS_KEPT = timedelta(days=30)
VALIDATIONS_KEPT = timedelta(days=7)
SESSIONS_KEPT = timedelta(hours=24)


class ApdsOperations:
    """Mixed into `ApdsAdapter`, ahead of `ParcsAdapter` whose stubs it fills in."""

    if TYPE_CHECKING:
        system_id: str
        _issuer: str
        _transactions_page_size: int

        async def _call(self, method: str, path: str, **kwargs: Any) -> Any: ...

        async def _pages(self, path: str, params: Mapping[str, Any] | None = None,
                         page_size: int | None = None) -> list[Page]: ...

        async def _catalog(self, fresh: bool = False) -> dict[str, SpecInfo]: ...

        @staticmethod
        def _specs_by_place(catalog: Mapping[str, SpecInfo], kind: RightKind) -> dict[str, SpecInfo]: ...

    # --- reservations --------------------------------------------------------------------

    async def reservations(self, plate: str | None = None) -> Batch[Reservation]:
        catalog = await self._catalog()
        now = datetime.now(UTC)
        rights = await self._rights(catalog, RightKind.RESERVATION, plate, end_after=now - RESERVATIONS_KEPT)
        arrivals = await self._arrivals(catalog, plate, since=now - RESERVATIONS_KEPT - LONGEST_STAY)
        return self._each(rights, lambda raw: ow.reservation(raw, self._place(catalog, raw), now,
                                                              arrivals.get(str(raw.get("id")))))

    async def reservation(self, vendor_id: str) -> Reservation:
        catalog = await self._catalog()
        try:
            raw = await self._right(vendor_id, catalog, RightKind.RESERVATION)
        except VendorRefused as refused:
            if refused.reason is RefusalReason.NOT_FOUND:
                # The sessions are asked either way, so that how many calls a lookup makes never
                # tells whether someone else's reservation exists (tests/resolvers/test_id_tenancy.py).
                await self._arrivals(catalog, vendor_id)
            raise
        plate = self._record(raw, lambda r: ow.plate_of(ow.holder_credentials(r)))
        arrivals = await self._arrivals(catalog, plate, spec=ow.spec_of(raw))
        return self._record(raw, lambda r: ow.reservation(r, self._place(catalog, r), datetime.now(UTC),
                                                          arrivals.get(vendor_id)))

    async def create_reservation(self, request: ReservationRequest) -> Reservation:
        spec = await self._spec_at(request.vendor_facility_id, RightKind.RESERVATION)
        now = datetime.now(UTC)
        body = ow.right_body(right_id=ow.record_id("reservation", request.reference), version=1, spec=spec,
                             plate=request.plate, issuer=self._issuer, starts_at=request.starts_at,
                             ends_at=request.ends_at, issued_at=now, name=request.customer_name,
                             price=request.expected_price)
        await self._create(body)
        return await self.reservation(body["id"])

    async def modify_reservation(self, vendor_id: str, change: ReservationChange) -> Reservation:
        catalog = await self._catalog()
        raw = await self._right(vendor_id, catalog, RightKind.RESERVATION)
        current = self._record(raw, lambda r: ow.reservation(r, self._place(catalog, r), datetime.now(UTC)))
        await self._put_right(raw, catalog, plate=change.plate or current.plate,
                              starts_at=change.starts_at or current.starts_at, ends_at=change.ends_at or current.ends_at)
        return await self.reservation(vendor_id)

    async def cancel_reservation(self, vendor_id: str) -> Reservation:
        current = await self.reservation(vendor_id)
        if current.status.value == "CANCELLED":
            return current  # cancelling a cancelled reservation answers it unchanged
        catalog = await self._catalog()
        raw = await self._right(vendor_id, catalog, RightKind.RESERVATION)
        await self._put_right(raw, catalog, cancelled_at=datetime.now(UTC))
        return await self.reservation(vendor_id)

    # --- sessions and payments -----------------------------------------------------------

    async def sessions(self, plate: str) -> Batch[ParkingSession]:
        catalog = await self._catalog()
        params = {"credential_type": LICENSE_PLATE, "credential_id": plate, "expand": "all",
                  "end_after": epoch(datetime.now(UTC) - SESSIONS_KEPT)}
        with self._refusals():
            pages = await self._pages("/sessions", params)
        return self._each([raw for page in pages for raw in page.records], lambda raw: ow.session(raw, _kinds(catalog)))

    async def session(self, vendor_id: str) -> ParkingSession:
        catalog = await self._catalog()
        raw = await self._op("GET", f"/sessions/{self._segment(vendor_id)}", params={"expand": "all"})
        return self._record(raw, lambda r: ow.session(r, _kinds(catalog)))

    async def pay(self, request: PaymentRequest) -> Payment:
        """A payment is added to the right it pays for (the session's ticket right, or the reservation)."""
        catalog = await self._catalog()
        if request.target is PaymentTarget.RESERVATION:
            right_id = request.target_id
            raw = await self._right(right_id, catalog, RightKind.RESERVATION)
        else:
            session = await self._op("GET", f"/sessions/{self._segment(request.target_id)}", params={"expand": "all"})
            right_id = self._record(session, lambda s: text(ow.segment_right(s), "id"))
            raw = await self._right(right_id, catalog)
        if self._place(catalog, raw) != request.vendor_facility_id:
            raise VendorRefused(self.system_id, RefusalReason.NOT_FOUND,
                                f"no {request.target.value.lower()} {request.target_id!r} there", 404)
        payment_id = ow.record_id("payment", request.reference)
        if not any(obj(p, "payment").get("id") == payment_id for p in opt_items(raw, "payments")):
            payment = ow.token_payment(payment_id, request.amount, request.token, self._issuer)
            await self._put(raw, {**raw, "version": raw["version"] + 1,
                                  "payments": [*opt_items(raw, "payments"), payment]})
            raw = await self._right(right_id, catalog)
        recorded = next((p for p in opt_items(raw, "payments") if obj(p, "payment").get("id") == payment_id), None)
        if recorded is None:
            raise UpstreamError(self.system_id, f"the payment {payment_id} is not on the right it was added to")
        return self._record(recorded, lambda p: ow.payment(p, request.vendor_facility_id, request.target,
                                                           request.target_id))

    # --- permits and validations ---------------------------------------------------------

    async def permits(self, plate: str | None = None) -> Batch[Permit]:
        catalog = await self._catalog()
        now = datetime.now(UTC)
        rights = await self._rights(catalog, RightKind.PERMIT, plate, end_after=now - PERMITS_KEPT)
        return self._each(rights, lambda raw: ow.permit(raw, self._place(catalog, raw), now))

    async def permit(self, vendor_id: str) -> Permit:
        catalog = await self._catalog()
        raw = await self._right(vendor_id, catalog, RightKind.PERMIT)
        return self._record(raw, lambda r: ow.permit(r, self._place(catalog, r), datetime.now(UTC)))

    async def create_permit(self, request: PermitRequest) -> Permit:
        spec = await self._spec_at(request.vendor_facility_id, RightKind.PERMIT)
        body = ow.right_body(right_id=ow.record_id("permit", request.reference), version=1, spec=spec,
                             plate=request.plate, issuer=self._issuer, starts_at=request.valid_from,
                             ends_at=request.valid_until, issued_at=datetime.now(UTC), name=request.holder_name)
        await self._create(body)
        return await self.permit(body["id"])

    async def update_permit(self, vendor_id: str, change: PermitChange) -> Permit:
        catalog = await self._catalog()
        raw = await self._right(vendor_id, catalog, RightKind.PERMIT)
        current = self._record(raw, lambda r: ow.permit(r, self._place(catalog, r), datetime.now(UTC)))
        if current.status.value == "REVOKED":
            raise VendorRefused(self.system_id, RefusalReason.WRONG_STATE, "a revoked permit cannot be changed")
        await self._put_right(raw, catalog, plate=change.plate or current.plate,
                              name=change.holder_name or current.holder_name,
                              starts_at=change.valid_from or current.valid_from,
                              ends_at=change.valid_until or current.valid_until)
        return await self.permit(vendor_id)

    async def revoke_permit(self, vendor_id: str) -> Permit:
        current = await self.permit(vendor_id)
        if current.status.value == "REVOKED":
            return current
        catalog = await self._catalog()
        raw = await self._right(vendor_id, catalog, RightKind.PERMIT)
        await self._put_right(raw, catalog, cancelled_at=datetime.now(UTC))
        return await self.permit(vendor_id)

    async def validations(self, plate: str | None = None) -> Batch[Validation]:
        catalog = await self._catalog()
        now = datetime.now(UTC)
        rights = await self._rights(catalog, RightKind.VALIDATION, plate, end_after=now - VALIDATIONS_KEPT)
        return self._each(rights, lambda raw: ow.validation(raw, self._place(catalog, raw), now))

    async def create_validation(self, request: ValidationRequest) -> Validation:
        spec = await self._spec_at(request.vendor_facility_id, RightKind.VALIDATION)
        body = ow.right_body(right_id=ow.record_id("validation", request.reference), version=1, spec=spec,
                             plate=request.plate, issuer=self._issuer, starts_at=request.valid_from,
                             ends_at=request.valid_until, issued_at=datetime.now(UTC), name=request.guest_name,
                             source=request.source)
        await self._create(body)
        catalog = await self._catalog()
        raw = await self._right(body["id"], catalog, RightKind.VALIDATION)
        return self._record(raw, lambda r: ow.validation(r, self._place(catalog, r), datetime.now(UTC)))

    # --- transactions --------------------------------------------------------------------

    async def transactions(self, since: datetime, until: datetime,
                           vendor_ids: Sequence[str] | None = None) -> Batch[Transaction]:
        """The payments collected on rights in [since, until): the rights changed since `since` (at the
        places `vendor_ids`, the list's place filter), every page.

        Nothing in APDS bounds the read from above: `modified_since` is the only time a right's list
        filters on that a payment moves, and it has no "before"; the validity filters (start_/end_
        before/after) are the planned use's, which a payment is not tied to (a reservation is paid when
        booked, months ahead; a ticket right has no planned use at all). So a range far in the past
        reads every right changed since: the operation's deadline bounds it (gateway/deadline.py)."""
        catalog = await self._catalog()
        params: dict[str, Any] = {"modified_since": epoch(since), "expand": "all"}
        if vendor_ids is not None:
            params["place"] = ",".join(sorted(vendor_ids))
        with self._refusals():
            pages = await self._pages("/rights/assigned", params, self._transactions_page_size)
        batch: Batch[Transaction] = Batch()
        for index, raw in enumerate(raw for page in pages for raw in page.records):
            try:
                spec = catalog.get(ow.spec_of(obj(raw)))
                if spec is None or spec.kind is None:
                    raise WireError("a right of an unknown right specification")
                batch.items.extend(ow.transactions(raw, spec.place_id, spec.kind, since, until))
            except RECORD_FAULTS as exc:
                if isinstance(raw, Mapping) and ow.collected(raw):
                    batch.errors.append(RecordError(self.system_id, str(raw.get("id", f"#{index}")), str(exc)))
        batch.items.sort(key=lambda t: (t.occurred_at, t.vendor_id))
        return batch

    # --- rights on the wire ----------------------------------------------------------------

    async def _rights(self, catalog: Mapping[str, SpecInfo], kind: RightKind, plate: str | None,
                      end_after: datetime) -> list[Any]:
        specs = [spec.id for spec in catalog.values() if spec.kind is kind]
        if not specs:
            return []
        params: dict[str, Any] = {"right_spec": ",".join(specs), "end_after": epoch(end_after), "expand": "all"}
        if plate is not None:
            params |= {"credential_type": LICENSE_PLATE, "credential_id": plate}
        with self._refusals():
            pages = await self._pages("/rights/assigned", params)
        return [raw for page in pages for raw in page.records]

    async def _arrivals(self, catalog: Mapping[str, SpecInfo], plate: str | None, *, since: datetime | None = None,
                        spec: str | None = None) -> dict[str, tuple[datetime, bool]]:
        """Right id -> (when its car entered, whether it has left), from the sessions that used a reservation."""
        specs = [spec] if spec is not None else [s.id for s in catalog.values() if s.kind is RightKind.RESERVATION]
        if not specs:
            return {}
        params: dict[str, Any] = {"right_spec": ",".join(specs), "expand": "segments"}
        if since is not None:
            params["start_after"] = epoch(since)
        if plate is not None:
            params |= {"credential_type": LICENSE_PLATE, "credential_id": plate}
        with self._refusals():
            pages = await self._pages("/sessions", params)
        arrivals: dict[str, tuple[datetime, bool]] = {}
        for raw in (raw for page in pages for raw in page.records):
            try:
                # only when it started and whether it ended matter here, not its money
                session = ow.session(raw, _kinds(catalog), currency="XXX")
                for segment in opt_items(obj(raw), "segments"):
                    right = obj(obj(segment).get("assignedRight"), "assignedRight")
                    arrivals[text(right, "id")] = (session.entered_at, session.exited_at is not None)
            except RECORD_FAULTS:
                continue  # a session we cannot read says nothing about an arrival
        return arrivals

    async def _right(self, vendor_id: str, catalog: Mapping[str, SpecInfo], kind: RightKind | None = None) -> Any:
        raw = await self._op("GET", f"/rights/assigned/{self._segment(vendor_id)}", params={"expand": "all"})
        if kind is not None:
            spec = catalog.get(self._record(raw, ow.spec_of))
            if spec is None or spec.kind is not kind:
                raise VendorRefused(self.system_id, RefusalReason.NOT_FOUND, f"no {kind.value.lower()} {vendor_id!r}", 404)
        return raw

    async def _spec_at(self, place_id: str, kind: RightKind) -> SpecInfo:
        spec = self._specs_by_place(await self._catalog(), kind).get(place_id)
        if spec is None:
            raise VendorRefused(self.system_id, RefusalReason.NOT_FOUND,
                                f"place {place_id!r} offers no {kind.value.lower()} right", 404)
        return spec

    async def _create(self, body: dict[str, Any]) -> None:
        """POST a right with its client-chosen id; a second create of that id finds the first one made."""
        try:
            await self._op("POST", "/rights/assigned", json=body, idempotent=True)
        except VendorRefused as refused:
            if refused.reason is not RefusalReason.DUPLICATE:
                raise

    async def _put_right(self, raw: Any, catalog: Mapping[str, SpecInfo], *, plate: str | None = None,
                         name: str | None = None, starts_at: datetime | None = None, ends_at: datetime | None = None,
                         cancelled_at: datetime | None = None) -> None:
        """PUT the right as it is, with the changes named and the next version."""
        raw = obj(raw, "assigned right")
        spec = catalog[ow.spec_of(raw)]
        use = self._record(raw, ow.planned_use)
        credentials = ow.holder_credentials(raw)
        current_plate = ow.plate_of(credentials)
        current_name = ow.credential_value(credentials, ow.NAME_CLASS)
        price = obj(raw["monetaryValue"]).get("value") if raw.get("monetaryValue") else None
        body = ow.right_body(
            right_id=text(raw, "id"), version=raw["version"] + 1, spec=spec, plate=plate or current_plate,
            issuer=self._issuer, starts_at=starts_at or _time(use, "startTime"),
            ends_at=ends_at or (_time(use, "endTime") if use.get("endTime") else None),
            issued_at=_time(raw, "issuanceTime"), name=name or current_name,
            cancelled_at=cancelled_at or (_time(use, "cancelTime") if use.get("cancelTime") else None),
            price=None if price is None else amount(price, "monetaryValue.value"),
            payments=opt_items(raw, "payments"),
            source=obj(raw["assignedRightIssuer"]).get("id") if raw.get("assignedRightIssuer") else None,
        )
        if raw.get("issuanceTime") is not None:
            body["issuanceTime"] = raw["issuanceTime"]  # as the platform recorded it, to the character
        await self._put(raw, body)

    async def _put(self, raw: Mapping[str, Any], body: dict[str, Any]) -> None:
        # The body names every value it sets and its version: sent twice, it leaves the same right.
        await self._op("PUT", f"/rights/assigned/{self._segment(str(raw['id']))}", json=body, idempotent=True)

    # --- plumbing ------------------------------------------------------------------------

    async def _op(self, method: str, path: str, **kwargs: Any) -> Any:
        """One operations call; a refusal in the platform's words becomes VendorRefused."""
        with self._refusals():
            return await self._call(method, path, **kwargs)

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
            reason, message = refused
            raise VendorRefused(self.system_id, reason, message, exc.status) from exc

    def _each(self, records: Sequence[Any], parse: Callable[[Any], T]) -> Batch[T]:
        batch: Batch[T] = Batch()
        for index, raw in enumerate(records):
            try:
                batch.items.append(parse(raw))
            except RECORD_FAULTS as exc:
                ref = raw["id"] if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else f"#{index}"
                batch.errors.append(RecordError(self.system_id, ref, str(exc)))
        return batch

    def _place(self, catalog: Mapping[str, SpecInfo], raw: Any) -> str:
        spec = catalog.get(ow.spec_of(obj(raw, "assigned right")))
        if spec is None:
            raise WireError("a right of an unknown right specification")
        return spec.place_id

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


def _kinds(catalog: Mapping[str, SpecInfo]) -> Callable[[str], RightKind | None]:
    return lambda spec_id: catalog[spec_id].kind if spec_id in catalog else None


def _time(raw: Mapping[str, Any], key: str) -> datetime:
    return parse_time(raw.get(key), key)
