"""The ParkLine simulator's app: London car parks, API-key header, Link-header paging, no webhooks.

It observes the shared `World` and answers in ParkLine's dialect: local times with a numeric
offset, money in pence, bare JSON arrays paged by `page`/`per_page` with the next page only
in a `Link: <...>; rel="next"` header. Its stack answers a bad key with a plain-text 403.

Hooks for tests and sandbox partners live on `ParklineBackend` (`sim.backend`):
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

The back office (bookings, sessions, payments, permits, validations, the ledger) is the
world's shared `BackOffice` (`sim.office`), rendered in ParkLine's dialect by
`office_routes.py`. A car park in `closed` takes no bookings either.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.parkline.simulator.office_routes import office_routes
from adapters.parkline.wire import parse_time
from adapters.operation_models import RefusalReason
from adapters.simulated.back_office import BackOffice, GarageTerms, OfficeRefusal, office_of
from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app, vendor_error
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
VAT_RATE = Decimal("0.20")  # UK standard rate, included in every price
QUOTE_TTL = timedelta(minutes=15)
DAY_MINUTES = 24 * 60


def price_minor(code: str, minutes: int) -> int:
    """The smallest band covering the stay; beyond the last band, the daily max per started 24 h."""
    tariff = TARIFFS[code]
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
        return [(code, key) for key, code in VENDOR_IDS.items() if key in self.world.garages]

    def time_zone(self, code: str) -> ZoneInfo:
        for key, known in VENDOR_IDS.items():
            if known == code and key in self.world.garages:
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
        tariff = TARIFFS[code]
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


def create_simulator(
    world: World,
    system_id: str,
    credentials: Mapping[str, str],
    *,
    clock: Callable[[], datetime] | None = None,
) -> ParklineSimulator:
    """A ParkLine system over `world`, accepting `credentials["api_key"]`.

    A given `clock` becomes the world's back office clock too, so bookings and sessions see
    the same "now" as the rest of this vendor.
    """
    office = office_of(world)
    if clock is not None:
        office.clock = clock
    backend = ParklineBackend(world, credentials.get("api_key"), clock, office)
    for code, key in backend.garages():
        spec = world.garages[key].spec
        office.register(GarageTerms(
            key, "GBP", VAT_RATE, reservable=max(5, spec.capacity // 10),
            price=lambda stay, code=code: Decimal(price_minor(code, math.ceil(stay.total_seconds() / 60))) / 100,
            time_zone=spec.time_zone, hotel=spec.profile == "hotel",
        ))

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not backend.authorized(request):
                return PlainTextResponse("Forbidden", status_code=403)  # no JSON: that is this stack
            return await handler(request)

        return endpoint

    async def carparks(request: Request) -> Response:
        items = [backend.carpark(key, code) for code, key in backend.garages()]
        return backend.page(request, [*items, dict(DECOMMISSIONED)])

    async def occupancy(request: Request) -> Response:
        items = [backend.occupancy(key, code) for code, key in backend.garages()]
        return backend.page(request, [*items, *backend.extra_occupancy])

    async def tariffs(request: Request) -> Response:
        return backend.page(request, [backend.tariff(code) for code, _ in backend.garages()])

    async def price(request: Request) -> Response:
        backend.price_requests.append(dict(request.query_params))
        backend.prices_in_flight += 1
        backend.max_prices_in_flight = max(backend.max_prices_in_flight, backend.prices_in_flight)
        try:
            if backend.price_delay_ms:
                await asyncio.sleep(backend.price_delay_ms / 1000)
            return _price(request)
        finally:
            backend.prices_in_flight -= 1

    def _price(request: Request) -> Response:
        code = request.path_params["code"]
        active = {code for code, _ in backend.garages()}
        if code not in active and code != DECOMMISSIONED["code"]:
            return vendor_error(404, {"reason": "unknown_carpark"})
        try:
            arrive = parse_time(request.query_params.get("arrive"))
            depart = parse_time(request.query_params.get("depart"))
        except ValueError:
            arrive = depart = None
        if arrive is None or depart is None:
            return vendor_error(400, {"reason": "invalid_time"})
        if depart < arrive:
            return vendor_error(422, {"reason": "depart_before_arrive"})
        if code not in active or code in backend.closed:
            return vendor_error(422, {"reason": "closed"})
        if _fully_booked(world, backend, code, arrive, depart):
            return vendor_error(422, {"reason": "fully_booked"})
        tz = backend.time_zone(code)
        minutes = math.ceil((depart - arrive).total_seconds() / 60)
        return JSONResponse(
            {
                "code": code,
                "arrive": arrive.astimezone(tz).isoformat(),
                "depart": depart.astimezone(tz).isoformat(),
                "price_minor": price_minor(code, minutes),
                "currency": "GBP",
                # add in UTC, then localize: wall-clock arithmetic is wrong across a DST change
                "quote_expires": (backend.clock() + QUOTE_TTL).astimezone(tz).replace(microsecond=0).isoformat(),
            }
        )

    routes = [
        Route("/v2/carparks", guarded(carparks)),
        Route("/v2/carparks/occupancy", guarded(occupancy)),
        Route("/v2/tariffs", guarded(tariffs)),
        Route("/v2/carparks/{code}/price", guarded(price)),
        *office_routes(backend, guarded),
    ]
    control = SimulatorControl(system_id)
    return ParklineSimulator(system_id, simulator_app(control, routes), control, world, backend, office)


def _fully_booked(world: World, backend: ParklineBackend, code: str, arrive: datetime, depart: datetime) -> bool:
    """A price for a window with no reservable space left says so, as the booking would."""
    garage = next((key for key, known in VENDOR_IDS.items() if known == code), None)
    try:
        office_of(world).quote(garage or "", arrive, depart)
    except OfficeRefusal as refusal:
        return refusal.reason is RefusalReason.FULLY_BOOKED
    return False


@dataclass
class ParklineSimulator(Simulator):
    """A `Simulator` that also exposes the vendor's backend, for the hooks listed above."""

    backend: ParklineBackend
    #: the world's back office, as this vendor runs it (book, enter cars, read the ledger)
    office: BackOffice
