"""Role × field × facility: each sandbox role sees exactly what it should, on every path.

Nothing may leak through lists, counts, lookups by id, nested fields, errors or masking.
"""

from __future__ import annotations


import json

import pytest

from gateway.sandbox import DEMO_CLIENTS
from tests.support import idempotency_key
from tests.support.bed import Bed

ALL_FACILITIES = {"berlin-hbf", "berlin-mitte", "berlin-spree-hotel", "hamburg-elbe", "london-kings-cross", "london-southbank"}
NAMES = {
    "berlin-hbf": "Hauptbahnhof Garage", "berlin-mitte": "Alexanderplatz Parkhaus", "berlin-spree-hotel": "Spree Hotel Garage",
    "hamburg-elbe": "Elbphilharmonie Garage", "london-kings-cross": "King's Cross Car Park", "london-southbank": "Southbank Car Park",
}
#: guarded field of Facility -> the scope it needs
GUARDED = {"occupancy": "occupancy:read", "rates": "rates:read", "enforcement": "enforcement:read", "hotel": "hospitality:read"}

MATRIX = """
{
  facilities(first: 6) {
    totalCount
    edges { node {
      id name
      occupancy { free }
      levels { id occupancy { occupied } }
      rates { currency }
      enforcement { zoneId citationsIssuedToday(first: 5) { plate } }
      hotel { name }
      sources { id }
    } }
  }
  sources { id }
}
"""
FEEDS = {
    "berlin-hbf": {"parcs-central", "guidance", "enforcement"},
    "berlin-mitte": {"parcs-central", "guidance", "enforcement"},
    "berlin-spree-hotel": {"parcs-central", "guidance", "hotel-pms"},
    "hamburg-elbe": {"parcs-central", "enforcement", "open-data"},
    "london-kings-cross": {"parcs-london", "guidance"},
    "london-southbank": {"parcs-london", "hotel-pms", "open-data"},
}
#: the systems that measure levels: the bay sensors and the open-data platform's DATEX II feed
LEVEL_SENSING = {"guidance", "open-data"}


def role_view(name: str) -> tuple[set[str], set[str]]:
    scopes, facilities = DEMO_CLIENTS[name]
    return {s.value for s in scopes}, set(facilities) if facilities else set(ALL_FACILITIES)


@pytest.mark.parametrize("role", sorted(DEMO_CLIENTS))
async def test_each_role_sees_exactly_its_facilities_and_fields(bed: Bed, role: str) -> None:
    scopes, visible = role_view(role)
    result = await bed.graphql(MATRIX, client=role)
    connection = result["data"]["facilities"]
    nodes = {edge["node"]["id"]: (i, edge["node"]) for i, edge in enumerate(connection["edges"])}
    assert set(nodes) == visible and connection["totalCount"] == len(visible)
    errors = {tuple(e["path"]): e for e in result.get("errors", [])}
    for fid, (index, node) in nodes.items():
        for field, scope in GUARDED.items():
            path = ("facilities", "edges", index, "node", field)
            if scope in scopes:
                assert path not in errors or errors[path]["extensions"]["code"] != "FORBIDDEN", (role, path)
            else:
                assert node[field] is None, (role, fid, field)
                assert errors[path]["extensions"]["code"] == "FORBIDDEN"
                assert errors[path]["extensions"]["missingScopes"] == [scope]
                assert scope in errors[path]["message"]
        for level_index, level in enumerate(node["levels"]):
            path = ("facilities", "edges", index, "node", "levels", level_index, "occupancy")
            if "occupancy:read" in scopes:  # levels are measured where a guidance system senses them
                assert (level["occupancy"] is not None) == bool(LEVEL_SENSING & FEEDS[fid]), (fid, level)
                assert path not in errors
            else:
                assert level["occupancy"] is None and errors[path]["extensions"]["code"] == "FORBIDDEN"
        assert {s["id"] for s in node["sources"]} == FEEDS[fid]
    assert {s["id"] for s in result["data"]["sources"]} == set().union(*(FEEDS[f] for f in visible))
    # Nothing about an invisible facility anywhere in the answer, errors included.
    text = json.dumps(result)
    for hidden in ALL_FACILITIES - visible:
        assert hidden not in text and NAMES[hidden] not in text, (role, hidden)


@pytest.mark.parametrize("role", sorted(DEMO_CLIENTS))
async def test_lookups_by_id_and_cursors_do_not_reveal_hidden_facilities(bed: Bed, role: str) -> None:
    _, visible = role_view(role)
    for fid in ALL_FACILITIES:
        result = await bed.graphql(f'{{ facility(id: "{fid}") {{ id name }} }}', client=role)
        assert "errors" not in result
        if fid in visible:
            assert result["data"]["facility"]["id"] == fid
        else:
            assert result["data"]["facility"] is None
    hidden = sorted(ALL_FACILITIES - visible)
    if not hidden:  # this role sees every facility: the cursor check below runs for the roles that do not
        assert any(role_view(other)[1] != ALL_FACILITIES for other in DEMO_CLIENTS), "no demo role has a hidden facility"
    else:
        from resolvers.common import encode_cursor

        cursor = encode_cursor("facility", hidden[0])
        result = await bed.graphql(f'{{ facilities(after: "{cursor}") {{ totalCount }} }}', client=role)
        nowhere = await bed.graphql(f'{{ facilities(after: "{encode_cursor("facility", "nowhere")}") {{ totalCount }} }}', client=role)
        assert result["errors"][0]["message"] == nowhere["errors"][0]["message"]
        assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    filtered = await bed.graphql('{ facilities(filter: {city: "Berlin"}) { totalCount edges { node { id } } } }', client=role)
    berlin = {"berlin-hbf", "berlin-mitte", "berlin-spree-hotel"} & visible
    assert {e["node"]["id"] for e in filtered["data"]["facilities"]["edges"]} == berlin
    assert filtered["data"]["facilities"]["totalCount"] == len(berlin)


async def test_plates_are_masked_without_pii_scope(bed: Bed) -> None:
    # One citation issued now, so the check always has a plate to look at (the simulator's own
    # seeded citations may not have fallen on today yet).
    issued = await bed.graphql("""mutation($key: String!) { issueCitation(input: {facilityId: "berlin-hbf",
      plate: "B-MQ 4711", violationCode: "V12"}, idempotencyKey: $key) { number } }""", {"key": idempotency_key()},
                               client="enforcement-handheld")
    assert "errors" not in issued, issued
    query = '{ facility(id: "berlin-hbf") { enforcement { citationsIssuedToday(first: 100) { plate number } } } }'
    masked = (await bed.graphql(query, client="admin"))["data"]["facility"]["enforcement"]["citationsIssuedToday"]
    clear = (await bed.graphql(query, client="enforcement-handheld"))["data"]["facility"]["enforcement"]["citationsIssuedToday"]
    assert issued["data"]["issueCitation"]["number"] in {c["number"] for c in clear}
    assert issued["data"]["issueCitation"]["number"] in {c["number"] for c in masked}, masked  # the loop checks a plate
    by_number = {c["number"]: c["plate"] for c in clear}
    for citation in masked:
        plate = by_number[citation["number"]]
        assert "•••" not in plate and "•••" in citation["plate"]
        assert citation["plate"][:2] == plate[:2] and citation["plate"][-2:] == plate[-2:]


@pytest.mark.parametrize("role", sorted(set(DEMO_CLIENTS) - {"admin"}))
async def test_only_admins_administer_and_a_refused_write_changes_nothing(bed: Bed, role: str) -> None:
    before = len(await bed.sandbox_clients())
    result = await bed.graphql(
        'mutation { createClient(input: {name: "sneaky", environment: TEST, scopes: ["admin"]}) { key } }', client=role)
    assert result["data"] == {"createClient": None}
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert len(await bed.sandbox_clients()) == before
    listing = await bed.graphql("{ clients { id } auditLog { id } }", client=role)
    assert listing["data"] == {"clients": None, "auditLog": None}
    assert {e["extensions"]["code"] for e in listing["errors"]} == {"FORBIDDEN"}


async def test_a_client_without_facilities_read_gets_forbidden_not_an_empty_list(bed: Bed) -> None:
    created = await bed.graphql(
        'mutation { createClient(input: {name: "only-admin", environment: TEST, scopes: ["admin"]}) { key client { id } } }')
    key = created["data"]["createClient"]["key"]
    response = await bed.http.post(f"{bed.url}/graphql", json={"query": "{ facilities { totalCount } sources { id } }"},
                                   headers={"authorization": f"Bearer {key}"})
    body = response.json()
    assert body["data"] == {"facilities": None, "sources": None}
    assert [e["extensions"]["missingScopes"] for e in body["errors"]] == [["facilities:read"], ["facilities:read"]]


async def test_filtering_on_free_spaces_needs_occupancy_read(bed: Bed) -> None:
    query = "{ facilities(filter: {hasFreeSpaces: false}) { totalCount } }"
    refused = await bed.graphql(query, client="finance-readonly")
    assert refused["data"] == {"facilities": None}
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused["errors"][0]["extensions"]["missingScopes"] == ["occupancy:read"]
    allowed = await bed.graphql(query, client="dashboard")
    assert "errors" not in allowed
