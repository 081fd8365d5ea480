"""Quotas and cost as clients meet them: headers, extensions, the rateLimit field, 429s, ceilings."""

from __future__ import annotations

import re

import httpx
from graphql import get_introspection_query

from tests.support.bed import Bed

HEAVY = """{ facilities(first: 100) { edges { node { id levels { occupancy { occupied } }
  rates { lines { amount { amount } } } enforcement { citationsIssuedToday(first: 100) { number } } } } } }"""


#: what the clients of these tests may read: enough for HEAVY to cost what it does
SCOPES = ["facilities:read", "occupancy:read", "rates:read", "enforcement:read"]


async def ask(bed: Bed, key: str, query: str, variables: dict | None = None) -> httpx.Response:
    return await bed.http.post(f"{bed.url}/graphql", json={"query": query, "variables": variables},
                               headers={"authorization": f"Bearer {key}"})


def header_items(value: str) -> dict[str, dict[str, int]]:
    """Parse `"requests";r=5;t=60, "cost";r=9;t=60` (RFC 9651 items with parameters)."""
    items = {}
    for part in value.split(","):
        name, *params = part.strip().split(";")
        items[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return items


async def test_headers_extensions_and_the_rate_limit_field_agree_with_what_was_charged(bed: Bed) -> None:
    _, key = await bed.new_client(SCOPES)
    query = "{ rateLimit { cost limit remaining plan requests { limit remaining } } facilities(first: 50) { edges { node { id levels { id } } } } }"
    response = await ask(bed, key, query)
    body = response.json()
    assert response.status_code == 200, body
    cost = body["extensions"]["cost"]
    field = body["data"]["rateLimit"]
    policy = header_items(response.headers["ratelimit-policy"])
    state = header_items(response.headers["ratelimit"])
    assert policy == {"requests": {"q": 600, "w": 60}, "cost": {"q": 60_000, "w": 60}}
    # 6 facilities came back where 50 were budgeted: the refund is the difference.
    assert cost["actualQueryCost"] < cost["requestedQueryCost"] == field["cost"]
    assert field["remaining"] == 60_000 - cost["requestedQueryCost"]
    assert state["cost"]["r"] == cost["throttleStatus"]["currentlyAvailable"] == 60_000 - cost["actualQueryCost"]
    assert state["cost"]["r"] == field["remaining"] + cost["requestedQueryCost"] - cost["actualQueryCost"]
    assert state["requests"]["r"] == field["requests"]["remaining"] == 599
    assert field["plan"] == "standard" and field["limit"] == 60_000
    second = await ask(bed, key, "{ rateLimit { remaining requests { remaining } } }")
    assert header_items(second.headers["ratelimit"])["requests"]["r"] == 598


async def test_a_query_over_the_ceiling_is_refused_before_any_vendor_call(bed: Bed) -> None:
    _, key = await bed.new_client(SCOPES, plan="throttled")
    for sim in bed.sandbox.simulators.values():
        sim.control.reset_stats()
    for accept, status in (("application/json", 200), ("application/graphql-response+json", 400)):
        response = await bed.http.post(f"{bed.url}/graphql", json={"query": HEAVY},
                                       headers={"authorization": f"Bearer {key}", "accept": accept})
        assert response.status_code == status
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
        assert error["extensions"]["cost"] > error["extensions"]["maxQueryCost"] == 500
        assert "ratelimit" in response.headers
    for system_id in bed.sandbox.simulators:
        assert (await bed.stats(system_id))["total"] == 0, system_id


async def test_out_of_quota_is_a_429_with_retry_after_and_admin_changes_apply_at_once(bed: Bed) -> None:
    client_id, key = await bed.new_client(SCOPES, overrides={"requests": 3})
    for _ in range(3):
        assert (await ask(bed, key, "{ facilities { totalCount } }")).status_code == 200
    refused = await ask(bed, key, "{ facilities { totalCount } }")
    assert refused.status_code == 429
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["refusedBy"] == "requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert header_items(refused.headers["ratelimit"])["requests"]["r"] == 0
    usage = await bed.graphql(f'{{ client(id: "{client_id}") {{ quota {{ requests }} usage {{ requests refusals cost }} }} }}')
    assert usage["data"]["client"]["quota"]["requests"] == 3
    assert usage["data"]["client"]["usage"]["requests"] == 3 and usage["data"]["client"]["usage"]["refusals"] == 1
    await bed.graphql(f'mutation {{ updateClient(id: "{client_id}", input: {{quotaOverrides: null}}) {{ id }} }}')
    assert (await ask(bed, key, "{ facilities { totalCount } }")).status_code == 200
    log = await bed.graphql(f'{{ auditLog(clientId: "{client_id}", first: 5) {{ action before after }} }}')
    cleared = log["data"]["auditLog"][0]
    assert cleared["before"]["quota_overrides"] == {"requests": 3} and cleared["after"]["quota_overrides"] == {}


async def test_the_cost_budget_refuses_too(bed: Bed) -> None:
    _, key = await bed.new_client(SCOPES, overrides={"cost": 40})
    big = await ask(bed, key, "{ facilities(first: 20) { edges { node { id levels { id } } } } }")
    assert big.status_code == 429 and big.json()["errors"][0]["extensions"]["refusedBy"] == "cost"
    small = "{ facilities(first: 2) { edges { node { id } } } }"
    first = await ask(bed, key, small)
    each = first.json()["extensions"]["cost"]["actualQueryCost"]
    assert each == first.json()["extensions"]["cost"]["requestedQueryCost"] > 0  # two asked, two came back
    statuses = [(await ask(bed, key, small)).status_code for _ in range(40 // each + 2)]
    assert statuses.count(200) == 40 // each - 1  # the first one above, then the rest of the budget
    refused = await ask(bed, key, small)
    assert refused.status_code == 429 and refused.json()["errors"][0]["extensions"]["refusedBy"] == "cost"


async def test_complexity_limits(bed: Bed) -> None:
    _, key = await bed.new_client(SCOPES)
    deep = "{ facilities { edges { node { occupancy { counted { source } } levels { occupancy { sensed { source } } } } } } }"
    assert (await ask(bed, key, deep)).status_code == 200  # depth 7 is fine
    nested = "{ facilities { edges { node { id } } } " + " ".join(f"a{i}: facilities {{ totalCount }}" for i in range(31)) + " }"
    too_many_aliases = await ask(bed, key, nested)
    assert too_many_aliases.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    roots = "{ " + " ".join(f"r{i}: sources {{ id }}" for i in range(11)) + " }"
    assert (await ask(bed, key, roots)).json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    tokens = "{ " + " ".join("__typename" for _ in range(6000)) + " }"
    assert (await ask(bed, key, tokens)).json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def type_ref_chain(depth: int) -> str:
    """`__type { fields { type { ofType { … kind } } } }`, `depth` fields deep (leaves count, as for every query)."""
    chain = "kind"
    for _ in range(depth - 4):
        chain = f"ofType {{ name {chain} }}"
    return f'{{ __type(name: "Query") {{ fields {{ type {{ {chain} }} }} }} }}'


async def test_introspection_is_depth_limited_too(bed: Bed) -> None:
    """Introspection is free of cost, not of the depth limit: its own one, 15, which is exactly how deep the
    standard introspection query of graphql-js 16 (GraphiQL, Apollo, codegen) and graphql-core 3.3 nests.
    (Walking the schema type by type, `fields { type { fields …`, graphql-core's own MaxIntrospectionDepthRule
    refuses at three levels; long `ofType` chains it lets through are what this limit stops.)"""
    _, key = await bed.new_client(SCOPES)
    for options in ({}, {"descriptions": True, "input_value_deprecation": True, "specified_by_url": True,
                         "directive_is_repeatable": True, "schema_description": True, "one_of": True}):
        standard = await ask(bed, key, get_introspection_query(**options))
        assert standard.status_code == 200 and "errors" not in standard.json(), standard.text
        assert standard.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    assert "errors" not in (await ask(bed, key, type_ref_chain(15))).json()
    fragment_chain = "fragment T on __Type { " + "ofType { " * 13 + "kind" + " }" * 13 + " }"
    for deep in (type_ref_chain(16), type_ref_chain(40),
                 get_introspection_query(type_depth=10),  # TypeRef one level deeper than standard: 16
                 # hidden behind fragments, at the root and below
                 "{ ...Q } fragment Q on Query { __type(name: \"Query\") { fields { type { ...T } } } } " + fragment_chain):
        refused = await ask(bed, key, deep)
        assert refused.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", (deep, refused.text)
        assert "data" not in refused.json()


async def test_batches_are_limited_and_each_operation_is_counted(bed: Bed) -> None:
    client_id, key = await bed.new_client(SCOPES)
    batch = [{"query": "{ facilities { totalCount } }"}, {"query": "{ nope }"}, {"query": "{ sources { id } }"}]
    response = await bed.http.post(f"{bed.url}/graphql", json=batch, headers={"authorization": f"Bearer {key}"})
    answers = response.json()
    assert response.status_code == 200 and len(answers) == 3
    assert answers[0]["data"]["facilities"]["totalCount"] == 6
    assert answers[1]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert {s["id"] for s in answers[2]["data"]["sources"]} >= {"guidance"}
    usage = await bed.graphql(f'{{ client(id: "{client_id}") {{ usage {{ requests }} }} }}')
    assert usage["data"]["client"]["usage"]["requests"] == 3  # the invalid one never ran, yet counts as a request
    too_big = await bed.http.post(f"{bed.url}/graphql", json=[{"query": "{ __typename }"}] * 11,
                                  headers={"authorization": f"Bearer {key}"})
    assert too_big.status_code == 400 and too_big.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_admin_input_for_quotas_is_checked(bed: Bed) -> None:
    client_id, _ = await bed.new_client(SCOPES)
    bad = await bed.graphql(f'mutation {{ updateClient(id: "{client_id}", input: {{quotaOverrides: {{requests: -1}}}}) {{ id }} }}')
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown_plan = await bed.graphql(f'mutation {{ updateClient(id: "{client_id}", input: {{plan: "gold"}}) {{ id }} }}')
    assert unknown_plan["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    plans = await bed.graphql("{ plans { name requests cost windowSeconds maxQueryCost } }")
    assert {p["name"] for p in plans["data"]["plans"]} >= {"standard", "throttled"}


async def test_the_sandbox_throttled_demo_client_is_in_the_keys_and_really_throttled(bed: Bed) -> None:
    demo = bed.sandbox.clients["throttled-demo"]
    assert demo["key"].startswith("pk_test_")
    response = await ask(bed, demo["key"], "{ rateLimit { plan requests { limit } maxQueryCost } }")
    assert response.json()["data"]["rateLimit"] == {"plan": "throttled", "requests": {"limit": 30}, "maxQueryCost": 500}
    assert re.search(r'"requests";q=30;w=60', response.headers["ratelimit-policy"])
