"""The ParkLine simulator's app: London car parks, API-key header, Link-header paging, no webhooks.

It observes the shared `World` and answers in ParkLine's dialect: local times with a numeric
offset, money in pence, bare JSON arrays paged by `page`/`per_page` with the next page only
in a `Link: <...>; rel="next"` header. Its stack answers a bad key with a plain-text 403.

Hooks for tests and sandbox partners live on `ParklineBackend` (`sim.backend`, backend.py).

The back office (bookings, sessions, payments, permits, validations, the ledger) is the
world's shared `BackOffice` (`sim.office`), rendered in ParkLine's dialect by
`office_routes.py`. A car park in `closed` takes no bookings either.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.operation_models import RefusalReason
from adapters.parkline.simulator import office_routes
from adapters.parkline.simulator.backend import DECOMMISSIONED, ParklineBackend, price_minor
from adapters.parkline.wire import parse_time
from adapters.simulated.back_office import BackOffice, GarageTerms, OfficeRefusal, office_of
from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app, vendor_error
from adapters.simulated.world import World

VAT_RATE = Decimal("0.20")  # UK standard rate, included in every price
QUOTE_TTL = timedelta(minutes=15)


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
            price=_tariff(code),
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
        *office_routes.routes(backend, guarded),
    ]
    control = SimulatorControl(system_id)
    return ParklineSimulator(system_id, simulator_app(control, routes), control, world, backend, office)


def _tariff(code: str) -> Callable[[timedelta], Decimal]:
    """The car park's tariff for the back office: a stay's price in pounds (the bands are in pence)."""
    return lambda stay: Decimal(price_minor(code, math.ceil(stay.total_seconds() / 60))) / 100


def _fully_booked(world: World, backend: ParklineBackend, code: str, arrive: datetime, depart: datetime) -> bool:
    """A price for a window with no reservable space left says so, as the booking would."""
    garage = backend.garage_of(code)
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
