"""The memo of POST bodies already understood (gateway/body_memo.py): the same bytes answer the
same as the first time, and nothing that failed a check is ever taken from it."""

from __future__ import annotations

from typing import Any

import orjson

from tests.support.bed import Bed

CARD_IN_VARIABLE = orjson.dumps({"query": "query($id: ID!) { facility(id: $id) { id } }",
                                 "variables": {"id": "4111 1111 1111 1111"}})


def memo(bed: Bed) -> Any:
    return bed.app.state.graphql.bodies


async def post(bed: Bed, body: bytes, client: str = "admin") -> Any:
    response = await bed.http.post(f"{bed.url}/graphql", content=body,
                                   headers={**bed.auth(client), "content-type": "application/json"})
    return response


async def test_a_body_holding_a_card_number_is_refused_every_time_and_never_kept(bed: Bed) -> None:
    kept = len(memo(bed))
    for _ in range(3):
        response = await post(bed, CARD_IN_VARIABLE)
        extensions = response.json()["errors"][0]["extensions"]
        assert extensions["code"] == "BAD_USER_INPUT" and extensions["reason"] == "CARD_NUMBER_REFUSED"
        assert memo(bed).get(CARD_IN_VARIABLE) is None
    assert len(memo(bed)) == kept


async def test_a_query_sent_again_is_kept_and_answers_the_same(bed: Bed) -> None:
    body = orjson.dumps({"query": "query Memo { facilities(first: 2) { totalCount } }", "operationName": "Memo"})
    answers = [(await post(bed, body)).json() for _ in range(3)]
    assert memo(bed).get(body) is not None  # kept from its second use
    assert answers[0]["data"] == answers[1]["data"] == answers[2]["data"] == {"facilities": {"totalCount": 6}}
    available = [answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] for answer in answers]
    assert available[0] > available[1] > available[2]  # each one charged, the kept one too


async def test_a_kept_body_is_still_metered_and_scoped_per_client(bed: Bed) -> None:
    """What is kept is the body's, not the asker's: another client's permissions and quota apply."""
    body = orjson.dumps({"query": "{ facilities(first: 50) { totalCount } }"})
    for _ in range(2):
        await post(bed, body)
    assert memo(bed).get(body) is not None
    mine = await post(bed, body)
    theirs = await post(bed, body, client="dashboard")
    assert mine.headers.get("ratelimit-policy") is not None and theirs.headers.get("ratelimit-policy") is not None
    assert mine.json()["extensions"]["cost"] and theirs.json()["extensions"]["cost"]
    no_auth = await bed.http.post(f"{bed.url}/graphql", content=body, headers={"content-type": "application/json"})
    assert no_auth.status_code == 401


async def test_persisted_queries_and_invalid_documents_are_never_kept(bed: Bed) -> None:
    persisted = orjson.dumps({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}})
    for _ in range(2):
        answer = (await post(bed, persisted)).json()
        assert answer["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert memo(bed).get(persisted) is None
    invalid = orjson.dumps({"query": "{ nope }"})
    for _ in range(2):
        assert (await post(bed, invalid)).json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert memo(bed).get(invalid) is None


async def test_a_body_too_large_for_its_share_is_answered_but_not_kept(bed: Bed) -> None:
    body = orjson.dumps({"query": "{ facilities(first: 1) { totalCount } }\n# " + "padding " * 5000})
    for _ in range(2):
        assert (await post(bed, body)).json()["data"] == {"facilities": {"totalCount": 6}}
    assert memo(bed).get(body) is None
