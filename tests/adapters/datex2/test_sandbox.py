"""The sandbox's open-data platform (`open-data`, dialect datex2) end to end: listed with its standard
and publications, serving conforming documents, and merged into the facilities it covers next to
their PARCS, through the GraphQL API over real HTTP."""

from __future__ import annotations

from datetime import datetime

from adapters.datex2 import Datex2Adapter
from adapters.datex2.conformance import findings
from adapters.datex2.reading import StatusRecord
from adapters.datex2.simulator import VENDOR_IDS, Datex2Simulator
from adapters.datex2.wire import STATUS_PUBLICATION, TABLE_PUBLICATION
from tests.support.bed import Bed
from tests.support.waiting import wait_until

SYSTEM = "open-data"
#: the garages the platform covers, and the PARCS that counts each of them
COVERED = {"hamburg-elbe": "parcs-central", "london-southbank": "parcs-london"}
QUERY = """
query($id: ID!) { facility(id: $id) {
  occupancy {
    served occupied capacity observedAt discrepancy
    counted { source occupied }
    sensed { source occupied free reportedFree capacity status trend observedAt freshness }
  }
  levels { id occupancy { sensed { source occupied capacity } } }
  sources { id kind dialect externalId }
} }
"""


def platform(bed: Bed) -> Datex2Simulator:
    sim = bed.sandbox.simulators[SYSTEM]
    assert isinstance(sim, Datex2Simulator)
    return sim


def published(bed: Bed, reference: str) -> StatusRecord:
    """The status record the gateway's adapter last read for `reference`."""
    adapter = bed.sandbox.runtime.systems.adapter(SYSTEM)
    assert isinstance(adapter, Datex2Adapter) and adapter.status.kept is not None
    return next(r for r in adapter.status.kept.document.records if r.reference == reference)


async def test_the_sandbox_lists_the_platform_with_its_standard_and_publications(bed: Bed) -> None:
    systems = {s["id"]: s for s in (await bed.http.get(f"{bed.url}/sandbox/systems")).json()["systems"]}
    listed = systems[SYSTEM]
    assert listed["kind"] == "GUIDANCE" and listed["dialect"] == "datex2"
    assert listed["standard"] == {"name": "DATEX II", "version": "3.7"}
    assert listed["credentials"] == {}  # open data
    assert set(listed["publications"]) == {"table", "status"}
    assert all("publications" not in s for system_id, s in systems.items() if system_id != SYSTEM)
    for name, expected in (("table", TABLE_PUBLICATION), ("status", STATUS_PUBLICATION)):
        response = await bed.http.get(listed["publications"][name])
        assert response.status_code == 200 and "last-modified" in response.headers
        assert findings(response.content, expected) == []


async def test_each_covered_facility_shows_counted_and_sensed(bed: Bed) -> None:
    for facility_id, parcs in COVERED.items():
        result = await bed.graphql(QUERY, {"id": facility_id})
        assert "errors" not in result, result["errors"]
        facility = result["data"]["facility"]
        occupancy, state = facility["occupancy"], bed.sandbox.world.snapshot(facility_id)
        counted, sensed = occupancy["counted"], occupancy["sensed"]
        assert counted["source"] == parcs and sensed["source"] == SYSTEM
        assert occupancy["served"] == "SENSED" and occupancy["occupied"] == sensed["occupied"]
        assert occupancy["discrepancy"] == counted["occupied"] - sensed["occupied"]
        assert sensed["capacity"] == state.spec.capacity
        assert sensed["occupied"] == published(bed, VENDOR_IDS[facility_id]).occupied  # what the platform said
        assert sensed["reportedFree"] == sensed["capacity"] - sensed["occupied"]  # numberOfVacantSpaces, as sent
        assert sensed["status"] in ("SPACES_AVAILABLE", "ALMOST_FULL", "FULL")
        assert sensed["observedAt"] is not None and sensed["freshness"] == "LIVE"
        levels = {level["id"]: level["occupancy"]["sensed"] for level in facility["levels"]}
        assert set(levels) == {f"{facility_id}:{level.key}" for level in state.spec.levels}
        assert all(level["source"] == SYSTEM for level in levels.values())
        assert sum(level["occupied"] for level in levels.values()) == sensed["occupied"]
        sources = {s["id"]: s for s in facility["sources"]}
        assert sources[SYSTEM] == {"id": SYSTEM, "kind": "GUIDANCE", "dialect": "datex2",
                                   "externalId": VENDOR_IDS[facility_id]}


async def test_observed_at_is_the_publications_own_time(bed: Bed) -> None:
    await bed.clear_cache()
    result = await bed.graphql(QUERY, {"id": "hamburg-elbe"})
    observed = datetime.fromisoformat(result["data"]["facility"]["occupancy"]["sensed"]["observedAt"])
    # the lastUpdated of the record read, never the gateway's clock
    assert observed == published(bed, VENDOR_IDS["hamburg-elbe"]).last_updated


async def test_the_platform_down_leaves_the_counted_figure(bed: Bed) -> None:
    await bed.fault(SYSTEM, "down")
    await bed.clear_cache()
    result = await bed.graphql(QUERY, {"id": "hamburg-elbe"})
    occupancy = result["data"]["facility"]["occupancy"]
    assert occupancy["sensed"] is None and occupancy["served"] == "COUNTED"
    assert occupancy["counted"]["occupied"] is not None
    errors = {tuple(e["path"]): e["extensions"] for e in result["errors"]}
    assert errors[("facility", "occupancy", "sensed")]["code"] == "UPSTREAM_UNAVAILABLE"
    assert errors[("facility", "occupancy", "sensed")]["system"] == SYSTEM


async def test_an_unreadable_record_is_an_error_at_its_facility_only(bed: Bed) -> None:
    publisher = platform(bed).platform
    publisher.override(VENDOR_IDS["hamburg-elbe"], numberOfOccupiedSpaces="n/a")
    try:
        await wait_until(lambda: b">n/a<" in publisher.current_status().body, 3.0)
        await bed.clear_cache()
        hamburg = await bed.graphql(QUERY, {"id": "hamburg-elbe"})
        southbank = await bed.graphql(QUERY, {"id": "london-southbank"})
    finally:
        publisher.clear_overrides()
        await wait_until(lambda: b">n/a<" not in publisher.current_status().body, 3.0)
    assert hamburg["data"]["facility"]["occupancy"]["sensed"] is None
    assert hamburg["data"]["facility"]["occupancy"]["counted"]["occupied"] is not None
    [error] = [e for e in hamburg["errors"] if e["path"] == ["facility", "occupancy", "sensed"]]
    assert error["extensions"]["code"] == "UPSTREAM_ERROR"
    assert "numberOfOccupiedSpaces 'n/a' is not a whole number" in error["message"]
    assert "errors" not in southbank and southbank["data"]["facility"]["occupancy"]["sensed"]["source"] == SYSTEM
