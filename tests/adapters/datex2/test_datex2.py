"""The DATEX II adapter against the simulated publisher, over real HTTP on loopback: what it maps,
how it pulls (If-Modified-Since, 304 keeps the last document), and what goes wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from adapters.base import SystemSpec
from adapters.datex2 import Datex2Adapter
from adapters.datex2.simulator import VENDOR_IDS, Datex2Simulator, create_simulator
from adapters.datex2.wire import PUBLICATIONS, format_datetime, parse_datetime
from adapters.errors import UpstreamError, UpstreamUnavailable
from adapters.models import (
    Address,
    FacilityKind,
    GeoPoint,
    OccupancyMethod,
    OccupancyReading,
    OccupancyStatus,
    SystemKind,
    Trend,
)
from adapters.simulated.harness import FaultMode
from adapters.simulated.world import World
from tests.support.servers import free_port, serve

HAMBURG, SOUTHBANK = "hamburg-elbe", "london-southbank"
SITE = VENDOR_IDS[HAMBURG]
STATUS = f"GET {PUBLICATIONS['status']}"
TABLE = f"GET {PUBLICATIONS['table']}"


class Clock:
    """The publisher's "now", stepped by hand (it republishes at most once a second)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> None:
        self.now += timedelta(seconds=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Datex2Simulator:
    simulator = create_simulator(World(seed=9), "open-data", {})
    simulator.platform.clock = clock
    return simulator


def spec(url: str, **overrides: Any) -> SystemSpec:
    fields: dict[str, Any] = {"id": "open-data", "kind": SystemKind.GUIDANCE, "dialect": "datex2", "base_url": url}
    return SystemSpec(**(fields | overrides))


@asynccontextmanager
async def connected(sim: Datex2Simulator, **overrides: Any) -> AsyncIterator[Datex2Adapter]:
    async with serve(sim.app) as url:
        adapter = Datex2Adapter(spec(url, **overrides))
        try:
            yield adapter
        finally:
            await adapter.aclose()


def by_key(readings: list[OccupancyReading]) -> dict[tuple[str, str | None], OccupancyReading]:
    return {(r.vendor_facility_id, r.zone_id): r for r in readings}


# --- mapping ----------------------------------------------------------------------------


async def test_sites_and_levels_read_from_both_publications(sim: Datex2Simulator, clock: Clock) -> None:
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert batch.errors == []
    readings = by_key(batch.items)
    expected = {(site, None) for site in VENDOR_IDS.values()} | {
        (site, f"{site}-{level.key}") for key, site in VENDOR_IDS.items() for level in sim.world.garages[key].spec.levels}
    assert set(readings) == expected
    for key, site in VENDOR_IDS.items():
        state = sim.world.snapshot(key)
        total = readings[(site, None)]
        assert total.method is OccupancyMethod.SENSED
        assert (total.capacity, total.occupied) == (state.spec.capacity, state.total_occupied)
        assert total.free == state.spec.capacity - state.total_occupied  # numberOfVacantSpaces, as sent
        assert total.status in (OccupancyStatus.SPACES_AVAILABLE, OccupancyStatus.ALMOST_FULL, OccupancyStatus.FULL)
        assert total.trend in (Trend.FILLING, Trend.EMPTYING, Trend.STEADY)
        # observedAt is the publisher's own time (each record's lastUpdated), never the gateway's clock
        assert total.observed_at == clock.now
        for index, level in enumerate(state.spec.levels):
            reading = readings[(site, f"{site}-{level.key}")]
            assert (reading.capacity, reading.occupied) == (level.capacity, state.occupied[index])
            assert reading.status is None  # a level's record carries figures, not a status word


async def test_the_table_gives_the_sites_their_names_places_and_levels(sim: Datex2Simulator) -> None:
    async with connected(sim) as adapter:
        batch = await adapter.facilities()
    assert batch.errors == []
    sites = {record.vendor_id: record for record in batch.items}
    assert set(sites) == set(VENDOR_IDS.values())
    hamburg = sites[SITE]
    garage = sim.world.garages[HAMBURG].spec
    assert hamburg.name == garage.name and hamburg.capacity == garage.capacity
    assert hamburg.location == GeoPoint(garage.latitude, garage.longitude)
    assert hamburg.address == Address("Platz der Deutschen Einheit 4", "20457", "Hamburg", "DE")
    assert hamburg.time_zone is None  # DATEX II names an offset at most, never an IANA zone
    assert [(z.vendor_id, z.kind, z.capacity) for z in hamburg.zones] == [
        (f"{SITE}-{level.key}", FacilityKind.LEVEL, level.capacity) for level in garage.levels]


# --- pulling: If-Modified-Since and 304 -------------------------------------------------


async def test_an_unchanged_feed_costs_a_304_per_publication(sim: Datex2Simulator) -> None:
    async with connected(sim) as adapter:
        first = await adapter.occupancy()
        sim.control.reset_stats()
        second = await adapter.occupancy()
    assert sim.control.requests == {STATUS: 1, TABLE: 1}
    sent = {request.url: dict(request.headers) for request in sim.control.recent}
    for path in PUBLICATIONS.values():
        assert "if-modified-since" in sent[path], sent[path]
    assert adapter.status.not_modified == adapter.table.not_modified == 1
    # the kept documents answer: the same figures and times, received anew
    for key, reading in by_key(second.items).items():
        before = by_key(first.items)[key]
        assert (reading.occupied, reading.free, reading.observed_at) == (before.occupied, before.free, before.observed_at)
        assert reading.received_at > before.received_at


async def test_a_change_is_read_afresh(sim: Datex2Simulator, clock: Clock) -> None:
    async with connected(sim) as adapter:
        before = by_key((await adapter.occupancy()).items)
        assert sim.world.enter(HAMBURG, "HH-PG 1", "A")
        clock.tick()
        after = by_key((await adapter.occupancy()).items)
    assert after[(SITE, None)].occupied == before[(SITE, None)].occupied + 1
    assert after[(SITE, f"{SITE}-A")].occupied == before[(SITE, f"{SITE}-A")].occupied + 1
    assert after[(SITE, None)].observed_at == clock.now > before[(SITE, None)].observed_at
    assert adapter.status.not_modified == 0 and adapter.table.not_modified == 1


async def test_a_304_to_an_unconditional_request_is_an_upstream_error() -> None:
    """A publisher (outside parkgate: a fake) that answers 304 before parkgate holds any document."""
    app = Starlette(routes=[Route(path, lambda request: Response(status_code=304)) for path in PUBLICATIONS.values()])
    async with serve(app) as url:
        adapter = Datex2Adapter(spec(url))
        try:
            with pytest.raises(UpstreamError, match="304 to a request that was not conditional"):
                await adapter.occupancy()
        finally:
            await adapter.aclose()


# --- what goes wrong --------------------------------------------------------------------


async def test_an_unreadable_record_costs_only_itself(sim: Datex2Simulator, clock: Clock) -> None:
    sim.platform.override(SITE, numberOfVacantSpaces="viele")
    clock.tick()
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert [(e.record_ref, e.message) for e in batch.errors] == [
        (SITE, "numberOfVacantSpaces 'viele' is not a whole number")]
    readings = by_key(batch.items)
    assert (SITE, None) not in readings
    assert (SITE, f"{SITE}-A") in readings and (VENDOR_IDS[SOUTHBANK], None) in readings


async def test_a_document_that_is_no_such_publication_is_an_upstream_error(sim: Datex2Simulator) -> None:
    table = sim.platform.publication("table").body
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            b"<d2:payload xmlns:d2='http://datex2.eu/schema/3/d2Payload'>&lol2;</d2:payload>")
    cases = [
        (table, "expected a d2:payload of type ParkingStatusPublication, got a d2:payload of type"),
        (b"<html><body>Maintenance</body></html>", "got a 'html' element"),
        (b"{\"status\": \"ok\"}", "not well-formed XML"),
        (bomb, "has a DTD"),
    ]
    async with connected(sim) as adapter:
        for body, message in cases:
            sim.platform.publish_verbatim("status", body)
            with pytest.raises(UpstreamError, match=message) as caught:
                await adapter.occupancy()
            assert type(caught.value) is UpstreamError
        sim.platform.publish_verbatim("status", None)


async def test_faults_of_the_publisher_are_upstream_errors(sim: Datex2Simulator) -> None:
    async with connected(sim) as adapter:
        sim.control.set_fault(FaultMode.DOWN)
        with pytest.raises(UpstreamUnavailable):
            await adapter.occupancy()
        sim.control.set_fault(FaultMode.ERROR)
        with pytest.raises(UpstreamError, match="failed with 500"):
            await adapter.occupancy()
        sim.control.set_fault(FaultMode.OK)
        assert (await adapter.occupancy()).errors == []


# --- configuration ----------------------------------------------------------------------


async def test_publication_urls_and_basic_auth_come_from_the_configuration(sim: Datex2Simulator) -> None:
    async with serve(sim.app) as url:
        # the publications given as absolute URLs (a publisher whose two URLs share nothing), and
        # Basic credentials for one that is not open data
        options = {"table_path": f"{url}{PUBLICATIONS['table']}", "status_path": PUBLICATIONS["status"]}
        nowhere = f"http://127.0.0.1:{free_port()}/datex"  # nothing listens there
        adapter = Datex2Adapter(spec(nowhere, options=options,
                                     credentials={"username": "city", "password": "s3cret"}))
        try:
            # the status path is relative to a base URL where nothing listens: only the table answers
            with pytest.raises(UpstreamError):
                await adapter.occupancy()
            await adapter.facilities()
        finally:
            await adapter.aclose()
    seen = [dict(request.headers) for request in sim.control.recent]
    assert seen and all(headers["authorization"].startswith("Basic ") for headers in seen)
    assert sim.control.requests == {TABLE: 2}
    with pytest.raises(ValueError, match="status_path"):
        Datex2Adapter(spec("http://127.0.0.1:9", options={"status_path": ""}))
    with pytest.raises(ValueError, match="unknown option status_url"):
        Datex2Adapter(spec("http://127.0.0.1:9", options={"status_url": "https://elsewhere.example/status"}))
    with pytest.raises(KeyError, match="password"):
        Datex2Adapter(spec("http://127.0.0.1:9", credentials={"username": "city"}))


def test_publishers_times_are_instants_only_with_their_offset() -> None:
    assert parse_datetime("2026-03-01T10:58:30.25+01:00") == datetime(2026, 3, 1, 9, 58, 30, 250000, tzinfo=UTC)
    assert parse_datetime("2026-03-01T09:58:30Z") == datetime(2026, 3, 1, 9, 58, 30, tzinfo=UTC)
    assert parse_datetime("2026-02-28T24:00:00-05:00") == datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    assert parse_datetime("2026-03-01T10:58:30") is None  # a local time of no known zone is no instant
    assert parse_datetime(None) is None
    for wrong in ("2026-03-01", "01.03.2026 10:58", "2026-02-30T10:00:00Z", "2026-03-01T10:00:00+15:00"):
        with pytest.raises(ValueError):
            parse_datetime(wrong)
    assert format_datetime(datetime(2026, 3, 1, 9, 58, 30, 999, tzinfo=UTC)) == "2026-03-01T09:58:30Z"
