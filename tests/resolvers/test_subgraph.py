"""Subgraph mode (resolvers/subgraph.py, resolvers/entities.py) against the sandbox run with `--subgraph`,
over real HTTP: the SDL a router composes, and `_entities` held to the scopes, tenancy, loaders and cost
of the lookups by id. The real router in front of it is in tests/e2e/test_federation.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from graphql import build_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ErrorCode
from resolvers.schema import sdl as standalone_sdl
from tests.support import idempotency_key
from tests.support.bed import Bed
from tests.support.subgraph import subgraph_bed

ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { __typename ...F ...R ...P ...C } }"
FRAGMENTS = """
fragment F on Facility { id name occupancy { free served counted { occupied } sensed { occupied } } rates { currency } }
fragment R on Reservation { id facilityId status start end }
fragment P on Permit { id facilityId permitStatus: status validFrom }
fragment C on Citation { number violationCode citationStatus: status }
"""
FACILITY_FIELDS = "id name occupancy { free served counted { occupied } sensed { occupied } } rates { currency }"
ALL_FACILITIES = ["berlin-hbf", "berlin-mitte", "berlin-spree-hotel", "london-kings-cross", "hamburg-elbe",
                  "london-southbank"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sub() -> AsyncIterator[Bed]:
    async with subgraph_bed() as bed:
        yield bed


def facility_refs(ids: list[str]) -> list[dict[str, str]]:
    return [{"__typename": "Facility", "id": facility_id} for facility_id in ids]


async def entities(bed: Bed, representations: list[Any], client: str = "admin") -> dict[str, Any]:
    return await bed.graphql(ENTITIES + FRAGMENTS, {"r": representations}, client=client)


def codes(result: dict[str, Any]) -> dict[tuple[Any, ...], str]:
    return {tuple(e["path"]): e["extensions"]["code"] for e in result.get("errors", [])}


async def reset_counts(bed: Bed) -> None:
    await bed.clear_cache()
    for sim in bed.sandbox.simulators.values():
        sim.control.reset_stats()


async def calls(bed: Bed) -> dict[str, dict[str, int]]:
    return {system_id: (await bed.stats(system_id))["by_endpoint"] for system_id in bed.sandbox.simulators}


async def test_service_sdl_declares_the_entities_and_leaves_the_standalone_schema_alone(sub: Bed) -> None:
    sdl = (await sub.graphql("{ _service { sdl } }"))["data"]["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2.5"' in sdl
    for type_, key in (("Facility", "id"), ("Reservation", "id"), ("Permit", "id"), ("Citation", "number")):
        assert f'type {type_} @key(fields: "{key}"' in sdl, type_
    assert "type Money @shareable" in sdl and "type PageInfo @shareable" in sdl
    assert 'occupancy: Occupancy @requiresScopes(scopes: [["occupancy:read"]])' in sdl
    assert '@requiresScopes(scopes: [["admin"]]) @listSize(assumedSize: 50) @inaccessible' in sdl  # clients
    federated = build_schema(sdl, assume_valid_sdl=True)
    assert federated.query_type is not None and "_entities" in federated.query_type.fields
    # The standalone contract is untouched by the subgraph's build (same process, same definitions).
    committed = (Path(__file__).parents[2] / "schema.graphql").read_text(encoding="utf-8")
    assert standalone_sdl() == committed
    assert "@key" not in committed and "_entities" not in committed


async def test_a_facility_reference_reads_like_the_facility_lookup(sub: Bed) -> None:
    looked_up = (await sub.graphql(f'{{ facility(id: "berlin-hbf") {{ {FACILITY_FIELDS} }} }}'))["data"]["facility"]
    result = await entities(sub, facility_refs(["berlin-hbf"]))
    assert "errors" not in result, result
    [entity] = result["data"]["_entities"]
    assert entity.pop("__typename") == "Facility"
    assert entity["id"] == looked_up["id"] and entity["name"] == looked_up["name"]
    assert entity["rates"] == looked_up["rates"] and entity["occupancy"]["served"] == looked_up["occupancy"]["served"]


async def test_500_facility_references_cost_one_vendor_call_per_system_and_resource(sub: Bed) -> None:
    listed = f"{{ facilities(first: 100) {{ edges {{ node {{ {FACILITY_FIELDS} }} }} }} }}"
    assert "errors" not in await sub.graphql(listed)  # warm up: token fetches and the like
    by_list: Any = None
    for _ in range(5):  # until one list costs what the one before cost: the gateway's start-up calls
        await reset_counts(sub)  # (the APDS webhook subscription, its catalog) may land after the warm-up
        assert "errors" not in await sub.graphql(listed)
        previous, by_list = by_list, await calls(sub)
        if by_list == previous:
            break
    representations = facility_refs([ALL_FACILITIES[i % len(ALL_FACILITIES)] for i in range(500)])
    await reset_counts(sub)
    result = await entities(sub, representations)
    assert "errors" not in result, result["errors"][:3]
    assert len(result["data"]["_entities"]) == 500
    assert [e["id"] for e in result["data"]["_entities"]] == [r["id"] for r in representations]
    by_references = await calls(sub)
    # exactly what one list of the six facilities costs, which tests/resolvers/test_facilities.py pins to
    # one call per system and resource (a vendor's pages apart)
    assert by_references == by_list
    assert any(by_references.values())
    for system_id, endpoints in by_references.items():
        for endpoint, count in endpoints.items():
            assert count <= 2, (system_id, endpoint, count)


async def test_entities_are_priced_per_representation(sub: Bed) -> None:
    async def requested(n: int) -> int:
        result = await entities(sub, facility_refs(["berlin-mitte"] * n))
        cost: int = result["extensions"]["cost"]["requestedQueryCost"]
        return cost

    one, many = await requested(1), await requested(40)
    assert one > 0 and many == 40 * one
    actual = (await entities(sub, facility_refs(["berlin-mitte"] * 3)))["extensions"]["cost"]["actualQueryCost"]
    assert 0 < actual <= 3 * one


async def test_a_reference_outside_the_clients_facilities_is_nothing(sub: Bed) -> None:
    # enforcement-handheld sees berlin-hbf, berlin-mitte and hamburg-elbe only
    refs = facility_refs(["london-kings-cross", "berlin-hbf", "no-such-facility", "berlin-spree-hotel"])
    result = await sub.graphql("query($r: [_Any!]!) { _entities(representations: $r) { ... on Facility { id name } } }",
                               {"r": refs}, client="enforcement-handheld")
    assert "errors" not in result, result
    assert result["data"]["_entities"] == [None, {"id": "berlin-hbf", "name": "Hauptbahnhof Garage"}, None, None]


async def test_scopes_hold_below_and_at_a_reference(sub: Bed) -> None:
    # finance-readonly has facilities:read and rates:read, not occupancy:read
    result = await entities(sub, facility_refs(["berlin-hbf"]), client="finance-readonly")
    assert codes(result) == {("_entities", 0, "occupancy"): "FORBIDDEN"}
    entity = result["data"]["_entities"][0]
    assert entity["occupancy"] is None and entity["rates"] == {"currency": "EUR"}
    # the dashboard may read no reservations: the reference itself is refused, at its own path
    refused = await entities(sub, [{"__typename": "Reservation", "id": "berlin-hbf:r1"},
                                   *facility_refs(["berlin-mitte"])], client="dashboard")
    assert codes(refused) == {("_entities", 0): "FORBIDDEN", ("_entities", 1, "rates"): "FORBIDDEN"}
    assert refused["data"]["_entities"][0] is None and refused["data"]["_entities"][1]["id"] == "berlin-mitte"


async def made(bed: Bed, client: str, mutation: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = await bed.graphql(mutation, {**variables, "key": idempotency_key()}, client=client)
    assert "errors" not in answer, answer
    return dict(next(iter(answer["data"].values())))


def without_typename(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k != "__typename"} for item in items]


async def test_reservation_permit_and_citation_references(sub: Bed) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    reservations = [await made(sub, "driver-app", "mutation($input: CreateReservationInput!, $key: String!) { "
                               "createReservation(input: $input, idempotencyKey: $key) { id facilityId status start end } }",
                               {"input": {"facilityId": facility, "plate": "B-FD 17", **window}})
                    for facility in ("berlin-hbf", "london-kings-cross", "london-southbank")]  # two PARCS
    permits = [await made(sub, "permit-office", "mutation($input: IssuePermitInput!, $key: String!) { "
                          "issuePermit(input: $input, idempotencyKey: $key) { id facilityId permitStatus: status validFrom } }",
                          {"input": {"facilityId": facility, "plate": "HH-FD 17", "holderName": "Federation Test",
                                     "validFrom": window["start"]}})
               for facility in ("hamburg-elbe", "london-kings-cross")]
    citations = [await made(sub, "enforcement-handheld", "mutation($input: IssueCitationInput!, $key: String!) { "
                            "issueCitation(input: $input, idempotencyKey: $key) { number violationCode citationStatus: status } }",
                            {"input": {"facilityId": facility, "plate": "B-FD 17", "violationCode": "V12"}})
                 for facility in ("berlin-hbf", "berlin-mitte")]

    await reset_counts(sub)
    got = await entities(sub, [{"__typename": "Reservation", "id": r["id"]} for r in reservations], client="driver-app")
    assert "errors" not in got, got
    assert without_typename(got["data"]["_entities"]) == reservations
    for endpoints in (await calls(sub)).values():  # however many references: one list per PARCS
        assert all(count == 1 for count in endpoints.values()), endpoints
    got = await entities(sub, [{"__typename": "Permit", "id": p["id"]} for p in permits], client="permit-office")
    assert without_typename(got["data"]["_entities"]) == permits
    got = await entities(sub, [{"__typename": "Citation", "number": c["number"]} for c in citations],
                         client="enforcement-handheld")
    assert without_typename(got["data"]["_entities"]) == citations
    # A record at a facility the client may not see, and an id that names nothing: both nothing, no error.
    # (enforcement-handheld sees berlin-hbf, berlin-mitte and hamburg-elbe; hotel-pms-spree only its hotel.)
    refs = [{"__typename": "Permit", "id": permits[1]["id"]}, {"__typename": "Permit", "id": "x:y"},
            {"__typename": "Permit", "id": permits[0]["id"]}]
    handheld = await sub.graphql("query($r: [_Any!]!) { _entities(representations: $r) { ... on Permit { id } } }",
                                 {"r": refs}, client="enforcement-handheld")
    assert "errors" not in handheld, handheld
    assert handheld["data"]["_entities"] == [None, None, {"id": permits[0]["id"]}]
    hotel = await sub.graphql("query($r: [_Any!]!) { _entities(representations: $r) { ... on Citation { number } } }",
                              {"r": [{"__typename": "Citation", "number": citations[0]["number"]}]},
                              client="hotel-pms-spree")
    assert codes(hotel) == {("_entities", 0): "FORBIDDEN"}  # it may not read enforcement at all


REPRESENTATION = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["__typename", "id", "number", "name"]),
                    st.one_of(st.sampled_from(["Facility", "Reservation", "Permit", "Citation", "Occupancy", "Query"]),
                              st.text(max_size=12), st.integers(), st.none()), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(representations=st.lists(REPRESENTATION, min_size=1, max_size=4))
async def test_any_representation_gets_an_answer_or_a_coded_error(sub: Bed, representations: list[Any]) -> None:
    response = await sub.http.post(f"{sub.url}/graphql", headers=sub.auth("enforcement-handheld"),
                                   json={"query": "query($r: [_Any!]!) { _entities(representations: $r) "
                                                  "{ __typename ... on Facility { id } } }",
                                         "variables": {"r": representations}})
    body = response.json()
    catalog = {code.value for code in ErrorCode}
    assert all(e["extensions"]["code"] in catalog and e["extensions"]["code"] != "INTERNAL"
               for e in body.get("errors", [])), body
    assert response.status_code == 200, response.text
    if None in representations:  # `[_Any!]!`: the variable itself is refused before anything runs
        assert "data" not in body and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
        return
    if "data" not in body:  # only the card-number screen refuses a whole request here (gateway/card_screen.py)
        assert body["errors"][0]["extensions"]["reason"] == "CARD_NUMBER_REFUSED", body
        return
    items = body["data"]["_entities"]
    assert len(items) == len(representations)
    for item, representation in zip(items, representations, strict=True):
        if item is not None:  # only a facility this client may see comes back
            assert isinstance(representation, dict) and representation.get("__typename") == "Facility"
            assert item["id"] in {"berlin-hbf", "berlin-mitte", "hamburg-elbe"} and item["id"] == representation["id"]


async def test_a_batch_over_the_clients_cost_ceiling_is_refused_before_any_vendor_call(sub: Bed) -> None:
    # throttled-demo's plan allows 500 points a query; each reference below costs 2 (the facility, its occupancy)
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Facility { id occupancy { free } } } }"
    await reset_counts(sub)
    response = await sub.http.post(f"{sub.url}/graphql", headers=sub.auth("throttled-demo"),
                                   json={"query": query, "variables": {"r": facility_refs(["berlin-hbf"] * 251)}})
    assert response.status_code == 200, response.text  # application/json: errors travel with 200 (docs/api.md)
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert body["errors"][0]["extensions"]["cost"] == 502 and "data" not in body
    assert not any((await calls(sub)).values())


def test_subgraph_mode_is_a_configuration_switch() -> None:
    from gateway.config import ConfigError, parse_config
    from resolvers.schema import schema as standalone
    from resolvers.subgraph import served_schema

    document = {"systems": {}, "facilities": {}}
    assert parse_config(document).server.subgraph is False
    assert parse_config({**document, "server": {"subgraph": True}}).server.subgraph is True
    with pytest.raises(ConfigError, match="subgraph"):
        parse_config({**document, "server": {"subgraph": "sometimes"}})
    assert served_schema(False) is standalone
    federated = served_schema(True)._schema
    assert federated.query_type is not None and {"_entities", "_service"} <= set(federated.query_type.fields)
    assert served_schema(True) is served_schema(True)  # built once per process


def test_every_field_keeps_its_scope_check_in_subgraph_mode() -> None:
    from resolvers.schema import REQUIRED_SCOPES
    from resolvers.subgraph import build_subgraph

    assert build_subgraph().required_scopes == REQUIRED_SCOPES
    assert REQUIRED_SCOPES["Query.facilities"] == {"facilities:read"} and REQUIRED_SCOPES["Mutation.createClient"] == {"admin"}


async def test_root_fields_and_admin_operations_are_checked_on_the_subgraph(sub: Bed) -> None:
    _, key = await sub.new_client(["occupancy:read"])
    headers = {"authorization": f"Bearer {key}"}
    answer = (await sub.http.post(f"{sub.url}/graphql", headers=headers, json={
        "query": '{ facilities { totalCount } facility(id: "berlin-hbf") { id } clients { id } }'})).json()
    assert codes(answer) == {("facilities",): "FORBIDDEN", ("facility",): "FORBIDDEN", ("clients",): "FORBIDDEN"}
    assert answer["data"] == {"facilities": None, "facility": None, "clients": None}
