"""Adapter for the "sensor grid" guidance system: bay sensors per level, German vocabulary.

The vendor reports occupied bays per level (never free ones), pages with an opaque cursor,
stamps readings in epoch milliseconds (as JSON numbers or strings, depending on firmware) and
wants an OAuth2 bearer token that expires. We add one aggregate reading per site.

Options (`SystemSpec.options`): `page_size` (1-200, default 200).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

from adapters.base import GuidanceAdapter, SystemSpec
from adapters.errors import UpstreamError
from adapters.http import VendorHTTP
from adapters.models import (
    Batch,
    OccupancyMethod,
    OccupancyReading,
    OccupancyStatus,
    RecordError,
    Trend,
)
from adapters.sensorgrid.auth import BearerTokens

OCCUPANCY_PATH = "/api/v3/belegung"
MAX_PAGE_SIZE = 200

STATUSES: Mapping[str, OccupancyStatus] = {
    "frei": OccupancyStatus.SPACES_AVAILABLE,
    "fast voll": OccupancyStatus.ALMOST_FULL,
    "besetzt": OccupancyStatus.FULL,
    "geschlossen": OccupancyStatus.CLOSED,
    "Störung": OccupancyStatus.UNKNOWN,  # sensor fault: the level's state is not known
}
TRENDS: Mapping[str, Trend] = {
    "steigend": Trend.FILLING,
    "fallend": Trend.EMPTYING,
    "gleichbleibend": Trend.STEADY,
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

L = TypeVar("L", OccupancyStatus, Trend)


class BadRecord(ValueError):
    """A vendor record we cannot map; becomes a RecordError."""


class SensorGridAdapter(GuidanceAdapter):
    dialect = "sensor-grid"
    required_credentials = ("client_id", "client_secret")

    def __init__(self, spec: SystemSpec, http: VendorHTTP | None = None) -> None:
        super().__init__(spec, http)
        self._tokens = BearerTokens(self.http, spec.credential("client_id"), spec.credential("client_secret"))
        page_size = spec.options.get("page_size", MAX_PAGE_SIZE)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"system {spec.id!r}: page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
        self._page_size = page_size

    async def occupancy(self) -> Batch[OccupancyReading]:
        """One reading per level, then one total per site whose levels all mapped."""
        records = [record async for record in self._pages(OCCUPANCY_PATH)]
        received_at = datetime.now(UTC)
        batch: Batch[OccupancyReading] = Batch()
        levels_by_site: dict[str, list[OccupancyReading]] = {}  # in the vendor's order
        broken_sites: dict[str, str] = {}  # site id -> the first level that could not be mapped
        unattributed: str | None = None  # a broken record whose site we cannot even tell
        for index, record in enumerate(records):
            site = _site_id(record)
            if site is not None:
                levels_by_site.setdefault(site, [])
            try:
                reading = level_reading(record, received_at)
            except BadRecord as exc:
                ref = _level_ref(record, index)
                batch.errors.append(RecordError(self.system_id, ref, str(exc)))
                if site is None:
                    unattributed = unattributed or ref
                else:
                    broken_sites.setdefault(site, ref)
                continue
            batch.items.append(reading)
            levels_by_site[reading.vendor_facility_id].append(reading)
        for site, levels in levels_by_site.items():
            # A partial sum would lie: a site with an unmappable level gets no total. A broken
            # record without a site could belong to any of them, so then no site gets one.
            cause = broken_sites.get(site) or unattributed
            if cause is not None:
                batch.errors.append(RecordError(self.system_id, f"site/{site}", f"no site total: {cause} is unusable"))
                continue
            batch.items.append(site_reading(site, levels, received_at))
        return batch

    # --- the wire ----------------------------------------------------------------------

    async def _pages(self, path: str) -> AsyncIterator[Any]:
        """Every item of a cursor-paged list, page after page to the end."""
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": self._page_size}
            if cursor is not None:
                params["cursor"] = cursor
            body = await self._get(path, params)
            items = body.get("items") if isinstance(body, dict) else None
            next_cursor = body.get("next_cursor") if isinstance(body, dict) else None
            if not isinstance(items, list) or not (next_cursor is None or isinstance(next_cursor, str)):
                raise UpstreamError(self.system_id, f"GET {path} answered with a malformed page")
            for item in items:
                yield item
            if next_cursor is None:
                return
            if next_cursor == cursor:  # a vendor bug must not become an endless loop
                raise UpstreamError(self.system_id, f"GET {path} returned the same cursor twice")
            cursor = next_cursor

    async def _get(self, path: str, params: Mapping[str, str | int]) -> Any:
        """GET with our bearer token; on invalid_token renew it once and retry once."""
        token = await self._tokens.token()
        response = await self._send(path, params, token)
        if _token_rejected(response):
            token = await self._tokens.refresh(token)
            response = await self._send(path, params, token)
        return self.http.json(response)  # a second rejection raises UpstreamError here

    async def _send(self, path: str, params: Mapping[str, str | int], token: str) -> httpx.Response:
        return await self.http.request("GET", path, params=params, headers={"authorization": f"Bearer {token}"})


# --- mapping: plain functions of one record ---------------------------------------------


def level_reading(record: Any, received_at: datetime) -> OccupancyReading:
    if not isinstance(record, dict):
        raise BadRecord("level record is not an object")
    return OccupancyReading(
        vendor_facility_id=_required_id(record, "siteId"),
        zone_id=_required_id(record, "ebeneId"),
        method=OccupancyMethod.SENSED,
        capacity=_count(record, "stellplaetze"),
        occupied=_count(record, "belegt"),
        free=None,  # the vendor reports occupied bays only
        observed_at=epoch_ms(record.get("zeitstempel")),
        received_at=received_at,
        # An unknown or missing label only loses the label; the counts still stand.
        status=_label(record, "status", STATUSES, OccupancyStatus.UNKNOWN),
        trend=_label(record, "tendenz", TRENDS, Trend.UNKNOWN),
    )


def site_reading(site: str, levels: list[OccupancyReading], received_at: datetime) -> OccupancyReading:
    """The site as a whole: sums of its levels, as old as its oldest level."""
    times = [level.observed_at for level in levels]
    trends = [level.trend for level in levels]
    majority = max(set(trends), key=trends.count)
    return OccupancyReading(
        vendor_facility_id=site,
        zone_id=None,
        method=OccupancyMethod.SENSED,
        capacity=sum(level.capacity or 0 for level in levels),
        occupied=sum(level.occupied or 0 for level in levels),
        free=None,
        # one level without a time makes the total's age unknown; never invent one
        observed_at=None if None in times else min(t for t in times if t is not None),
        received_at=received_at,
        status=None,  # the vendor gives no site status, and a derived one would hide a closed level
        trend=majority if trends.count(majority) * 2 > len(trends) else Trend.UNKNOWN,
    )


def epoch_ms(value: Any) -> datetime | None:
    """Epoch milliseconds as a number or a digit string (firmware differs); None stays None."""
    if value is None:
        return None
    if (isinstance(value, str) and value.isascii() and value.isdigit()) or (isinstance(value, float) and value.is_integer()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRecord(f"zeitstempel {value!r} is not epoch milliseconds")
    try:
        return EPOCH + timedelta(milliseconds=value)  # integer arithmetic: no float rounding
    except OverflowError:
        raise BadRecord(f"zeitstempel {value!r} is out of range") from None


def _count(record: Mapping[str, Any], key: str) -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRecord(f"{key} {value!r} is not a count")
    return value


def _label(record: Mapping[str, Any], key: str, table: Mapping[str, L], default: L) -> L:
    value = record.get(key)
    return table.get(value, default) if isinstance(value, str) else default


def _required_id(record: Mapping[str, Any], key: str) -> str:
    value = _id(record.get(key))
    if value is None:
        raise BadRecord(f"missing {key}")
    return value


def _id(value: Any) -> str | None:
    # Ids are strings on the wire; tolerate an integer rather than lose the record.
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _site_id(record: Any) -> str | None:
    return _id(record.get("siteId")) if isinstance(record, dict) else None


def _level_ref(record: Any, index: int) -> str:
    level = _id(record.get("ebeneId")) if isinstance(record, dict) else None
    return f"level/{level}" if level else f"level/#{index}"


def _token_rejected(response: httpx.Response) -> bool:
    """Whether the vendor refused our token (as opposed to refusing us altogether)."""
    if response.status_code != 401:
        return False
    if "invalid_token" in response.headers.get("www-authenticate", ""):
        return True
    try:
        return response.json().get("error") == "invalid_token"
    except (ValueError, AttributeError):
        return False
