"""The federated read API against the sandbox's simulated vendors, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.bed import Bed

FACILITIES = """
query {
  facilities(first: 20) {
    totalCount
    edges { cursor node {
      id name city timeZone capacity
      address { street city country }
      location { latitude longitude }
      levels { id name capacity occupancy { occupied served sensed { occupied source } } }
      occupancy {
        capacity occupied free percentOccupied status observedAt receivedAt freshness ageSeconds served discrepancy
        counted { source occupied free reportedFree consistency observedAt entries exits }
        sensed { source occupied free observedAt }
      }
      rates { currency lines { kind description amount { amount currency } periodMinutes upToMinutes } }
      enforcement { zoneId zoneName citationsToday }
      hotel { name guests { inHouse inHouseWithCar arrivalsToday departuresToday } }
      sources { id kind dialect status externalId }
    } }
  }
}
"""

#: the system that senses each facility: the bay sensors, or the open-data platform's DATEX II feed
SENSED_BY = {"berlin-hbf": "guidance", "berlin-mitte": "guidance", "berlin-spree-hotel": "guidance",
             "london-kings-cross": "guidance", "hamburg-elbe": "open-data", "london-southbank": "open-data"}
SENSED_FACILITIES = {fid for fid, system in SENSED_BY.items() if system == "guidance"}


def by_id(result: dict) -> dict[str, dict]:
    return {edge["node"]["id"]: edge["node"] for edge in result["data"]["facilities"]["edges"]}


async def test_every_facility_merges_both_parcs_and_the_sensors(bed: Bed) -> None:
    result = await bed.graphql(FACILITIES)
    assert "errors" not in result, result.get("errors")
    nodes = by_id(result)
    assert result["data"]["facilities"]["totalCount"] == 6 == len(nodes)
    assert {n["city"] for n in nodes.values()} == {"Berlin", "Hamburg", "London"}
    assert {n["timeZone"] for n in nodes.values()} == {"Europe/Berlin", "Europe/London"}
    for fid, node in nodes.items():
        occupancy = node["occupancy"]
        counted = occupancy["counted"]
        assert counted["source"] == ("parcs-london" if fid.startswith("london") else "parcs-central")
        assert counted["occupied"] is not None and node["capacity"] > 0
        assert 0 <= occupancy["free"] <= occupancy["capacity"]
        assert occupancy["sensed"]["source"] == SENSED_BY[fid]
        assert occupancy["served"] == "SENSED"
        assert occupancy["discrepancy"] == counted["occupied"] - occupancy["sensed"]["occupied"]
        assert sum(level["occupancy"]["occupied"] for level in node["levels"]) == occupancy["sensed"]["occupied"]
        assert node["rates"]["lines"], fid
        assert {s["id"] for s in node["sources"]} >= {counted["source"]}


async def test_vendor_quirks_are_normalized(bed: Bed) -> None:
    nodes = by_id(await bed.graphql(FACILITIES))
    # ParkLine reports no free count at all: the gateway derives it and says it was not reported.
    kings_cross = nodes["london-kings-cross"]["occupancy"]["counted"]
    assert kings_cross["reportedFree"] is None and kings_cross["free"] is not None
    # The Hamburg counter controller has no clock: observedAt stays null, never invented. The
    # figure served is the open-data platform's, stamped by its DATEX II publication.
    hamburg = nodes["hamburg-elbe"]["occupancy"]
    assert hamburg["counted"]["observedAt"] is None
    assert hamburg["served"] == "SENSED" and hamburg["observedAt"] == hamburg["sensed"]["observedAt"] is not None
    assert hamburg["freshness"] == "LIVE" and hamburg["receivedAt"] is not None
    # Hotel and enforcement parts come from their own systems.
    assert nodes["berlin-spree-hotel"]["hotel"]["name"] == "Spree Hotel Berlin"
    assert nodes["london-southbank"]["hotel"]["name"] == "Thames Hotel London"
    assert nodes["berlin-hbf"]["enforcement"]["zoneId"] == "10"
    assert nodes["london-kings-cross"]["enforcement"] is None


async def test_a_counter_past_capacity_is_flagged_not_hidden(bed: Bed) -> None:
    # APDS reports the counted demand and the supply, no free count: a drifting gate counter shows
    # as more cars counted than there are spaces.
    apds = bed.sandbox.simulators["parcs-central"]
    place = "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e02"
    capacity = bed.sandbox.world.garages["berlin-mitte"].spec.capacity
    apds.state.demand_overrides[place] = {"count": capacity + 4}
    try:
        nodes = by_id(await bed.graphql(FACILITIES))
    finally:
        apds.state.demand_overrides.clear()
    counted = nodes["berlin-mitte"]["occupancy"]["counted"]
    assert counted["occupied"] == capacity + 4 and counted["reportedFree"] is None
    assert set(counted["consistency"]) >= {"OVER_CAPACITY"}
    assert counted["free"] == 0


async def test_guidance_down_leaves_parcs_data_intact(bed: Bed) -> None:
    await bed.fault("guidance", "down")
    result = await bed.graphql(FACILITIES)
    nodes = by_id(result)
    errors = result["errors"]
    sensed_paths = {tuple(e["path"]) for e in errors if e["path"][-1] == "sensed"}
    assert len(sensed_paths) == len(SENSED_FACILITIES)
    for error in errors:
        assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE", error
        assert error["extensions"]["system"] == "guidance"
    for fid, node in nodes.items():
        assert node["occupancy"]["counted"]["occupied"] is not None
        if fid in SENSED_FACILITIES:
            assert node["occupancy"]["served"] == "COUNTED"
            assert node["occupancy"]["sensed"] is None
        else:  # sensed by the open-data platform, which is up
            assert node["occupancy"]["sensed"]["source"] == "open-data"
        assert node["rates"] is not None
    sources = {s["id"]: s["status"] for s in nodes["berlin-hbf"]["sources"]}
    result = await bed.graphql("{ sources { id status lastError } }")
    status = {s["id"]: s for s in result["data"]["sources"]}
    assert status["guidance"]["status"] == "DOWN" and "UPSTREAM_UNAVAILABLE" in status["guidance"]["lastError"]
    assert status["parcs-central"]["status"] == "UP"
    assert sources["parcs-central"] in ("UP", "UNKNOWN")


async def test_slow_and_failing_systems_get_their_own_codes(bed: Bed) -> None:
    query = '{ facility(id: "berlin-hbf") { name occupancy { counted { occupied } sensed { occupied } } rates { currency } } }'
    await bed.fault("guidance", "slow", delay_ms=1500)
    result = await bed.graphql(query)
    assert [e["extensions"]["code"] for e in result["errors"]] == ["UPSTREAM_TIMEOUT"]
    assert result["data"]["facility"]["occupancy"]["counted"]["occupied"] is not None
    await bed.fault("guidance", "ok")
    await bed.fault("parcs-central", "error")
    await bed.clear_cache()  # nothing to fall back on: the failure itself shows
    result = await bed.graphql(query)
    codes = {tuple(e["path"]): e["extensions"]["code"] for e in result["errors"]}
    assert codes == {("facility", "occupancy", "counted"): "UPSTREAM_ERROR", ("facility", "rates"): "UPSTREAM_ERROR"}
    facility = result["data"]["facility"]
    assert facility["name"] == "Hauptbahnhof Garage" and facility["occupancy"]["sensed"]["occupied"] is not None


async def test_every_system_down_nulls_the_occupancy_itself(bed: Bed) -> None:
    await bed.fault("guidance", "down")
    await bed.fault("parcs-central", "down")
    result = await bed.graphql('{ facility(id: "berlin-mitte") { id occupancy { free } } }')
    assert result["data"]["facility"] == {"id": "berlin-mitte", "occupancy": None}
    assert result["errors"][0]["path"] == ["facility", "occupancy"]
    assert result["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"


async def test_one_call_per_system_and_resource_however_many_facilities(bed: Bed) -> None:
    start = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    end = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
    query = FACILITIES.replace("sources {", f'quote(start: "{start}", end: "{end}") {{ price {{ amount }} }} sources {{')
    await bed.graphql(query)  # warm up: token fetches and the like
    await bed.clear_cache()
    for sim in bed.sandbox.simulators.values():
        sim.control.reset_stats()
    result = await bed.graphql(query)
    assert "errors" not in result, result["errors"]
    assert all(e["node"]["quote"]["price"] for e in result["data"]["facilities"]["edges"])
    for system_id in bed.sandbox.simulators:
        by_endpoint = (await bed.stats(system_id))["by_endpoint"]
        assert by_endpoint, system_id
        # Each resource is a single page at the adapters' default page sizes: one call each, except
        # quotes where the vendor prices one car park per call (ParkLine's /price, APDS's QuoteRightRequest:
        # two and four facilities), APDS's places, which hold both the descriptions and the occupancy,
        # and Mews reservations, asked for per hotel (a 2023-06-06 Reservation does not name its hotel).
        per_call = {"GET /apds/v1/places": 2, "POST /apds/v1/quotes": 4}
        for endpoint, count in by_endpoint.items():
            expected = 2 if endpoint.endswith(("/price", "/getAll/2023-06-06")) else per_call.get(endpoint, 1)
            assert count == expected, (system_id, endpoint, count)


async def test_paging_is_relay_style(bed: Bed) -> None:
    query = "query($after: String) { facilities(first: 4, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { id } } } }"
    first = (await bed.graphql(query))["data"]["facilities"]
    assert first["totalCount"] == 6 and len(first["edges"]) == 4
    assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
    second = (await bed.graphql(query, {"after": first["pageInfo"]["endCursor"]}))["data"]["facilities"]
    assert len(second["edges"]) == 2 and not second["pageInfo"]["hasNextPage"] and second["pageInfo"]["hasPreviousPage"]
    ids = [e["node"]["id"] for e in first["edges"] + second["edges"]]
    assert len(set(ids)) == 6


async def test_bad_paging_arguments_are_user_errors(bed: Bed) -> None:
    for arguments in ('first: 101', 'first: -1', 'after: "bm9wZQ"', 'after: "%%%"'):
        result = await bed.graphql(f"{{ facilities({arguments}) {{ totalCount }} }}")
        assert result["data"] == {"facilities": None}
        assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", arguments


async def test_filters(bed: Bed) -> None:
    async def ids(filter_: str) -> set[str]:
        result = await bed.graphql(f"{{ facilities(filter: {filter_}) {{ totalCount edges {{ node {{ id }} }} }} }}")
        connection = result["data"]["facilities"]
        assert connection["totalCount"] == len(connection["edges"])
        return {e["node"]["id"] for e in connection["edges"]}

    assert await ids('{city: "berlin"}') == {"berlin-hbf", "berlin-mitte", "berlin-spree-hotel"}
    assert await ids("{near: {latitude: 52.5251, longitude: 13.3694, radiusMeters: 1500}}") == {"berlin-hbf", "berlin-spree-hotel"}
    assert await ids('{city: "London", near: {latitude: 52.5251, longitude: 13.3694, radiusMeters: 1500}}') == set()
    free = await ids("{hasFreeSpaces: true}")
    full = await ids("{hasFreeSpaces: false}")
    assert free | full == set(bed.sandbox.config.facilities) and not free & full
    result = await bed.graphql("{ facilities(filter: {near: {latitude: 95, longitude: 0, radiusMeters: 10}}) { totalCount } }")
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_facility_by_id_and_quotes(bed: Bed) -> None:
    result = await bed.graphql('{ facility(id: "nowhere") { id } }')
    assert result["data"] == {"facility": None} and "errors" not in result
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    query = "query($s: DateTime!, $e: DateTime!) { facility(id: \"berlin-hbf\") { quote(start: $s, end: $e) { available price { amount currency } durationMinutes expiresAt } } }"
    quote = (await bed.graphql(query, {"s": start.isoformat(), "e": (start + timedelta(hours=2)).isoformat()}))
    assert quote["data"]["facility"]["quote"]["available"] is True
    assert quote["data"]["facility"]["quote"]["price"]["currency"] == "EUR"
    assert quote["data"]["facility"]["quote"]["durationMinutes"] == 120
    for s, e in ((start, start - timedelta(hours=1)), (start, start + timedelta(days=40)),
                 (start - timedelta(days=2), start)):
        result = await bed.graphql(query, {"s": s.isoformat(), "e": e.isoformat()})
        assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (s, e)
    naive = await bed.graphql(query, {"s": start.replace(tzinfo=None).isoformat(), "e": (start + timedelta(hours=1)).isoformat()})
    assert naive["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
