"""The DATEX II simulator's app: an open-data platform publishing the parking of some sandbox garages.

What it serves (the wire contract the adapter in `adapters/datex2/adapter.py` speaks), XML over
HTTP pull, no authentication (open data):

- `GET /parking/table`: a ParkingTablePublication: each garage a `prk:Place` (name, address,
  coordinates, capacity) with its levels as `prk:SubplaceElement`s; it never changes while the
  simulator runs.
- `GET /parking/status`: a ParkingStatusPublication: a `prk:PlaceStatus` per garage (occupied and
  vacant spaces, percentage, trend, status, opening status) and a `prk:parkingStatusInformation`
  per level, each with the time its figures last changed. What its sensors see in the world.

Both answer with `Last-Modified` and honour `If-Modified-Since` with 304 Not Modified, as DATEX II
pull servers do. The status is republished when the world changed, at most once a second (HTTP
dates have whole seconds: a document changed twice in one second would hide the second change
from a client holding the first). Every document validates against the v3.7 schemas.

Test hooks, on `Datex2Simulator.platform`:

- `platform.clock`: what "now" is for publication times (a callable; tests step it by hand).
- `platform.override("P-HH-0042", numberOfVacantSpaces="many")`: element texts of that record
  replaced in the status until `platform.clear_overrides()` (a publisher's bug).
- `platform.publish_verbatim("status", xml)`: serve these bytes as that publication (with their
  own Last-Modified) until `platform.publish_verbatim("status", None)`: documents built by tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.datex2.simulator.publications import Figures, Record, Site, status_document, table_document
from adapters.datex2.wire import MEDIA_TYPE, PUBLICATIONS, http_date, parse_http_date
from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app
from adapters.simulated.world import World

#: garage key -> the publisher's id for it (its levels: "<id>-<level key>")
VENDOR_IDS: Mapping[str, str] = {
    "hamburg-elbe": "P-HH-0042",
    "london-southbank": "P-LDN-0117",
}
ALMOST_FULL_PERCENT = 90
TABLE_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Published:
    """One publication as served: its bytes and when it last changed (whole seconds)."""

    body: bytes
    modified: datetime


class OpenDataPlatform:
    """The publisher's back end: the table it keeps, and the status it republishes as the world moves."""

    def __init__(self, world: World, clock: Callable[[], datetime] | None = None) -> None:
        self.world = world
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        ids = world.ids_of("datex2", VENDOR_IDS)
        self.sites = [Site(site_id, world.garages[key].spec, _offset(world.garages[key].spec.time_zone))
                      for key, site_id in ids.items()]
        self._keys = {site_id: key for key, site_id in ids.items()}
        started = self._now()
        self.table = Published(table_document(self.sites, started, TABLE_VERSION), started)
        self.status: Published | None = None
        self._figures: dict[str, Figures] = {}
        self._changed_at: dict[str, datetime] = {}
        self._overrides: dict[str, dict[str, str]] = {}
        self._verbatim: dict[str, Published] = {}
        self._dirty = False

    # --- test hooks ------------------------------------------------------------------------

    def override(self, reference: str, **texts: str) -> None:
        self._overrides.setdefault(reference, {}).update(texts)
        self._dirty = True

    def clear_overrides(self) -> None:
        self._overrides.clear()
        self._dirty = True

    def publish_verbatim(self, publication: str, body: bytes | None) -> None:
        if publication not in PUBLICATIONS:
            raise ValueError(f"no publication {publication!r}; there are {', '.join(PUBLICATIONS)}")
        if body is None:
            self._verbatim.pop(publication, None)
            self._dirty = True
        else:
            previous = self._verbatim.get(publication)
            modified = self._now() if previous is None else max(self._now(), previous.modified + timedelta(seconds=1))
            self._verbatim[publication] = Published(body, modified)

    # --- what it publishes -----------------------------------------------------------------

    def publication(self, name: str) -> Published:
        if name in self._verbatim:
            return self._verbatim[name]
        return self.table if name == "table" else self.current_status()

    def current_status(self) -> Published:
        """The status document, republished first if the world changed since (and a second has passed)."""
        now = self._now()
        if self.status is not None and now <= self.status.modified:
            return self.status  # published this second already: the change waits for the next one
        figures = self.observe()
        if self.status is not None and figures == self._figures and not self._dirty:
            return self.status
        for reference, seen in figures.items():
            if self._figures.get(reference) != seen or reference not in self._changed_at:
                self._changed_at[reference] = now
        self._figures, self._dirty = figures, False
        records = [Record(reference, reference in self._keys, seen, self._changed_at[reference], self._tz(reference))
                   for reference, seen in figures.items()]
        self.status = Published(status_document(records, now, TABLE_VERSION, self._overrides), now)
        return self.status

    def observe(self) -> dict[str, Figures]:
        """What the platform's sensors see in the world now: each site, then each of its levels."""
        figures: dict[str, Figures] = {}
        for site in self.sites:
            state = self.world.snapshot(self._keys[site.id])
            trend = {1: "increasing", -1: "decreasing"}.get(state.trend, "stable")
            capacity = state.spec.capacity
            figures[site.id] = Figures(state.total_occupied, capacity, trend, _status(state.total_occupied, capacity))
            for level, occupied in zip(state.spec.levels, state.occupied, strict=True):
                figures[site.level_id(level.key)] = Figures(occupied, level.capacity, trend, None)
        return figures

    def _tz(self, reference: str) -> timezone:
        return next(site.tz for site in self.sites if reference == site.id or reference.startswith(f"{site.id}-"))

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    # --- HTTP ----------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route(path, self._endpoint(name), methods=["GET"]) for name, path in PUBLICATIONS.items()]

    def _endpoint(self, name: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            published = self.publication(name)
            headers = {"Last-Modified": http_date(published.modified), "Cache-Control": "no-cache"}
            since = parse_http_date(request.headers.get("if-modified-since"))
            if since is not None and published.modified <= since:
                return Response(status_code=304, headers=headers)
            return Response(published.body, media_type=MEDIA_TYPE, headers=headers)

        return serve


def _status(occupied: int, capacity: int) -> str:
    if occupied >= capacity:
        return "full"
    if occupied * 100 >= capacity * ALMOST_FULL_PERCENT:
        return "almostFull"
    return "spacesAvailable"


def _offset(time_zone: str) -> timezone:
    """The garage's UTC offset now: records' times are written in local time, as city feeds do."""
    offset = datetime.now(ZoneInfo(time_zone)).utcoffset() or timedelta(0)
    return timezone(offset)


@dataclass
class Datex2Simulator(Simulator):
    """A `Simulator` plus the publisher's back end, for the test hooks described above."""

    platform: OpenDataPlatform


def create_simulator(world: World, system_id: str, credentials: Mapping[str, str]) -> Datex2Simulator:
    """An open-data platform publishing the garages of `world` it covers (open data: no credentials)."""
    platform = OpenDataPlatform(world)
    control = SimulatorControl(system_id)
    return Datex2Simulator(system_id, simulator_app(control, platform.routes()), control, world, platform)
