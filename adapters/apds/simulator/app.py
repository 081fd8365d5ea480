"""The APDS simulator's app: the vendor side of `adapters/apds/wire.py`, observing the shared `World`.

It runs the four German garages (`VENDOR_IDS`, state.py). Every request reads the world afresh,
so counts move as the day goes on. Tests and the sandbox reach its knobs through `sim.state`
(`ApdsState`): close a garage, or make one record malformed to prove the adapter's per-record
error handling. Reservations, sessions, payments, permits, validations and transactions are the
world's back office (`sim.office`, adapters/simulated/back_office.py) in APDS words
(office_routes.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.apds.simulator import office_routes
from adapters.apds.simulator.plumbing import guard, paged
from adapters.apds.simulator.plumbing import now as sim_now
from adapters.apds.simulator.state import ApdsState
from adapters.apds.wire import (
    MAX_QUOTES,
    PREFIX,
    WireError,
    format_amount,
    format_time,
    obj,
    parse_time,
    text,
)
from adapters.operation_models import RefusalReason
from adapters.simulated.back_office import BackOffice, GarageTerms, OfficeRefusal, office_of
from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app
from adapters.simulated.world import GarageSpec, World

# APDS entities are versioned; each place has been edited a different number of times.
VERSIONS: dict[str, int] = {"berlin-hbf": 3, "berlin-mitte": 1, "berlin-spree-hotel": 2, "hamburg-elbe": 5}

# Hamburg's counter controller has no clock: its occupancy records carry no observedAt at all.
NO_CLOCK = frozenset({"hamburg-elbe"})

DAY = timedelta(hours=24)
MAX_STAY = timedelta(days=30)  # longer windows are INVALID_WINDOW
QUOTE_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class Tariff:
    """One garage's tariff: a free first tier, then per started period, capped per started 24 h."""

    free_minutes: int
    period_minutes: int
    period_amount: Decimal
    daily_max: Decimal | None
    day_ticket: Decimal  # sold at the pay station; informative, quotes do not use it
    valid_from: datetime
    currency: str = "EUR"

    def lines(self) -> list[dict[str, Any]]:
        incrementing: dict[str, Any] = {
            "type": "incrementing",
            "periodMinutes": self.period_minutes,
            "amount": format_amount(self.period_amount),
            "description": f"Per started {self.period_minutes} minutes",
        }
        if self.daily_max is not None:
            incrementing["maxAmount"] = format_amount(self.daily_max)
        return [
            {"type": "tiered", "upToMinutes": self.free_minutes, "amount": "0.00",
             "description": f"First {self.free_minutes} minutes free"},
            incrementing,
            {"type": "flat", "amount": format_amount(self.day_ticket), "description": "Day ticket"},
        ]

    def price(self, stay: timedelta) -> Decimal:
        """Stays within the free tier cost nothing; after it, each started period costs
        `period_amount`, attributed to the 24 h block (from arrival) it starts in, and each
        block costs at most `daily_max`."""
        period = timedelta(minutes=self.period_minutes)
        per_block: Counter[int] = Counter()
        start = timedelta(minutes=self.free_minutes)
        while start < stay:  # bounded: stays are at most MAX_STAY
            per_block[start // DAY] += 1
            start += period
        total = Decimal("0.00")
        for periods in per_block.values():
            charge = periods * self.period_amount
            total += charge if self.daily_max is None else min(charge, self.daily_max)
        return total


_2026 = datetime(2026, 1, 1, tzinfo=UTC)
TARIFFS: dict[str, Tariff] = {
    "berlin-hbf": Tariff(15, 60, Decimal("3.00"), Decimal("30.00"), Decimal("25.00"), _2026),
    "berlin-mitte": Tariff(30, 30, Decimal("1.50"), Decimal("20.00"), Decimal("16.00"), _2026),
    "berlin-spree-hotel": Tariff(10, 60, Decimal("4.00"), Decimal("35.00"), Decimal("32.00"), _2026),
    "hamburg-elbe": Tariff(30, 60, Decimal("2.50"), Decimal("24.00"), Decimal("18.00"), datetime(2026, 3, 1, tzinfo=UTC)),
}

@dataclass
class ApdsSimulator(Simulator):
    state: ApdsState
    office: BackOffice


def create_simulator(world: World, system_id: str, credentials: Mapping[str, str]) -> ApdsSimulator:
    """An APDS simulator that accepts `Authorization: Token <credentials["token"]>`."""
    if not credentials.get("token"):
        raise KeyError(f"the apds simulator {system_id!r} needs credential 'token'")
    office = office_of(world)
    state = ApdsState(world, credentials["token"], closed=office.closed)  # one set: closed for bookings too
    for key, _ in state.places():
        spec = world.garages[key].spec
        office.register(GarageTerms(key, "EUR", Decimal("0.19"), reservable=max(5, spec.capacity // 10),
                                    price=TARIFFS[key].price, time_zone=spec.time_zone, hotel=spec.profile == "hotel"))
    routes = [
        Route(f"{PREFIX}/places", guard(state, _places), methods=["GET"]),
        Route(f"{PREFIX}/occupancy", guard(state, _occupancy), methods=["GET"]),
        Route(f"{PREFIX}/rates", guard(state, _rates), methods=["GET"]),
        Route(f"{PREFIX}/quotes", guard(state, _quotes), methods=["POST"]),
        *office_routes.routes(state),
    ]
    control = SimulatorControl(system_id)
    return ApdsSimulator(system_id, simulator_app(control, routes), control, world, state, office)


# --- endpoints ---------------------------------------------------------------------------


async def _places(state: ApdsState, request: Request) -> Response:
    def build(key: str, place_id: str) -> dict[str, Any]:
        spec: GarageSpec = state.world.garages[key].spec
        return {
            "id": place_id,
            "version": VERSIONS.get(key, 1),
            "name": spec.name,
            "type": "facility",
            "timeZone": spec.time_zone,
            "address": {
                "streetAddress": spec.street,
                "postalCode": spec.postal_code,
                "addressLocality": spec.city,
                "addressCountry": spec.country,
            },
            "location": {"type": "Point", "coordinates": [spec.longitude, spec.latitude]},
            "capacity": [{"vehicleType": "car", "value": spec.capacity}],
            "hierarchyElements": [
                {"id": level.key, "name": level.name, "type": "level", "capacity": level.capacity}
                for level in spec.levels
            ],
        }

    return paged(request, state.records("places", build))


async def _occupancy(state: ApdsState, request: Request) -> Response:
    now = sim_now()

    def build(key: str, place_id: str) -> dict[str, Any]:
        garage = state.world.snapshot(key)  # advances the world: live figures on every request
        capacity = garage.spec.capacity
        occupied = garage.counted_occupied
        free = capacity - occupied  # negative when the counter has drifted past capacity: as sent
        record: dict[str, Any] = {"placeId": place_id}
        if key not in NO_CLOCK:
            record["observedAt"] = format_time(now)
        record.update(
            counters=[{"counterId": "main", "entries": garage.entries, "exits": garage.exits}],
            capacity=capacity,
            occupied=occupied,
            free=free,
            status="closed" if key in state.closed else "full" if free <= 0 else "open",
        )
        return record

    return paged(request, state.records("occupancy", build))


async def _rates(state: ApdsState, request: Request) -> Response:
    def build(key: str, place_id: str) -> dict[str, Any]:
        tariff = TARIFFS[key]
        return {
            "placeId": place_id,
            "currency": tariff.currency,
            "validFrom": format_time(tariff.valid_from),
            "rateLines": tariff.lines(),
        }

    return paged(request, state.records("rates", build))


async def _quotes(state: ApdsState, request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise WireError("the body is not JSON") from exc
    requests = obj(body, "body").get("requests")
    if not isinstance(requests, list):
        raise WireError('the body needs a "requests" list')
    if len(requests) > MAX_QUOTES:
        raise WireError(f"at most {MAX_QUOTES} requests per call")
    keys = {place_id: key for key, place_id in state.places()}
    now = sim_now()
    data = []
    for index, item in enumerate(requests):
        try:
            item = obj(item, "request")
            place_id = text(item, "placeId")
            starts, ends = parse_time(item.get("from"), "from"), parse_time(item.get("to"), "to")
        except WireError as exc:
            raise WireError(f"requests[{index}]: {exc}") from exc
        answer: dict[str, Any] = {"placeId": place_id, "from": item["from"], "to": item["to"]}
        key = keys.get(place_id)
        if key is None:
            answer["unavailable"] = {"reason": "UNKNOWN_PLACE"}
        elif not timedelta(0) < ends - starts <= MAX_STAY:
            answer["unavailable"] = {"reason": "INVALID_WINDOW"}
        elif key in state.closed:
            answer["unavailable"] = {"reason": "CLOSED"}
        elif _fully_booked(state, key, starts, ends):
            answer["unavailable"] = {"reason": "FULLY_BOOKED"}
        else:
            tariff = TARIFFS[key]
            answer["price"] = {"amount": format_amount(tariff.price(ends - starts)), "currency": tariff.currency}
            answer["expiresAt"] = format_time(now + QUOTE_TTL)
        data.append(answer)
    return JSONResponse({"data": data})


def _fully_booked(state: ApdsState, key: str, starts: datetime, ends: datetime) -> bool:
    """A quote for a window with no reservable space left says so, as the booking would."""
    try:
        office_of(state.world).quote(key, starts, ends)
    except OfficeRefusal as refusal:
        return refusal.reason is RefusalReason.FULLY_BOOKED
    return False
