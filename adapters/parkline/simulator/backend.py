"""The ParkLine vendor's side of things: the car parks it runs (`VENDOR_IDS`), its tariffs, its
view of the world, its paging, and the hooks tests and sandbox partners turn on `ParklineBackend`
(`sim.backend`):
    clock                 what "now" is for `updated`, today's counters and quote expiry
    closed                car park codes reported CLOSED and refused for quotes
    patch_occupancy()     overwrite fields of one car park's occupancy record (e.g. updated="n/a")
    extra_occupancy       records appended verbatim to the occupancy list
    public_url            scheme://host the vendor advertises in Link headers (as behind a proxy)
    price_requests        the query of every price request received, as sent
    price_delay_ms        how long each price request takes, to observe client concurrency
    max_prices_in_flight  the most price requests it has served at once
    extra_transactions    records appended verbatim to the transactions list
    unreadable            back-office paths (e.g. "/v2/bookings") answering an HTML page with 200
"""

from __future__ import annotations

import hmac
import math
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.simulated.back_office import BackOffice, office_of
from adapters.simulated.harness import vendor_error
from adapters.simulated.world import GarageState, World

#: garage key in the world -> ParkLine car park code
VENDOR_IDS: dict[str, str] = {"london-kings-cross": "KX01", "london-southbank": "SB02"}

# Still in the vendor's list years after it closed: no spaces, no coordinates, no counters.
DECOMMISSIONED: dict[str, Any] = {
    "code": "ZZ99",
    "title": "Old Street Car Park (decommissioned)",
    "tz": "Europe/London",
    "addr": "Old Street 120, London EC1V 9NR",
    "postcode": "EC1V 9NR",
    "floors": [],
}

# Per car park: (up_to_minutes, price_minor) bands, daily maximum, night flat rate, in pence.
TARIFFS: dict[str, dict[str, Any]] = {
    "KX01": {"bands": [(60, 450), (120, 800), (240, 1400), (720, 2600)], "daily_max": 3200, "night": 1000},
    "SB02": {"bands": [(30, 250), (60, 400), (180, 1000), (480, 1800)], "daily_max": 2400, "night": 800},
}

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
DAY_MINUTES = 24 * 60


def tariff_of(code: str) -> dict[str, Any]:
    """The car park's tariff: the hand-written one of the six-garage world, else one derived from its
    code (a generated world, adapters/simulated/generate.py), the same on every run."""
    known = TARIFFS.get(code)
    if known is not None:
        return known
    first = 150 + zlib.crc32(code.encode()) % 350  # pence for the first hour
    return {"bands": [(60, first), (120, first * 2 - 50), (240, first * 3), (720, first * 5)],
            "daily_max": first * 7, "night": first * 2}


def price_minor(code: str, minutes: int) -> int:
    """The smallest band covering the stay; beyond the last band, the daily max per started 24 h."""
    tariff = tariff_of(code)
    for up_to, price in tariff["bands"]:
        if minutes <= up_to:
            return price
    return math.ceil(minutes / DAY_MINUTES) * tariff["daily_max"]


class ParklineBackend:
    """The vendor's side of things: its view of the world, its data, and the sandbox hooks."""

    def __init__(self, world: World, api_key: str | None, clock: Callable[[], datetime] | None = None,
                 office: BackOffice | None = None) -> None:
        self.world = world
        self.office = office or office_of(world)
        self._api_key = api_key.encode() if api_key else None
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.closed: set[str] = set()
        self.patches: dict[str, dict[str, Any]] = {}
        self.extra_occupancy: list[Any] = []
        self.extra_transactions: list[Any] = []
        self.unreadable: set[str] = set()
        self.public_url: str | None = None
        self.price_requests: list[dict[str, str]] = []
        self.price_delay_ms = 0
        self.prices_in_flight = 0
        self.max_prices_in_flight = 0
        self._day_start: dict[str, tuple[date, int, int]] = {}  # code -> (local day, entries, exits)
        self._closed_keys: set[str] = set()  # garage keys this vendor closed in the office
        self._garages_by_code: dict[str, str] | None = None

    def sync_closed(self) -> None:
        """Mirror `closed` (car park codes) into the office's closed garages, leaving others' alone."""
        now = {key for code, key in self.garages() if code in self.closed}
        self.office.closed -= self._closed_keys - now
        self.office.closed |= now
        self._closed_keys = now

    def patch_occupancy(self, code: str, **fields: Any) -> None:
        """Overwrite fields of one car park's occupancy record, e.g. updated="n/a"."""
        self.patches.setdefault(code, {}).update(fields)

    def authorized(self, request: Request) -> bool:
        given = request.headers.get("x-api-key")
        if self._api_key is None or given is None:
            return False
        return hmac.compare_digest(given.encode(), self._api_key)

    # --- data -------------------------------------------------------------------------

    def garages(self) -> list[tuple[str, str]]:
        return [(code, key) for key, code in self.world.ids_of("parkline", VENDOR_IDS).items()]

    def garage_of(self, code: str) -> str | None:
        """The world's garage key of a car park code (None for the decommissioned one, or none at all)."""
        if self._garages_by_code is None:  # the world's assignment never changes: index it once
            self._garages_by_code = {code: key for code, key in self.garages()}
        return self._garages_by_code.get(code)

    def time_zone(self, code: str) -> ZoneInfo:
        key = self.garage_of(code)
        if key is not None:
            return ZoneInfo(self.world.garages[key].spec.time_zone)
        return ZoneInfo(DECOMMISSIONED["tz"])

    def local_now(self, code: str) -> datetime:
        return self.clock().astimezone(self.time_zone(code)).replace(microsecond=0)

    def carpark(self, key: str, code: str) -> dict[str, Any]:
        spec = self.world.garages[key].spec
        return {
            "code": code,
            "title": spec.name,
            "spaces": spec.capacity,
            "tz": spec.time_zone,
            "addr": f"{spec.street}, {spec.city} {spec.postal_code}",
            "postcode": spec.postal_code,
            "lat": spec.latitude,
            "lng": spec.longitude,
            "floors": [{"ref": level.key, "label": level.name, "spaces": level.capacity} for level in spec.levels],
        }

    def _today(self, code: str, state: GarageState, day: date) -> tuple[int, int]:
        """Gate counts since local midnight. The first look counts the cars inside as today's arrivals."""
        start = self._day_start.get(code)
        if start is None:
            start = (day, state.entries - state.total_occupied, state.exits)
        elif start[0] != day:
            start = (day, state.entries, state.exits)
        self._day_start[code] = start
        return state.entries - start[1], state.exits - start[2]

    def occupancy(self, key: str, code: str) -> dict[str, Any]:
        state = self.world.snapshot(key)
        present, spaces = state.counted_occupied, state.spec.capacity
        now = self.local_now(code)
        entries, exits = self._today(code, state, now.date())
        status = "CLOSED" if code in self.closed else "FULL" if present >= spaces else "OPEN"
        record = {
            "code": code,
            "present": present,
            "spaces": spaces,
            "state": status,
            "entries_today": entries,
            "exits_today": exits,
            "updated": now.isoformat(),
        }
        record.update(self.patches.get(code, {}))
        return record

    def tariff(self, code: str) -> dict[str, Any]:
        tariff = tariff_of(code)
        return {
            "code": code,
            "currency": "GBP",
            "bands": [{"up_to_minutes": up_to, "price_minor": price} for up_to, price in tariff["bands"]],
            "daily_max_minor": tariff["daily_max"],
            "night_flat_minor": tariff["night"],
        }

    # --- wire ---------------------------------------------------------------------------

    def page(self, request: Request, items: list[Any], max_per_page: int = MAX_PER_PAGE) -> Response:
        """One page of a bare JSON array; the next page only in an RFC 8288 Link header."""
        try:
            page = int(request.query_params.get("page", "1"))
            per_page = min(int(request.query_params.get("per_page", str(DEFAULT_PER_PAGE))), max_per_page)
        except ValueError:
            return vendor_error(400, {"reason": "invalid_paging"})
        if page < 1 or per_page < 1:
            return vendor_error(400, {"reason": "invalid_paging"})
        start = (page - 1) * per_page
        headers = {}
        if start + per_page < len(items):
            url = request.url.include_query_params(page=page + 1, per_page=per_page)
            if self.public_url:
                public = urlsplit(self.public_url)
                url = url.replace(scheme=public.scheme, netloc=public.netloc)
            headers["Link"] = f'<{url}>; rel="next"'
        return JSONResponse(items[start : start + per_page], headers=headers)
