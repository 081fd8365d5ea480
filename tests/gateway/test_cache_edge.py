"""The cache as clients meet it: stale answers while a vendor is down, no leaks across clients,
one vendor call for a burst, persisted queries and HTTP caching."""

from __future__ import annotations

import asyncio
import hashlib

import orjson

from gateway.systems import OCCUPANCY as OCCUPANCY_RESOURCE
from tests.support.bed import TEST_OCCUPANCY_TTL_S, Bed

OCCUPANCY = '{ facility(id: "berlin-hbf") { occupancy { served freshness counted { occupied } sensed { occupied freshness ageSeconds } } } }'


async def ask(bed: Bed, key: str, query: str, **extra: object) -> dict:
    response = await bed.http.post(f"{bed.url}/graphql", json={"query": query, **extra},
                                   headers={"authorization": f"Bearer {key}"})
    return response.json()


async def test_a_down_system_is_served_stale_with_its_age_and_an_error(bed: Bed) -> None:
    fresh = await bed.graphql(OCCUPANCY)
    assert fresh["data"]["facility"]["occupancy"]["sensed"]["freshness"] == "LIVE"
    await bed.fault("guidance", "down")
    # As if the TTL had passed: the next read asks the vendor, and falls back to this answer.
    await bed.sandbox.runtime.systems.upstream.invalidate("guidance", OCCUPANCY_RESOURCE)
    stale = await bed.graphql(OCCUPANCY.replace("served", "served __typename"))  # not the cached answer
    occupancy = stale["data"]["facility"]["occupancy"]
    assert occupancy["sensed"]["freshness"] == "STALE" and occupancy["sensed"]["occupied"] is not None
    assert occupancy["sensed"]["ageSeconds"] >= 0
    assert occupancy["served"] == "COUNTED"  # the live figure is preferred over a stale one
    [error] = stale["errors"]
    assert error["path"] == ["facility", "occupancy", "sensed"]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE" and error["extensions"]["stale"] is True
    sources = await bed.graphql("{ sources { id status } }")
    assert {s["id"]: s["status"] for s in sources["data"]["sources"]}["guidance"] == "DOWN"


async def test_past_its_ttl_a_down_system_is_revalidated_then_served_stale_with_the_error(bed: Bed) -> None:
    await bed.graphql(OCCUPANCY)
    await bed.fault("guidance", "down")
    await asyncio.sleep(TEST_OCCUPANCY_TTL_S + 0.2)
    revalidating = await bed.graphql(OCCUPANCY.replace("served", "served id: __typename"))
    sensed = revalidating["data"]["facility"]["occupancy"]["sensed"]
    assert sensed["occupied"] is not None and sensed["freshness"] == "LIVE"  # served at once, refresh under way
    await asyncio.sleep(0.3)  # the background refresh has failed by now
    stale = await bed.graphql(OCCUPANCY.replace("served", "served again: __typename"))
    assert stale["data"]["facility"]["occupancy"]["sensed"]["freshness"] == "STALE"
    assert stale["data"]["facility"]["occupancy"]["sensed"]["ageSeconds"] >= TEST_OCCUPANCY_TTL_S
    assert [(e["path"][-1], e["extensions"]["code"], e["extensions"]["stale"]) for e in stale["errors"]] == [
        ("sensed", "UPSTREAM_UNAVAILABLE", True)]
    again = await bed.graphql(OCCUPANCY.replace("served", "served again: __typename"))
    assert again.get("errors"), "an answer with stale data is never reused from the response cache"


async def test_clients_with_different_access_never_see_each_others_data_through_the_cache(bed: Bed) -> None:
    query = "{ facilities { totalCount edges { node { id occupancy { free } rates { currency } } } } }"
    driver = await ask(bed, bed.key("driver-app"), query)
    assert driver["data"]["facilities"]["totalCount"] == 6 and "errors" not in driver
    for sim in bed.sandbox.simulators.values():
        sim.control.reset_stats()
    dashboard = await ask(bed, bed.key("dashboard"), query)  # no rates:read
    hotel = await ask(bed, bed.key("hotel-pms-spree"), query)  # one facility, no rates:read
    assert all(edge["node"]["rates"] is None for edge in dashboard["data"]["facilities"]["edges"])
    assert {e["extensions"]["code"] for e in dashboard["errors"]} == {"FORBIDDEN"}
    assert [e["node"]["id"] for e in hotel["data"]["facilities"]["edges"]] == ["berlin-spree-hotel"]
    assert hotel["data"]["facilities"]["totalCount"] == 1
    # ... and yet the vendors were not asked again: the upstream cache is shared, permissions apply after it.
    for system_id in ("parcs-central", "parcs-london", "guidance"):
        assert (await bed.stats(system_id))["total"] == 0, system_id


async def test_a_burst_of_500_identical_queries_costs_one_call_per_system_resource(bed: Bed) -> None:
    # a client of its own, with room for bursts (the demo clients share their windows across tests)
    _, key = await bed.new_client(["facilities:read", "occupancy:read", "rates:read"],
                                  overrides={"requests": 100000, "cost": 10000000})
    query = "{ facilities { edges { node { id occupancy { free } rates { currency } } } } }"
    await ask(bed, key, "{ sources { id } }")  # warm the sensor system's OAuth token: that is not a data call
    for sim in bed.sandbox.simulators.values():
        sim.control.reset_stats()
    answers = await asyncio.gather(*(ask(bed, key, query) for _ in range(500)))
    assert all("errors" not in a and len(a["data"]["facilities"]["edges"]) == 6 for a in answers)
    for system_id in ("parcs-central", "parcs-london", "guidance"):
        by_endpoint = (await bed.stats(system_id))["by_endpoint"]
        assert by_endpoint and all(count == 1 for count in by_endpoint.values()), (system_id, by_endpoint)


async def test_the_response_cache_reuses_whole_answers_per_permission_signature(bed: Bed) -> None:
    responses = bed.endpoint().responses
    hits = responses.hits
    query = '{ facility(id: "berlin-mitte") { name occupancy { free } } }'
    first = await bed.graphql(query, client="dashboard")
    second = await bed.graphql(query, client="dashboard")
    assert first["data"] == second["data"] and responses.hits == hits + 1
    admin = await bed.graphql(query)  # another signature: its own entry, not the dashboard's
    assert admin["data"] == first["data"] and responses.hits == hits + 1
    uncached = await bed.graphql("{ rateLimit { remaining } }", client="dashboard")
    again = await bed.graphql("{ rateLimit { remaining } }", client="dashboard")
    assert again["data"]["rateLimit"]["remaining"] < uncached["data"]["rateLimit"]["remaining"]  # never reused


async def test_automatic_persisted_queries(bed: Bed) -> None:
    key = bed.key("dashboard")
    query = '{ facility(id: "berlin-hbf") { name } }'
    digest = hashlib.sha256(query.encode()).hexdigest()
    apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    unknown = await ask(bed, key, None, extensions=apq)  # type: ignore[arg-type]
    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert unknown["errors"][0]["message"] == "PersistedQueryNotFound"
    registered = await ask(bed, key, query, extensions=apq)
    assert registered["data"]["facility"]["name"] == "Hauptbahnhof Garage"
    by_hash = await ask(bed, key, None, extensions=apq)  # type: ignore[arg-type]
    assert by_hash["data"] == registered["data"]
    wrong = await ask(bed, key, query, extensions={"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}})
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    get = await bed.http.get(f"{bed.url}/graphql", params={"extensions": orjson.dumps(apq).decode()},
                             headers={"authorization": f"Bearer {key}"})
    assert get.status_code == 200 and get.json()["data"] == registered["data"]


async def test_get_answers_carry_cache_control_and_an_etag(bed: Bed) -> None:
    headers = bed.auth("dashboard")
    params = {"query": '{ facility(id: "berlin-hbf") { name occupancy { free } } }'}
    first = await bed.http.get(f"{bed.url}/graphql", params=params, headers=headers)
    assert first.headers["cache-control"] == "private, max-age=10"  # occupancy: the smallest maxAge wins
    assert "Authorization" in first.headers["vary"]
    etag = first.headers["etag"]
    again = await bed.http.get(f"{bed.url}/graphql", params=params, headers={**headers, "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    names = await bed.http.get(f"{bed.url}/graphql", params={"query": "{ facilities { totalCount } }"}, headers=headers)
    assert names.headers["cache-control"] == "private, max-age=10"
    never = await bed.http.get(f"{bed.url}/graphql", params={"query": "{ rateLimit { remaining } }"}, headers=headers)
    assert never.headers["cache-control"] == "no-store"
    post = await bed.http.post(f"{bed.url}/graphql", json=params, headers=headers)
    assert post.headers["cache-control"] == "no-store"
