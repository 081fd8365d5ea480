"""Open-ended input: whatever valid query a client sends, no 500, no uncoded or internal error."""

from __future__ import annotations

import json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from gateway.auth.keys import Environment
from gateway.auth.scopes import Scope
from gateway.errors import ErrorCode
from resolvers.schema import sdl
from tests.support.bed import Bed

CATALOG = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL.value}
# Times as clients send them: aware, naive, far past or future, or not a time at all.
DATETIMES = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.text(max_size=30),
).map(nodes.String)
# Dates (finance ranges): real ones, reversed or far apart, and things that are not dates.
DATES = st.one_of(st.dates().map(lambda d: d.isoformat()), st.text(max_size=12)).map(nodes.String)
SCALARS = {"DateTime": DATETIMES, "Date": DATES}
#: the operations' writes: reservations, payments, permits, citations, validations
WRITES = ["createReservation", "modifyReservation", "cancelReservation", "payForSession", "payForReservation",
          "issuePermit", "updatePermit", "revokePermit", "issueCitation", "voidCitation", "validateParking"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check(response_status: int, body: dict) -> None:
    assert response_status in (200, 400), body
    for error in body.get("errors", []):
        assert error["extensions"]["code"] in CATALOG, error


@FUZZ
@given(query=queries(sdl(), custom_scalars=SCALARS))
async def test_generated_queries_never_fail_internally(bed: Bed, query: str) -> None:
    response = await bed.api.post(f"{bed.url}/graphql", json={"query": query})
    check(response.status_code, response.json())


_writer: dict[str, str] = {}


async def writer_key(bed: Bed) -> str:
    """A client with every scope but admin, made once: the writes' own checks get fuzzed, not the scope check."""
    if not _writer:
        issued = await bed.sandbox.runtime.admin.create_client(
            "tests", name="fuzz-writer", environment=Environment.TEST, plan="standard",
            scopes=[s.value for s in Scope if s is not Scope.ADMIN])
        _writer["key"] = issued.key
    return _writer["key"]


@FUZZ
@given(query=mutations(sdl(), fields=WRITES, custom_scalars=SCALARS))
async def test_generated_writes_never_fail_internally(bed: Bed, query: str) -> None:
    """Any well-typed write, whatever its values: a coded answer (data or BAD_USER_INPUT, NOT_FOUND, CONFLICT…), never INTERNAL."""
    response = await bed.http.post(f"{bed.url}/graphql", json={"query": query},
                                   headers={"authorization": f"Bearer {await writer_key(bed)}"})
    check(response.status_code, response.json())


@FUZZ
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
                         max_leaves=8))
async def test_arbitrary_json_bodies_are_refused_cleanly(bed: Bed, body: object) -> None:
    response = await bed.api.post(f"{bed.url}/graphql", content=json.dumps(body),
                                   headers={"content-type": "application/json"})
    assert response.status_code in (200, 400), response.text
    answer = response.json()
    for one in answer if isinstance(answer, list) else [answer]:  # an array is a batch: one answer each
        for error in one.get("errors", []):
            assert error["extensions"]["code"] in CATALOG
