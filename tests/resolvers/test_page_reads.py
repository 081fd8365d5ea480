"""A page of facilities reads its records ahead (resolvers/page_reads.py): each facility's fields
still answer for themselves, a failing or stale source at each facility's own path, and a field
the client may not read costs no vendor call."""

from __future__ import annotations

from gateway.systems import OCCUPANCY
from tests.resolvers.test_facilities import SENSED_FACILITIES, by_id
from tests.support.bed import Bed

PAGE = """{ facilities { edges { node {
  id capacity rates { currency }
  occupancy { served counted { occupied } sensed { occupied freshness } }
} } } }"""
PARCS_CENTRAL = {"berlin-hbf", "berlin-mitte", "berlin-spree-hotel", "hamburg-elbe"}


def edge_of(result: dict) -> dict[str, int]:
    return {edge["node"]["id"]: i for i, edge in enumerate(result["data"]["facilities"]["edges"])}


async def test_a_failing_parcs_nulls_its_own_facilities_fields_at_their_paths(bed: Bed) -> None:
    await bed.fault("parcs-central", "error")
    await bed.clear_cache()  # nothing to fall back on: the failure itself shows
    result = await bed.graphql(PAGE)
    nodes, index = by_id(result), edge_of(result)
    failed = {tuple(e["path"]): e["extensions"]["code"] for e in result["errors"]}
    expected = {}
    for fid in PARCS_CENTRAL:
        base = ("facilities", "edges", index[fid], "node")
        expected[(*base, "capacity")] = expected[(*base, "rates")] = "UPSTREAM_ERROR"
        expected[(*base, "occupancy", "counted")] = "UPSTREAM_ERROR"
        assert nodes[fid]["capacity"] is None and nodes[fid]["rates"] is None
    assert failed == expected
    for fid, node in nodes.items():
        if fid not in PARCS_CENTRAL:  # parcs-london's facilities stand whole
            assert node["capacity"] is not None and node["rates"] is not None
            assert node["occupancy"]["counted"]["occupied"] is not None


async def test_a_stale_source_is_noted_at_every_facility_of_the_page_that_served_it(bed: Bed) -> None:
    await bed.graphql(PAGE)
    await bed.fault("guidance", "down")
    await bed.sandbox.runtime.systems.upstream.invalidate("guidance", OCCUPANCY)  # as if past its TTL
    result = await bed.graphql(PAGE.replace("id capacity", "id __typename capacity"))  # not the cached answer
    nodes, index = by_id(result), edge_of(result)
    stale = {tuple(e["path"]) for e in result["errors"]
             if e["extensions"]["code"] == "UPSTREAM_UNAVAILABLE" and e["extensions"]["stale"] is True}
    assert stale == {("facilities", "edges", index[fid], "node", "occupancy", "sensed") for fid in SENSED_FACILITIES}
    assert len(result["errors"]) == len(stale)
    for fid in SENSED_FACILITIES:
        assert nodes[fid]["occupancy"]["sensed"]["freshness"] == "STALE"
        assert nodes[fid]["occupancy"]["served"] == "COUNTED"


async def test_a_field_the_client_may_not_read_is_not_read_ahead(bed: Bed) -> None:
    query = "{ facilities { edges { node { id rates { currency } } } } }"
    await bed.clear_cache()
    for sim in bed.sandbox.simulators.values():
        sim.control.reset_stats()
    dashboard = await bed.graphql(query, client="dashboard")  # no rates:read
    assert {e["extensions"]["code"] for e in dashboard["errors"]} == {"FORBIDDEN"}
    for system_id in bed.sandbox.simulators:
        assert (await bed.stats(system_id))["total"] == 0, system_id
    driver = await bed.graphql(query, client="driver-app")  # rates:read: now the tariffs are read
    assert "errors" not in driver, driver["errors"]
    for system_id in ("parcs-central", "parcs-london"):
        assert (await bed.stats(system_id))["total"] > 0, system_id
