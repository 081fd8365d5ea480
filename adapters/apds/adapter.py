"""The APDS-style PARCS adapter: places, counted occupancy, rates and quotes over `wire`;
the operations (reservations, payments, permits, transactions…) are in `adapter_operations.py`.

Options (`SystemSpec.options`):
- `page_size`: records per page on the list endpoints, 1..50 (default 50, the vendor's maximum).
- `transactions_page_size`: records per page of GET /transactions, 1..1000 (default 1000, the
  vendor's maximum for that endpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.apds import webhooks, wire
from adapters.apds.adapter_operations import ApdsOperations
from adapters.apds.operations_wire import MAX_TRANSACTIONS_LIMIT
from adapters.apds.pages import RECORD_FAULTS, Page
from adapters.apds.wire import MAX_LIMIT, MAX_QUOTES, PREFIX, WireError
from adapters.base import ParcsAdapter, SystemSpec
from adapters.errors import UpstreamError
from adapters.http import VendorHTTP
from adapters.models import (
    Batch,
    FacilityRecord,
    OccupancyReading,
    Quote,
    QuoteRequest,
    RateTable,
    RecordError,
    VendorEvent,
)

T = TypeVar("T")

# Not in the contract, so not a vendor reason: the answer for a request whose quote we could not read.
UNREADABLE_QUOTE = "UNREADABLE_QUOTE"


class ApdsAdapter(ApdsOperations, ParcsAdapter):
    dialect = "apds"
    required_credentials = ("token",)
    webhook_credential = "webhook_secret"

    def __init__(self, spec: SystemSpec, http: VendorHTTP | None = None) -> None:
        page_size = spec.options.get("page_size", MAX_LIMIT)
        if not isinstance(page_size, int) or not 1 <= page_size <= MAX_LIMIT:
            raise ValueError(f"system {spec.id!r}: page_size must be an integer in 1..{MAX_LIMIT}")
        self._page_size = page_size
        transactions_page_size = spec.options.get("transactions_page_size", MAX_TRANSACTIONS_LIMIT)
        if not isinstance(transactions_page_size, int) or not 1 <= transactions_page_size <= MAX_TRANSACTIONS_LIMIT:
            raise ValueError(f"system {spec.id!r}: transactions_page_size must be an integer in "
                             f"1..{MAX_TRANSACTIONS_LIMIT}")
        self._transactions_page_size = transactions_page_size
        self._headers = {"Authorization": f"Token {spec.credential('token')}"}
        super().__init__(spec, http)

    # --- ParcsAdapter ----------------------------------------------------------------------

    async def facilities(self) -> Batch[FacilityRecord]:
        return self._map(await self._pages("/places"), lambda raw, _: wire.facility(raw))

    async def occupancy(self) -> Batch[OccupancyReading]:
        return self._map(await self._pages("/occupancy"), wire.occupancy)

    async def rates(self) -> Batch[RateTable]:
        return self._map(await self._pages("/rates"), lambda raw, _: wire.rate_table(raw))

    async def quotes(self, requests: Sequence[QuoteRequest]) -> list[Quote]:
        quotes: list[Quote] = []
        for start in range(0, len(requests), MAX_QUOTES):  # one call per chunk the vendor accepts
            chunk = requests[start:start + MAX_QUOTES]
            # A quote only prices, it books nothing: safe to retry.
            body = await self._call(
                "POST", "/quotes", json={"requests": [wire.quote_request(r) for r in chunk]}, idempotent=True
            )
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list) or len(data) != len(chunk):
                # Answers are matched to requests by position: a short list cannot be matched.
                raise UpstreamError(self.system_id, f"quotes answer does not have {len(chunk)} entries")
            quotes.extend(self._quote(raw, request) for raw, request in zip(data, chunk))
        return quotes

    # --- wire --------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, query_params: Mapping[str, str],
                       now: datetime) -> list[VendorEvent]:
        """HMAC-SHA256 of timestamp + "." + raw body with the `webhook_secret` credential (adapters/apds/webhooks.py)."""
        return webhooks.verify(self.spec.credentials.get("webhook_secret"), headers, raw_body, now)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, PREFIX + path, headers=self._headers, **kwargs)
        return self.http.json(response)  # raises UpstreamError on 401/403

    async def _pages(self, path: str, params: Mapping[str, Any] | None = None, limit: int | None = None
                     ) -> list[Page]:
        """Every page of a list endpoint (filtered by `params`), following offset until `meta.total`."""
        pages: list[Page] = []
        offset = 0
        while True:
            query = {**(params or {}), "offset": offset, "limit": limit or self._page_size}
            body = await self._call("GET", path, params=query)
            received_at = datetime.now(UTC)
            try:
                records, total = wire.page(body)
            except WireError as exc:
                raise UpstreamError(self.system_id, f"GET {path} answered a malformed page: {exc}") from exc
            pages.append(Page(records, received_at))
            offset += len(records)
            # An empty page ends it too: a total that overstates must not loop forever.
            if offset >= total or not records:
                return pages

    def _map(self, pages: list[Page], mapper: Callable[[Any, datetime], T]) -> Batch[T]:
        """Map each record on its own: one that breaks the contract becomes a RecordError."""
        batch: Batch[T] = Batch()
        index = 0
        for page in pages:
            for raw in page.records:
                try:
                    batch.items.append(mapper(raw, page.received_at))
                except RECORD_FAULTS as exc:
                    batch.errors.append(RecordError(self.system_id, wire.record_ref(raw, index), str(exc)))
                index += 1
        return batch

    def _quote(self, raw: Any, request: QuoteRequest) -> Quote:
        try:
            return wire.quote(raw, request)
        except RECORD_FAULTS:
            return Quote(request.vendor_facility_id, request.starts_at, request.ends_at, None, None, UNREADABLE_QUOTE)
