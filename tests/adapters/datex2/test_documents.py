"""Documents as publishers may send them, not only as our simulator writes them: built from the
schema's optional elements (tests/support/datex2.py), each checked against the v3.7 schemas, then
served by the simulated publisher as they are and read by the adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings

from adapters.base import SystemSpec
from adapters.datex2 import Datex2Adapter
from adapters.datex2.conformance import findings
from adapters.datex2.simulator import Datex2Simulator, create_simulator
from adapters.datex2.wire import STATUS_PUBLICATION, TABLE_PUBLICATION
from adapters.models import (
    Address,
    FacilityKind,
    FacilityRecord,
    GeoPoint,
    OccupancyReading,
    OccupancyStatus,
    SystemKind,
    Trend,
)
from adapters.simulated.world import World
from tests.support.datex2 import Feed, feeds
from tests.support.servers import serve

PUBLISHED_AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
LAST_UPDATED = {
    "2026-03-01T10:58:30.25+01:00": datetime(2026, 3, 1, 9, 58, 30, 250000, tzinfo=UTC),
    "2026-03-01T09:58:30Z": datetime(2026, 3, 1, 9, 58, 30, tzinfo=UTC),
    "2026-03-01T10:58:30": None,  # no offset: the publication's time stands instead
}
EVERYTHING = Feed(
    feed_description=True, header=True, table_name=True, information_manager=True, campus=True, alias="Elbe",
    external_identifier=True, place_last_updated=True, description=True, display=(53.54, 9.98), address=True,
    occupancy_level=True, layout=True, area=True, space=True, extension=True, table_reference=True,
    status_header=True, opening_status="open", status_description=True, queueing_time=True, blurred=True,
    faults=("barrierMalfunction",), override=400, vacant_bounds=True, vehicles=310, percentage=72.5,
    occupancy_graded=True, trend="increasingSlowly", counts_and_rates=True, status_validity=True, status_supply=430,
    demand_table=True, statuses=("almostFull",), full_at_floor=True, declaration_valid_now=True,
    campus_status="enoughSpacesAvailable", area_status=True, space_status=True, prefixes=True)


@pytest.fixture
async def publisher() -> AsyncIterator[tuple[Datex2Simulator, str]]:
    sim = create_simulator(World(seed=1), "open-data", {})
    async with serve(sim.app) as url:
        yield sim, url


async def read(publisher: tuple[Datex2Simulator, str], feed: Feed) -> tuple[list[OccupancyReading], list[FacilityRecord]]:
    """The feed's documents, checked against the schemas, served as they are and read by a fresh adapter."""
    sim, url = publisher
    table, status = feed.table(), feed.status()
    assert findings(table, TABLE_PUBLICATION) == [], feed
    assert findings(status, STATUS_PUBLICATION) == [], feed
    sim.platform.publish_verbatim("table", table)
    sim.platform.publish_verbatim("status", status)
    adapter = Datex2Adapter(SystemSpec(id="open-data", kind=SystemKind.GUIDANCE, dialect="datex2", base_url=url))
    try:
        occupancy, facilities = await adapter.occupancy(), await adapter.facilities()
    finally:
        await adapter.aclose()
    assert occupancy.errors == [] and facilities.errors == [], feed
    return occupancy.items, facilities.items


def expected_status(feed: Feed) -> OccupancyStatus | None:
    """The mapping of adapters/datex2/adapter.py, restated as the spec's words."""
    if feed.opening_status in ("closed", "temporarilyClosed"):
        return OccupancyStatus.CLOSED
    if "erroneousOccupancyInformation" in feed.faults:
        return OccupancyStatus.UNKNOWN
    said = set(feed.statuses)
    if said & {"full", "overcrowding"}:
        return OccupancyStatus.FULL
    if "almostFull" in said:
        return OccupancyStatus.ALMOST_FULL
    if "spacesAvailable" in said:
        return OccupancyStatus.SPACES_AVAILABLE
    if said:
        return OccupancyStatus.UNKNOWN
    return OccupancyStatus.OPEN if feed.opening_status in ("open", "openWithServiceLimitation") else None


def check(feed: Feed, readings: list[OccupancyReading], facilities: list[FacilityRecord]) -> None:
    by_key = {(r.vendor_facility_id, r.zone_id): r for r in readings}
    expected_keys = {("P1", None)}
    if feed.level and feed.level_status:
        expected_keys.add(("P1", "S1"))  # a level stands under its place
    if feed.area and feed.area_status:
        expected_keys.add(("P1", "A1"))
    if feed.campus and feed.campus_status:
        expected_keys.add(("C1", None))  # a campus is a site of its own; a place under it too
    assert set(by_key) == expected_keys, feed  # a single space's status is no site's or level's
    place = by_key[("P1", None)]
    capacity = next((c for c in (feed.override, feed.status_supply, feed.supply) if c is not None), None)
    assert place.capacity == capacity
    assert place.occupied == (feed.occupied if feed.occupied is not None else feed.vehicles)
    assert place.free == feed.vacant
    assert place.observed_at == (LAST_UPDATED.get(feed.last_updated or "") or PUBLISHED_AT)
    assert place.status == expected_status(feed)
    assert place.trend == {"increasing": Trend.FILLING, "increasingQuickly": Trend.FILLING,
                           "increasingSlowly": Trend.FILLING, "decreasing": Trend.EMPTYING,
                           "decreasingSlowly": Trend.EMPTYING, "stable": Trend.STEADY}.get(feed.trend or "", Trend.UNKNOWN)
    if ("P1", "S1") in by_key:
        level = by_key[("P1", "S1")]
        assert (level.capacity, level.occupied, level.free) == (feed.level_supply, 120, 100)
        assert level.observed_at == PUBLISHED_AT  # its record has no lastUpdated
    sites = {record.vendor_id: record for record in facilities}
    assert set(sites) == ({"P1", "C1"} if feed.campus else {"P1"})
    site = sites["P1"]
    names = dict(feed.names)
    assert site.name == (names.get(feed.lang) or next(iter(names.values()), None) or feed.alias or "P1")
    assert site.location == (GeoPoint(*feed.point) if feed.point else GeoPoint(*feed.display) if feed.display else None)
    assert site.address == (Address("Platz der Deutschen Einheit 4", "20457", "Hamburg", "DE") if feed.address else None)
    assert site.capacity == feed.supply and site.version == 3
    zones = [(z.vendor_id, z.kind) for z in site.zones]
    assert zones == [z for z, present in ((("S1", FacilityKind.LEVEL), feed.level), (("A1", FacilityKind.ZONE), feed.area))
                     if present]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(feed=feeds())
async def test_the_adapter_reads_any_choice_of_the_optional_elements(publisher: tuple[Datex2Simulator, str],
                                                                     feed: Feed) -> None:
    check(feed, *await read(publisher, feed))


@pytest.mark.parametrize("feed", [
    pytest.param(Feed(), id="figures-and-times"),
    pytest.param(EVERYTHING, id="every-optional-element-unusual-prefixes"),
    pytest.param(replace(EVERYTHING, prefixes=False, override=None, status_supply=None, occupied=None, vacant=None,
                         opening_status="closed", last_updated="2026-03-01T10:58:30"), id="vehicles-only-and-closed"),
    pytest.param(Feed(names=(), alias=None, point=None, supply=None, last_updated=None, occupied=None, vacant=None,
                      level=False), id="bare-minimum"),
])
async def test_documents_publishers_send(publisher: tuple[Datex2Simulator, str], feed: Feed) -> None:
    check(feed, *await read(publisher, feed))


async def test_everything_a_rich_publication_says_is_mapped(publisher: tuple[Datex2Simulator, str]) -> None:
    """The every-optional-element document, spelled out."""
    readings, facilities = await read(publisher, EVERYTHING)
    place = next(r for r in readings if (r.vendor_facility_id, r.zone_id) == ("P1", None))
    assert (place.capacity, place.occupied, place.free) == (400, 313, 120)  # numberOfSpacesOverride wins
    assert place.observed_at == datetime(2026, 3, 1, 9, 58, 30, 250000, tzinfo=UTC)
    assert (place.status, place.trend) == (OccupancyStatus.ALMOST_FULL, Trend.FILLING)
    campus = next(r for r in readings if r.vendor_facility_id == "C1")
    assert campus.status is OccupancyStatus.SPACES_AVAILABLE and campus.occupied is None
    site = next(f for f in facilities if f.vendor_id == "P1")
    assert site.name == "Elbgarage"  # the publication's language (de), of the two names given
    assert site.location == GeoPoint(53.5413, 9.9841)  # pointByCoordinates before coordinatesForDisplay
