"""The ParkLine PARCS adapter: London car parks, polled (ParkLine sends no webhooks); its
operations (bookings, payments, permits, transactions…) are in `adapter_operations.py`.

Options (`SystemSpec.options`):
    page_size   items per page asked for, default 100 (the vendor's maximum; transactions
                are asked for 500 a page, their own maximum)
    time_zone   zone for quote times of car parks not yet seen in `facilities()`,
                default Europe/London (ParkLine wants local times on the wire)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from adapters import errors
from adapters.base import ParcsAdapter, SystemSpec
from adapters.http import VendorHTTP
from adapters.models import (
    Batch,
    FacilityRecord,
    OccupancyReading,
    Quote,
    QuoteRequest,
    RateTable,
    RecordError,
)
from adapters.parkline import wire
from adapters.parkline.adapter_operations import ParklineOperations

T = TypeVar("T")

MAX_PAGES = 1_000  # a vendor announcing pages forever must not keep us polling forever
MAX_CONCURRENT_QUOTES = 4  # ParkLine has no batch pricing; spare it a burst of one call per quote

# What a mapper can raise on a malformed record; anything else is a bug and should surface.
RECORD_FAULTS = (LookupError, TypeError, ValueError, ArithmeticError)

# A refused price's reason by its status, unless its body names one (`_reason`); a reversed
# window (the other 422) is caught before any call is made.
REJECTION_REASONS = {404: "unknown_carpark", 422: "closed"}


def _reason(exc: errors.UpstreamRejected) -> str | None:
    """ParkLine's own word for a refused price (`{"reason": "fully_booked"}`), upper-cased like other reasons."""
    try:
        reason = orjson.loads(exc.body).get("reason")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return reason.upper() if isinstance(reason, str) and reason in ("fully_booked",) else None


class ParklineAdapter(ParklineOperations, ParcsAdapter):
    dialect = "parkline"
    required_credentials = ("api_key",)

    def __init__(self, spec: SystemSpec, http: VendorHTTP | None = None) -> None:
        super().__init__(spec, http)
        self._headers = {"X-Api-Key": spec.credential("api_key")}
        self._base_url = spec.base_url.rstrip("/")
        self._base_path = urlsplit(self._base_url).path
        self._default_tz = ZoneInfo(spec.options.get("time_zone", "Europe/London"))
        self._time_zones: dict[str, ZoneInfo] = {}  # learnt from facilities(), for quote times

    # --- lists ----------------------------------------------------------------------------

    async def facilities(self) -> Batch[FacilityRecord]:
        batch = self._map(await self._get_all("/v2/carparks"), wire.facility)
        for record in batch.items:
            try:
                self._time_zones[record.vendor_id] = ZoneInfo(record.time_zone or "")
            except (ZoneInfoNotFoundError, ValueError):
                pass  # quotes fall back to the configured zone
        return batch

    async def occupancy(self) -> Batch[OccupancyReading]:
        items = await self._get_all("/v2/carparks/occupancy")
        received_at = datetime.now(UTC)
        return self._map(items, lambda raw: wire.occupancy(raw, received_at))

    async def rates(self) -> Batch[RateTable]:
        return self._map(await self._get_all("/v2/tariffs"), wire.rate_table)

    def _map(self, items: list[Any], mapper: Callable[[dict[str, Any]], T], id_key: str = "code") -> Batch[T]:
        """Map each record on its own: one the mapper cannot read becomes a RecordError."""
        batch: Batch[T] = Batch()
        for index, raw in enumerate(items):
            code = raw.get(id_key) if isinstance(raw, dict) else None
            ref = code if isinstance(code, str) and code else f"#{index}"
            try:
                if not isinstance(raw, dict):
                    raise wire.WireError(f"record is not an object: {raw!r}")
                batch.items.append(mapper(raw))
            except RECORD_FAULTS as exc:
                batch.errors.append(RecordError(self.system_id, ref, f"{type(exc).__name__}: {exc}"))
        return batch

    async def _get_all(self, path: str, query: dict[str, Any] | None = None, per_page: int | None = None) -> list[Any]:
        """Every page of a list, following rel="next" Link headers to the end."""
        items: list[Any] = []
        target = path
        per_page = per_page or int(self.spec.options.get("page_size", 100))
        params: dict[str, Any] | None = {**(query or {}), "page": 1, "per_page": per_page}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            response = await self.http.request("GET", target, params=params, headers=self._headers)
            body = self.http.json(response)
            if not isinstance(body, list):
                raise errors.UpstreamError(self.system_id, f"GET {path} did not answer a JSON array")
            items.extend(body)
            link = wire.next_link(response.headers.get("link"))
            if link is None:
                return items
            target, params = self._follow(str(response.request.url), link), None
            if target in seen:
                raise errors.UpstreamError(self.system_id, f"GET {path} announces a page it already sent")
            seen.add(target)
        raise errors.UpstreamError(self.system_id, f"GET {path} announces more than {MAX_PAGES} pages")

    def _follow(self, current: str, link: str) -> str:
        """The link's path and query, relative to our base URL: its host is not ours to trust."""
        parts = urlsplit(urljoin(current, link))  # a relative reference resolves against the page
        path = parts.path
        if self._base_path and (path == self._base_path or path.startswith(self._base_path + "/")):
            path = path[len(self._base_path) :]
        return path + (f"?{parts.query}" if parts.query else "")

    # --- quotes ---------------------------------------------------------------------------

    async def quotes(self, requests: Sequence[QuoteRequest]) -> list[Quote]:
        """One price call per request (ParkLine has no batch), at most four at a time, in order."""
        semaphore = asyncio.Semaphore(MAX_CONCURRENT_QUOTES)
        tasks = [asyncio.ensure_future(self._quote(request, semaphore)) for request in requests]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # the system failed as a whole: stop the calls still queued rather than leave them running
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _quote(self, request: QuoteRequest, semaphore: asyncio.Semaphore) -> Quote:
        def unavailable(reason: str) -> Quote:
            return Quote(request.vendor_facility_id, request.starts_at, request.ends_at, None, None, reason)

        if request.ends_at < request.starts_at:
            return unavailable("depart_before_arrive")  # the vendor's own rule, without the call
        code = request.vendor_facility_id
        tz = self._time_zones.get(code, self._default_tz)
        params = {"arrive": wire.format_time(request.starts_at, tz), "depart": wire.format_time(request.ends_at, tz)}
        async with semaphore:
            try:
                response = await self.http.request("GET", f"/v2/carparks/{code}/price", params=params, headers=self._headers)
            except errors.UpstreamRejected as exc:
                if exc.status not in REJECTION_REASONS:
                    raise
                return unavailable(_reason(exc) or REJECTION_REASONS[exc.status])
        body = self.http.json(response)
        try:
            if not isinstance(body, dict):
                raise wire.WireError("price answer is not an object")
            price = wire.money(body.get("price_minor"), body.get("currency"))
            expires_at = wire.parse_time(body.get("quote_expires"))
        except ValueError:
            return unavailable("invalid_vendor_quote")
        return Quote(code, request.starts_at, request.ends_at, price, expires_at)
