"""No document can stall the process: every walk over a document is bounded before it runs.

Nested fragments that spread each other (× aliases × inline fragments × directives) are
generated and sent to the real app over HTTP: each answer is coded and quick, the process's
memory stays flat, and `/healthz` keeps answering meanwhile. The bounds themselves
(gateway/document_shape.py) are checked on the walk directly. How fast a refusal is, in
milliseconds against a plain request, is bench/document_bench.py's figure; the time guards here
only catch a walk that expands without end (which took seconds to minutes).
"""

from __future__ import annotations

import asyncio
import resource
import time
import tracemalloc
from typing import Any

import pytest
from graphql import get_introspection_query, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import LimitsConfig
from gateway.document_shape import MAX_OVERLAPS, ShapeLimits, measure
from gateway.errors import RequestError
from gateway.execution import Executor
from resolvers.schema import schema
from tests.support.bed import Bed

LIMITS = ShapeLimits()
#: far above any bounded walk here, far below an unbounded one (the reported document took 11.8 s)
HANG_GUARD_S = 2.0
ANSWERED = {"QUERY_TOO_COMPLEX", "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "COST_LIMIT_EXCEEDED"}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def bomb(levels: int, spreads: int = 2, aliased: int = 0, inline: bool = False, directive: str = "",
         leaf: str = "id", on: str = "Facility") -> str:
    """Fragments F0…Fn, each spreading the next `spreads` times, under aliases, inside inline
    fragments and behind @include/@skip: their expansion doubles (or more) with every level."""
    root = ("facilities(first: 1) { edges { node { ...F0 } } }" if on == "Facility" else "...F0")
    parts = [f"query Attack($on: Boolean = true) {{ {root} }}"]
    for i in range(levels):
        body = [leaf]
        for n in range(spreads):
            spread = f"...F{i + 1}{directive}"
            body.append(f"... on {on} {{ {spread} }}" if inline and n % 2 else spread)
        for n in range(aliased):  # a field that execution cannot merge with its twin
            body.append(f"a{n}: levels {{ ...F{i + 1} }}")
        parts.append(f"fragment F{i} on {on} {{ {' '.join(body)} }}")
    parts.append(f"fragment F{levels} on {on} {{ {leaf} }}")
    return "\n".join(parts)


nested_fragments = st.builds(
    bomb, levels=st.integers(2, 45), spreads=st.integers(1, 4), aliased=st.integers(0, 3), inline=st.booleans(),
    directive=st.sampled_from(["", " @include(if: true)", " @skip(if: false)", " @include(if: $on)"]),
    leaf=st.sampled_from(["id", "name", "__typename", "levels { name }"]), on=st.sampled_from(["Facility", "Query"]))
#: a fixed mix of the shapes above, for the test that sends many at once
BOMBS = [bomb(levels, spreads, aliased, inline, directive)
         for levels in (10, 25, 45) for spreads in (2, 4) for aliased in (0, 2) for inline in (False, True)
         for directive in ("", " @include(if: $on)")]


# --- the walk itself ----------------------------------------------------------------------------


@SETTINGS
@given(document=nested_fragments)
def test_the_expansion_walk_stops_at_its_ceiling_with_flat_memory(document: str) -> None:
    parsed = parse(document)
    tracemalloc.start()
    try:
        try:
            shape = measure(parsed, LIMITS)
        except RequestError as refused:
            assert refused.code.value == "QUERY_TOO_COMPLEX"
        else:
            assert shape.selections <= LIMITS.max_selections and shape.depth <= LIMITS.max_depth
            assert shape.overlaps <= MAX_OVERLAPS
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"the walk held {peak} bytes"


def test_shapes_that_stalled_the_process_or_validation_are_refused_or_cheap() -> None:
    executor = Executor(schema)
    doubling = "\n".join(["query { facilities(first: 1) { edges { node { ...F0 } } } }",
                          *(f"fragment F{i} on Facility {{ id ...F{i + 1} ...F{i + 1} }}" for i in range(40)),
                          "fragment F40 on Facility { name }"])
    # Spread twice in one selection set, a fragment is expanded once (as execution does): this
    # one is small, and runs (it took 11.8 s before, in the response cache's lifetime walk).
    prepared = executor.prepare(doubling, None)
    assert executor.analyze(prepared, None).cost == 3
    for document in (bomb(20, spreads=1, aliased=2), "{" + " facilities { totalCount }" * 800 + "}"):
        with pytest.raises(RequestError) as refused:
            executor.prepare(document, None)
        assert refused.value.code.value == "QUERY_TOO_COMPLEX"  # before validation looks at it


def test_introspection_has_its_own_depth_limit_and_graphiql_still_introspects() -> None:
    executor = Executor(schema)
    for query in (get_introspection_query(), get_introspection_query(descriptions=True, specified_by_url=True,
                                                                     directive_is_repeatable=True,
                                                                     schema_description=True,
                                                                     input_value_deprecation=True)):
        executor.prepare(query, None)
    deep = "{ __type(name: \"Query\") { " + "fields { type { " * 7 + "name" + " } }" * 7 + " } }"
    with pytest.raises(RequestError) as refused:
        executor.prepare(deep, None)
    assert refused.value.code.value == "QUERY_TOO_COMPLEX" and "15 fields deep" in refused.value.message
    assert measure(parse(deep), ShapeLimits(max_introspection_depth=100)).depth == 16


def test_a_long_chain_of_fragments_does_not_exhaust_the_stack() -> None:
    chain = "\n".join(["query { ...F0 }", *(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(700)),
                       "fragment F700 on Query { __typename }"])
    executor = Executor(schema, limits=LimitsConfig())
    try:
        executor.prepare(chain, None)
    except RequestError as refused:
        assert refused.code.value in ANSWERED


# --- the real app over HTTP ---------------------------------------------------------------------


async def post(bed: Bed, query: str, client: str = "dashboard") -> tuple[float, Any]:
    started = time.perf_counter()
    response = await bed.http.post(f"{bed.url}/graphql", json={"query": query}, headers=bed.auth(client))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed, response.json()


@SETTINGS
@given(document=nested_fragments)
async def test_generated_fragment_bombs_are_answered_quickly_over_http(bed: Bed, document: str) -> None:
    elapsed, body = await post(bed, document)
    assert elapsed < HANG_GUARD_S, f"{elapsed:.2f} s"
    for error in body.get("errors", []):
        assert error["extensions"]["code"] in ANSWERED | {"FORBIDDEN"}, error


async def test_healthz_answers_and_memory_stays_flat_while_bombs_arrive(bed: Bed) -> None:
    bombs = BOMBS
    latencies: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            response = await bed.http.get(f"{bed.url}/healthz")
            assert response.status_code == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    prober = asyncio.create_task(probe())
    try:
        answers = await asyncio.gather(*(post(bed, bomb) for bomb in bombs))
    finally:
        stop.set()
        await prober
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert max(elapsed for elapsed, _ in answers) < HANG_GUARD_S * 4  # 40 at once, on two cores
    assert latencies and max(latencies) < HANG_GUARD_S, max(latencies)
    assert grown_kb < 50_000, f"the process grew by {grown_kb} KB"


async def test_a_refused_document_is_metered_as_a_request(bed: Bed) -> None:
    client_id = bed.sandbox.clients["dashboard"]["id"]

    async def requests() -> int:
        usage = await bed.graphql(f'{{ client(id: "{client_id}") {{ usage {{ requests }} }} }}')
        return usage["data"]["client"]["usage"]["requests"]

    before = await requests()
    _, body = await post(bed, "{" + " facilities { totalCount }" * 800 + "}")
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert await requests() == before + 1


async def test_subscriptions_are_bounded_like_queries(bed: Bed) -> None:
    exploding = "\n".join(["subscription { occupancyChanged(facilityId: \"berlin-hbf\") { ...F0 } }",
                           *(f"fragment F{i} on OccupancyUpdate {{ a: facility {{ ...F{i + 1} }} b: facility {{ ...F{i + 1} }} }}"
                             for i in range(30)),
                           "fragment F30 on OccupancyUpdate { facilityId }"])
    repeated = "subscription {" + ' occupancyChanged(facilityId: "berlin-hbf") { facilityId }' * 800 + "}"
    for bomb_ in (exploding, repeated):
        started = time.perf_counter()
        response = await bed.http.post(f"{bed.url}/graphql/stream", json={"query": bomb_}, headers=bed.auth("dashboard"))
        assert time.perf_counter() - started < HANG_GUARD_S
        assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", response.text
