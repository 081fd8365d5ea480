"""The APDS v4 PARCS adapter: places, counted occupancy, rates and quotes over `wire`, webhook
subscriptions and deliveries over `webhooks`; the operations (assigned rights, sessions,
payments, transactions) are in `adapter_operations.py`. What is read where: wire.py's and
operations_wire.py's opening notes.

The system's `base_url` is the APDS root: the adapter calls `{base_url}/places`,
`{base_url}/rights/assigned`…, with the `token` credential as `X-MCC-Access-Token` (the APDS
README). Lists are read page by page (`offset`, `pageSize`, and `meta.referenceInstant` sent back
so every page comes from one consistent view) until `meta.total`, the pages after the first side by
side (pages.py).

Options (`SystemSpec.options`):
- `page_size`: items asked per page, 1..1000 (default 50).
- `transactions_page_size`: the same for the rights read for finance, 1..1000 (default 1000).
- `page_concurrency`: pages of one list asked side by side once the first has told the total, 1..16
  (default 4; 1 reads them in turn). Each takes one of the system's `max_concurrency` slots.
- `issuer`: who the gateway's writes say vouches for a credential or provides a payment (default
  "parkgate").
- `webhook_url`: where the platform should deliver events, the gateway's `/webhooks/{system id}` as
  the platform reaches it; without it the gateway subscribes to nothing (webhooks.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.apds import webhooks, wire
from adapters.apds.adapter_operations import ApdsOperations
from adapters.apds.pages import RECORD_FAULTS, Page, walk
from adapters.apds.wire import LEVEL, PLACE, TOKEN_HEADER, RightKind, SpecInfo, WireError
from adapters.base import ParcsAdapter, SystemSpec
from adapters.errors import UpstreamError, UpstreamRejected
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
MAX_PAGE_SIZE = 1000
#: pages of one list asked at once (pages.walk); each takes one of the system's `max_concurrency` slots
PAGE_CONCURRENCY = 4
MAX_PAGE_CONCURRENCY = 16
CATALOG_TTL_S = 300.0  # right specifications change rarely; a new one is seen within this


class ApdsAdapter(ApdsOperations, ParcsAdapter):
    dialect = "apds"
    required_credentials = ("token",)
    webhook_credential = "webhook_secret"
    subscribes_webhooks = True

    def __init__(self, spec: SystemSpec, http: VendorHTTP | None = None) -> None:
        self._page_size = _bounded(spec, "page_size", wire.MAX_PAGE_SIZE)
        self._transactions_page_size = _bounded(spec, "transactions_page_size", MAX_PAGE_SIZE)
        self._page_concurrency = _bounded(spec, "page_concurrency", PAGE_CONCURRENCY, MAX_PAGE_CONCURRENCY)
        issuer = spec.options.get("issuer", "parkgate")
        if not isinstance(issuer, str) or not issuer:
            raise ValueError(f"system {spec.id!r}: issuer must be a non-empty string")
        self._issuer = issuer
        webhook_url = spec.options.get("webhook_url")
        if webhook_url is not None and (not isinstance(webhook_url, str) or not webhook_url.startswith(("http://", "https://"))):
            raise ValueError(f"system {spec.id!r}: webhook_url must be an http(s) URL")
        self._webhook_url = webhook_url
        self._headers = {TOKEN_HEADER: spec.credential("token")}
        self._catalog_cache: tuple[float, dict[str, SpecInfo]] | None = None
        #: the catalog read under way: every caller that finds the catalog missing or old awaits this one
        self._catalog_read: asyncio.Task[dict[str, SpecInfo]] | None = None
        super().__init__(spec, http)

    # --- ParcsAdapter ----------------------------------------------------------------------

    async def facilities(self) -> Batch[FacilityRecord]:
        elements = [raw for page in await self._pages("/places", {"expand": "all"}) for raw in page.records]
        children: dict[str, list[Any]] = {}
        for raw in elements:
            if isinstance(raw, Mapping) and wire.element_type(raw) == LEVEL:
                try:
                    parent = wire.parent_of(raw)
                except WireError:
                    continue
                if parent is not None:
                    children.setdefault(parent, []).append(raw)
        places = [raw for raw in elements if not isinstance(raw, Mapping) or wire.element_type(raw) == PLACE]
        return self._map([Page(places, datetime.now(UTC))],
                         lambda raw, _: wire.facility(raw, children.get(str(raw.get("id")), [])))

    async def occupancy(self) -> Batch[OccupancyReading]:
        pages = await self._pages("/places", {"type": PLACE, "expand": "occupancy"})
        return self._map([Page([r for r in page.records if not isinstance(r, Mapping) or wire.element_type(r) == PLACE],
                               page.received_at) for page in pages], wire.occupancy)

    occupancy_by_facility = True  # GET /places/{id} answers one place, its occupancy expanded

    async def occupancy_at(self, vendor_ids: Sequence[str]) -> Batch[OccupancyReading]:
        """Those places' counted occupancy, one GET /places/{id} each (`page_concurrency` at a time):
        the list takes no id filter."""
        limit = asyncio.Semaphore(self._page_concurrency)

        async def one(vendor_id: str) -> Page:
            async with limit:
                raw = await self._call("GET", f"/places/{self._segment(vendor_id)}", params={"expand": "occupancy"})
            return Page([raw] if not isinstance(raw, Mapping) or wire.element_type(raw) == PLACE else [],
                        datetime.now(UTC))

        return self._map(list(await asyncio.gather(*(one(vendor_id) for vendor_id in vendor_ids))), wire.occupancy)

    rates_by_facility = True  # GET /rates takes `place`: the places whose rate tables to list

    async def rates(self) -> Batch[RateTable]:
        return await self._rates(None)

    async def rates_at(self, vendor_ids: Sequence[str]) -> Batch[RateTable]:
        return await self._rates(frozenset(vendor_ids))

    async def _rates(self, places: frozenset[str] | None) -> Batch[RateTable]:
        """The transient tariff of every place (`places`: of these only, asked with the list's place filter)."""
        catalog = await self._catalog()
        params = {"expand": "all"} if places is None else {"expand": "all", "place": ",".join(sorted(places))}
        tables = {str(raw.get("id")): raw for page in await self._pages("/rates", params)
                  for raw in page.records if isinstance(raw, Mapping)}
        batch: Batch[RateTable] = Batch()
        for spec in catalog.values():
            if spec.kind is not RightKind.TRANSIENT or not spec.rate_tables:
                continue
            if places is not None and spec.place_id not in places:
                continue
            raw = tables.get(spec.rate_tables[0])
            try:
                if raw is None:
                    raise WireError(f"rate table {spec.rate_tables[0]!r} of {spec.id!r} is not listed")
                batch.items.append(wire.rate_table(raw, spec.place_id))
            except RECORD_FAULTS as exc:
                batch.errors.append(RecordError(self.system_id, spec.rate_tables[0], str(exc)))
        return batch

    async def quotes(self, requests: Sequence[QuoteRequest]) -> list[Quote]:
        """One QuoteRightRequest per request (APDS quotes one at a time), sent side by side."""
        specs = self._specs_by_place(await self._catalog(), RightKind.RESERVATION)
        return list(await asyncio.gather(*(self._quote(request, specs.get(request.vendor_facility_id))
                                           for request in requests)))

    async def _quote(self, request: QuoteRequest, spec: SpecInfo | None) -> Quote:
        if spec is None:
            return Quote(request.vendor_facility_id, request.starts_at, request.ends_at, None, None, "UNKNOWN_PLACE")
        body = wire.quote_request(f"quo-{uuid.uuid4()}", request, spec, datetime.now(UTC))
        # A quote only prices, it books nothing: safe to retry (the same id goes again).
        answer = await self._call("POST", "/quotes", json=body, idempotent=True)
        try:
            records, _ = wire.page(answer)
            if len(records) != 1:
                raise WireError(f"{len(records)} quote responses to one request")
            return wire.quote(records[0], request)
        except RECORD_FAULTS:
            return Quote(request.vendor_facility_id, request.starts_at, request.ends_at, None, None, UNREADABLE_QUOTE)

    # --- webhooks ----------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, query_params: Mapping[str, str],
                       now: datetime) -> list[VendorEvent]:
        """The `webhook_secret` credential in the subscription's URL (APDS signs nothing), then EventData."""
        return webhooks.verify(self.spec.credentials.get("webhook_secret"), query_params, raw_body,
                               self._cached_kinds())

    async def subscribe_webhooks(self, known_id: str | None) -> str | None:
        """Make sure the platform delivers what the gateway needs (webhooks.subscription); idempotent:
        the subscription `known_id` is kept when it still says the same, updated when it does not,
        and made anew when the platform no longer has it. None when no `webhook_url` is configured."""
        secret = self.spec.credentials.get("webhook_secret")
        if self._webhook_url is None or not secret:
            return None
        places = sorted({spec.place_id for spec in (await self._catalog(fresh=True)).values()})
        wanted = webhooks.subscription(self._webhook_url, secret, places)
        if known_id is not None:
            try:
                current = await self._call("GET", f"/webhooks/{self._segment(known_id)}")
            except UpstreamRejected as exc:
                if exc.status != 404:
                    raise
            else:
                if not webhooks.same_subscription(current, wanted):
                    await self._call("PUT", f"/webhooks/{self._segment(known_id)}", json=wanted, idempotent=True)
                return known_id
        answer = await self._call("POST", "/webhooks", json=wanted)
        try:
            return wire.text(wire.obj(answer, "subscription"), "id")
        except WireError as exc:
            raise UpstreamError(self.system_id, f"POST /webhooks answered no subscription id: {exc}") from exc

    # --- wire --------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, headers=self._headers, **kwargs)
        return self.http.json(response)  # raises UpstreamError on 401/403

    async def _pages(self, path: str, params: Mapping[str, Any] | None = None, page_size: int | None = None
                     ) -> list[Page]:
        """Every page of a list, from one view (pages.walk: the first answer's referenceInstant goes
        with the rest, which are asked `page_concurrency` at a time)."""

        async def read(offset: int, reference: int | None) -> tuple[Page, wire.PageMeta]:
            query = {**(params or {}), "offset": offset, "pageSize": page_size or self._page_size}
            if reference is not None:
                query["referenceInstant"] = reference
            body = await self._call("GET", path, params=query)
            received_at = datetime.now(UTC)
            try:
                records, meta = wire.page(body)
            except WireError as exc:
                raise UpstreamError(self.system_id, f"GET {path} answered a malformed page: {exc}") from exc
            return Page(records, received_at), meta

        return await walk(read, self._page_concurrency)

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

    async def _catalog(self, fresh: bool = False) -> dict[str, SpecInfo]:
        """The platform's right specifications (GET /rights/specs), kept for CATALOG_TTL_S."""
        cached = self._catalog_cache
        if cached is not None and not fresh and time.monotonic() - cached[0] < CATALOG_TTL_S:
            return cached[1]
        # one read at a time: at a thousand garages the catalog is dozens of pages, and every write and
        # plate check arriving while it is missing would otherwise page through all of it again
        if self._catalog_read is None or self._catalog_read.done():
            self._catalog_read = asyncio.create_task(self._read_catalog())
        return await asyncio.shield(self._catalog_read)

    async def _read_catalog(self) -> dict[str, SpecInfo]:
        catalog: dict[str, SpecInfo] = {}
        for page in await self._pages("/rights/specs", {"expand": "all"}):
            for raw in page.records:
                try:
                    spec = wire.spec_info(raw)
                except RECORD_FAULTS:
                    continue  # a specification we cannot read offers nothing we could book or price
                catalog[spec.id] = spec
        self._catalog_cache = (time.monotonic(), catalog)
        return catalog

    def _cached_kinds(self) -> Mapping[str, RightKind | None]:
        cached = self._catalog_cache
        return {} if cached is None else {spec_id: spec.kind for spec_id, spec in cached[1].items()}

    @staticmethod
    def _specs_by_place(catalog: Mapping[str, SpecInfo], kind: RightKind) -> dict[str, SpecInfo]:
        out: dict[str, SpecInfo] = {}
        for spec in catalog.values():
            if spec.kind is kind:
                out.setdefault(spec.place_id, spec)
        return out


def _bounded(spec: SystemSpec, name: str, default: int, most: int = MAX_PAGE_SIZE) -> int:
    value = spec.options.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise ValueError(f"system {spec.id!r}: {name} must be an integer in 1..{most}")
    return value
