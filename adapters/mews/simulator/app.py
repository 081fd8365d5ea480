"""The Mews simulator's app, a simulated Mews-style hotel PMS: the hotels that own two of the world's garages, and their guests.

Connector API in manner: every call a POST with the tokens and `Client` in the JSON body,
`{"Message": …}` errors, cursor paging in `Limitation`, newest first by `UpdatedUtc`, `…Utc`
instants with milliseconds.

Each hotel is seeded from a random source keyed by the system id (reproducible runs) with ~40
reservations from a week ago to a week ahead, in states that fit the present: past stays
Processed, current ones Started, future ones Confirmed, a few Canceled; ~60 % of guests have a
car registration. As real time passes, stays check in and out and new bookings arrive, replayed
lazily whenever someone asks. Tests and the sandbox's "trigger a check-in" control add their own
through `MewsState.add_reservation`, whose `wire`/`customer_wire` arguments put malformed values
on the wire.
"""

from __future__ import annotations

import calendar
import hmac
import json
import random
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.mews.wire import API, CUSTOMERS, ENTERPRISES, MAX_COUNT, RESERVATIONS, format_utc, parse_utc
from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app
from adapters.simulated.world import GarageSpec, World


class _Listed(Protocol):
    """What the API's lists are ordered and paged by: every simulated record has both."""

    @property
    def id(self) -> str: ...

    @property
    def updated(self) -> datetime: ...


T = TypeVar("T", bound=_Listed)

#: garage key -> the enterprise (hotel) id that owns the garage
VENDOR_IDS: dict[str, str] = {
    "berlin-spree-hotel": "b8a1e3a2-7c55-4f0e-9a7e-2f1a0c9d5e11",
    "london-southbank": "c41d0f7e-2b6a-4e39-8d1c-7a9e5b3f2e12",
}
HOTEL_NAMES: dict[str, str] = {
    "berlin-spree-hotel": "Spree Hotel Berlin",
    "london-southbank": "Thames Hotel London",
}

#: a `wire` override value that removes the field instead of replacing it
OMIT: Any = object()

SEED_RESERVATIONS = 40  # per hotel
SEED_DAYS = 7  # arrivals from a week ago to a week ahead
CHECK_IN, CHECK_OUT = time(15, 0), time(11, 0)  # local
BOOKING_EVERY_MINUTES = (15.0, 40.0)  # a new booking somewhere, in real time
MAX_CATCH_UP = timedelta(hours=2)
MAX_COLLIDING_MONTHS = 3

FIRST_NAMES = {
    "DE": ("Anna", "Lukas", "Marie", "Jonas", "Sophie", "Felix", "Lea", "Paul", "Clara", "Maximilian", "Emma", "Ben"),
    "GB": ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Olivia", "Charlie", "Emily", "Thomas", "Grace"),
}
LAST_NAMES = {
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann"),
    "GB": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Evans", "Thomas"),
}
DE_DISTRICTS = ("B", "B", "B", "P", "HH", "M", "K", "F", "S", "D", "L", "DD")
UK_AREAS = ("LA", "LB", "LC", "LD", "LF", "LG", "LK", "LN", "YA", "BD", "MA", "OV", "SN", "EA")
UK_AGES = ("19", "69", "20", "70", "21", "71", "22", "72", "23", "73", "24", "74", "25", "75", "26")
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


@dataclass(frozen=True)
class SimEnterprise:
    id: str
    name: str
    time_zone: str
    country: str
    created: datetime
    updated: datetime

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def to_wire(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "TimeZoneIdentifier": self.time_zone,
            "CreatedUtc": format_utc(self.created),
            "UpdatedUtc": format_utc(self.updated),
        }


@dataclass
class SimCustomer:
    id: str
    first_name: str | None
    last_name: str
    car_registration: str | None
    nationality: str
    created: datetime
    updated: datetime
    wire: dict[str, Any] = field(default_factory=dict)  # raw overrides, for malformed records

    def to_wire(self) -> dict[str, Any]:
        return _apply({
            "Id": self.id,
            "FirstName": self.first_name,
            "LastName": self.last_name,
            "CarRegistrationNumber": self.car_registration,
            "NationalityCode": self.nationality,
            "CreatedUtc": format_utc(self.created),
            "UpdatedUtc": format_utc(self.updated),
        }, self.wire)


@dataclass
class SimReservation:
    id: str
    enterprise: SimEnterprise
    number: str
    state: str  # Confirmed | Started | Processed | Canceled
    start: datetime
    end: datetime
    customer: SimCustomer
    created: datetime
    updated: datetime
    wire: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        started = self.state in ("Started", "Processed")
        return _apply({
            "Id": self.id,
            "EnterpriseId": self.enterprise.id,
            "Number": self.number,
            "State": self.state,
            "AccountId": self.customer.id,
            "AccountType": "Customer",
            "ScheduledStartUtc": format_utc(self.start),
            "ScheduledEndUtc": format_utc(self.end),
            "ActualStartUtc": format_utc(self.start) if started else None,
            "ActualEndUtc": format_utc(self.end) if self.state == "Processed" else None,
            "CancelledUtc": format_utc(self.updated) if self.state == "Canceled" else None,
            "CreatedUtc": format_utc(self.created),
            "UpdatedUtc": format_utc(self.updated),
        }, self.wire)


def _apply(body: dict[str, Any], wire: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in wire.items():
        if value is OMIT:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def state_at(start: datetime, end: datetime, now: datetime) -> str:
    """The state a (not cancelled) stay is in at `now`."""
    return "Confirmed" if now < start else "Started" if now < end else "Processed"


class MewsState:
    """The PMS's data: its hotels, their reservations and the customers behind them."""

    def __init__(self, enterprises: Sequence[SimEnterprise], *, seed: int, now: datetime | None = None) -> None:
        self._rng = random.Random(seed)
        self.enterprises: dict[str, SimEnterprise] = {e.id: e for e in enterprises}
        self.reservations: dict[str, SimReservation] = {}
        self.customers: dict[str, SimCustomer] = {}
        self._number = self._rng.randint(40_000, 90_000)
        self._own: set[str] = set()  # what the simulation booked itself; only those move on
        #: False freezes the hotels: no check-ins, check-outs or new bookings (for tests that count)
        self.live = True
        now = now or datetime.now(UTC)
        for enterprise in enterprises:
            for _ in range(SEED_RESERVATIONS):
                self._seed_one(enterprise, now)
        self._clock = now
        self._next_booking = now + self._interval()

    # --- what control requests and tests do ---------------------------------------------

    def add_reservation(
        self,
        enterprise_id: str,
        *,
        start: datetime,
        end: datetime,
        state: str | None = None,
        first_name: str | None = "Erika",
        last_name: str = "Mustermann",
        car_registration: str | None = None,
        customer_id: str | None = None,
        updated: datetime | None = None,
        wire: Mapping[str, Any] | None = None,
        customer_wire: Mapping[str, Any] | None = None,
    ) -> SimReservation:
        """Book a stay (its state follows from now unless given) for a new or existing customer.

        `wire` / `customer_wire` replace fields of the reservation's / customer's JSON (`OMIT`
        removes one), so tests can put a malformed record among good ones:
        `add_reservation(hotel, start=…, end=…, wire={"ScheduledStartUtc": "27.11.2026 15:00"})`.
        Filtering and ordering keep using the given `start`, `end` and `updated`.
        """
        now = datetime.now(UTC)
        enterprise = self.enterprises[enterprise_id]
        updated = updated or now
        customer = self.customers.get(customer_id or "")
        if customer is None:
            customer = SimCustomer(
                id=customer_id or self._uuid(), first_name=first_name, last_name=last_name,
                car_registration=car_registration, nationality=enterprise.country,
                created=min(updated, now), updated=min(updated, now), wire=dict(customer_wire or {}),
            )
            self.customers[customer.id] = customer
        self._number += 1
        reservation = SimReservation(
            id=self._uuid(), enterprise=enterprise, number=str(self._number),
            state=state or state_at(start, end, now), start=start, end=end, customer=customer,
            created=min(updated, now), updated=updated, wire=dict(wire or {}),
        )
        self.reservations[reservation.id] = reservation
        return reservation

    def advance(self, now: datetime | None = None) -> None:
        """Check stays in and out and take new bookings, from the last look up to `now`."""
        now = now or datetime.now(UTC)
        if not self.live:
            self._clock = self._next_booking = now
            return
        if now - self._clock > MAX_CATCH_UP:
            self._next_booking = max(self._next_booking, now - MAX_CATCH_UP)
        while self.enterprises and self._next_booking <= now:
            self._book(self._rng.choice(list(self.enterprises.values())), self._next_booking)
            self._next_booking += self._interval()
        for reservation in self.reservations.values():
            if reservation.id not in self._own or reservation.state == "Canceled":
                continue
            state = state_at(reservation.start, reservation.end, now)
            if state != reservation.state:
                reservation.state = state
                reservation.updated = reservation.start if state == "Started" else reservation.end
        self._clock = now

    def colliding(self, enterprise_ids: Sequence[str] | None, start: datetime, end: datetime) -> list[SimReservation]:
        chosen = [
            r for r in self.reservations.values()
            if (enterprise_ids is None or r.enterprise.id in enterprise_ids) and r.start < end and r.end > start
        ]
        return newest_first(chosen)

    # --- how the data evolves -----------------------------------------------------------

    def _seed_one(self, enterprise: SimEnterprise, now: datetime) -> None:
        rng = self._rng
        tz = enterprise.tz
        arrival = now.astimezone(tz).date() + timedelta(days=rng.randint(-SEED_DAYS, SEED_DAYS))
        departure = arrival + timedelta(days=rng.choice((1, 1, 2, 2, 3, 4, 5)))
        start = datetime.combine(arrival, CHECK_IN, tzinfo=tz).astimezone(UTC)
        end = datetime.combine(departure, CHECK_OUT, tzinfo=tz).astimezone(UTC)
        created = min(now - timedelta(hours=1), start - timedelta(days=rng.uniform(1, 45)))
        if rng.random() < 0.08:
            state = "Canceled"
            updated = created + (min(now, start) - created) * rng.random()
        else:
            state = state_at(start, end, now)
            updated = {
                "Confirmed": created + (now - created) * rng.random(),  # a change of plans since booking
                "Started": min(now, start + timedelta(hours=rng.uniform(0, 5))),  # the guest checked in
                "Processed": end - timedelta(hours=rng.uniform(0, 3)),  # and out, before eleven
            }[state]
        self._add_own(enterprise, start, end, state, created, updated)

    def _book(self, enterprise: SimEnterprise, at: datetime) -> None:
        tz = enterprise.tz
        arrival = at.astimezone(tz).date() + timedelta(days=self._rng.randint(1, 14))
        departure = arrival + timedelta(days=self._rng.randint(1, 4))
        start = datetime.combine(arrival, CHECK_IN, tzinfo=tz).astimezone(UTC)
        end = datetime.combine(departure, CHECK_OUT, tzinfo=tz).astimezone(UTC)
        self._add_own(enterprise, start, end, "Confirmed", at, at)

    def _add_own(
        self, enterprise: SimEnterprise, start: datetime, end: datetime, state: str, created: datetime, updated: datetime
    ) -> None:
        rng = self._rng
        regulars = [c for c in self.customers.values() if c.nationality == enterprise.country]
        if regulars and rng.random() < 0.1:  # a returning guest
            customer = rng.choice(regulars)
        else:
            home = enterprise.country if rng.random() < 0.75 else rng.choice(("DE", "GB"))
            car = self._plate(home) if rng.random() < 0.6 else None
            customer = SimCustomer(
                id=self._uuid(), first_name=rng.choice(FIRST_NAMES[home]), last_name=rng.choice(LAST_NAMES[home]),
                car_registration=car, nationality=home, created=created, updated=created,
            )
            self.customers[customer.id] = customer
        self._number += 1
        reservation = SimReservation(
            id=self._uuid(), enterprise=enterprise, number=str(self._number), state=state,
            start=start, end=end, customer=customer, created=created, updated=updated,
        )
        self.reservations[reservation.id] = reservation
        self._own.add(reservation.id)

    def _plate(self, country: str) -> str:
        rng = self._rng
        if country == "GB":  # current format: area, age identifier, three random letters
            return f"{rng.choice(UK_AREAS)}{rng.choice(UK_AGES)} {''.join(rng.choice(LETTERS) for _ in range(3))}"
        district = rng.choice(DE_DISTRICTS)
        letters = "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 2)))
        return f"{district}-{letters} {rng.randint(1, 10 ** min(4, 8 - len(district) - len(letters)) - 1)}"

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _interval(self) -> timedelta:
        return timedelta(minutes=self._rng.uniform(*BOOKING_EVERY_MINUTES))


def newest_first(items: Sequence[T]) -> list[T]:
    return sorted(items, key=lambda item: (item.updated, item.id), reverse=True)


class MewsApiError(Exception):
    """A request the simulated Connector API refuses; carries the status and the Mews-style message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class MewsApi:
    """The Connector API's HTTP surface over a `MewsState`."""

    def __init__(self, state: MewsState, credentials: Mapping[str, str]) -> None:
        self.state = state
        self._client_token = _need(credentials, "client_token").encode()
        self._access_token = _need(credentials, "access_token").encode()

    def routes(self) -> list[Route]:
        return [
            Route(f"{API}/{ENTERPRISES}", self._endpoint(self.enterprises), methods=["POST"]),
            Route(f"{API}/{RESERVATIONS}", self._endpoint(self.reservations), methods=["POST"]),
            Route(f"{API}/{CUSTOMERS}", self._endpoint(self.customers), methods=["POST"]),
        ]

    def _endpoint(self, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            try:
                body = self._authorized(await request.body())
                self.state.advance()
                return JSONResponse(handler(body))
            except MewsApiError as exc:
                return JSONResponse({"Message": exc.message}, status_code=exc.status)

        return endpoint

    def enterprises(self, body: dict[str, Any]) -> dict[str, Any]:
        items, cursor = page(newest_first(list(self.state.enterprises.values())), body)
        return {"Enterprises": [e.to_wire() for e in items], "Cursor": cursor}

    def reservations(self, body: dict[str, Any]) -> dict[str, Any]:
        enterprise_ids = _ids(body, "EnterpriseIds", required=False)
        reservation_ids = _ids(body, "ReservationIds", required=False)
        if reservation_ids is not None:  # by id: no interval needed
            wanted = [self.state.reservations[i] for i in dict.fromkeys(reservation_ids) if i in self.state.reservations]
            items, cursor = page(newest_first(wanted), body)
            return {"Reservations": [r.to_wire() for r in items], "Cursor": cursor}
        colliding = body.get("CollidingUtc")
        if not isinstance(colliding, dict):
            raise MewsApiError(400, "CollidingUtc is required.")
        try:
            start, end = parse_utc(colliding.get("StartUtc")), parse_utc(colliding.get("EndUtc"))
        except ValueError:
            raise MewsApiError(400, "Invalid CollidingUtc: StartUtc and EndUtc must be UTC instants.") from None
        if end < start:
            raise MewsApiError(400, "Invalid CollidingUtc: EndUtc is before StartUtc.")
        if end > plus_months(start, MAX_COLLIDING_MONTHS):
            raise MewsApiError(400, f"Invalid CollidingUtc: the interval exceeds {MAX_COLLIDING_MONTHS} months.")
        items, cursor = page(self.state.colliding(enterprise_ids, start, end), body)
        return {"Reservations": [r.to_wire() for r in items], "Cursor": cursor}

    def customers(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = _ids(body, "CustomerIds", required=True)
        assert ids is not None
        wanted = [self.state.customers[i] for i in dict.fromkeys(ids) if i in self.state.customers]
        items, cursor = page(newest_first(wanted), body)
        return {"Customers": [c.to_wire() for c in items], "Cursor": cursor}

    def _authorized(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise MewsApiError(400, "Invalid request: the body must be a JSON object.")
        client_ok = hmac.compare_digest(_token(body, "ClientToken"), self._client_token)
        access_ok = hmac.compare_digest(_token(body, "AccessToken"), self._access_token)
        if not client_ok:
            raise MewsApiError(401, "Invalid ClientToken.")
        if not access_ok:
            raise MewsApiError(401, "Invalid AccessToken.")
        if not isinstance(body.get("Client"), str) or not body["Client"].strip():
            raise MewsApiError(400, "Invalid request: Client is required.")
        return body


def page(items: list[T], body: Mapping[str, Any]) -> tuple[list[T], str | None]:
    """One page after the body's cursor (an item id); the new cursor is the page's last id."""
    limitation = body.get("Limitation")
    if not isinstance(limitation, dict):
        raise MewsApiError(400, "Limitation is required.")
    count, cursor = limitation.get("Count"), limitation.get("Cursor")
    if type(count) is not int or not 1 <= count <= MAX_COUNT:
        raise MewsApiError(400, f"Invalid Limitation: Count must be between 1 and {MAX_COUNT}.")
    start = 0
    if cursor is not None:
        ids = [item.id for item in items]
        if not isinstance(cursor, str) or cursor not in ids:
            raise MewsApiError(400, "Invalid Limitation: unknown Cursor.")
        start = ids.index(cursor) + 1
    chosen = items[start : start + count]
    return chosen, (chosen[-1].id if chosen else None)


def plus_months(at: datetime, months: int) -> datetime:
    """The same day and time `months` later (clamped to the month's end, 31 Jan -> 30 Apr)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def _ids(body: Mapping[str, Any], name: str, *, required: bool) -> list[str] | None:
    ids = body.get(name)
    if ids is None and not required:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise MewsApiError(400, f"Invalid {name}: a list of ids is required.")
    if len(ids) > MAX_COUNT:
        raise MewsApiError(400, f"Invalid {name}: at most {MAX_COUNT} ids per call.")
    return ids


def _token(body: Mapping[str, Any], name: str) -> bytes:
    value = body.get(name)
    return value.encode() if isinstance(value, str) else b""


def _need(credentials: Mapping[str, str], name: str) -> str:
    try:
        return credentials[name]
    except KeyError:
        raise KeyError(f"the Mews simulator needs credential {name!r}") from None


def enterprise_for(spec: GarageSpec, enterprise_id: str, index: int, now: datetime) -> SimEnterprise:
    """The hotel that owns a garage of the world."""
    name = HOTEL_NAMES.get(spec.key, f"{spec.city} Hotel")
    created = (now - timedelta(days=900 - 60 * index)).replace(hour=9, minute=0, second=0, microsecond=0)
    return SimEnterprise(enterprise_id, name, spec.time_zone, spec.country, created, created + timedelta(days=400))


@dataclass
class MewsSimulator(Simulator):
    """A Mews simulator; `state` is where tests and control requests reach its data."""

    state: MewsState


def create_simulator(world: World, system_id: str, credentials: Mapping[str, str]) -> MewsSimulator:
    now = datetime.now(UTC)
    enterprises = [
        enterprise_for(world.garages[key].spec, enterprise_id, index, now)
        for index, (key, enterprise_id) in enumerate(VENDOR_IDS.items())
        if key in world.garages
    ]
    state = MewsState(enterprises, seed=zlib.crc32(system_id.encode()), now=now)
    control = SimulatorControl(system_id)
    api = MewsApi(state, credentials)
    return MewsSimulator(system_id, simulator_app(control, api.routes()), control, world, state)
