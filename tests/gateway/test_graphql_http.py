"""GraphQL over HTTP: media types, status codes and coded errors for every way a request can go wrong."""

from __future__ import annotations

import pytest

from tests.support.bed import Bed

GQL_RESPONSE = "application/graphql-response+json"
SIMPLE = "{ facilities(first: 1) { totalCount } }"


async def test_post_and_get_answer_the_same(bed: Bed) -> None:
    post = await bed.api.post(f"{bed.url}/graphql", json={"query": SIMPLE})
    get = await bed.api.get(f"{bed.url}/graphql", params={"query": SIMPLE})
    assert post.status_code == get.status_code == 200
    assert post.json()["data"] == get.json()["data"] == {"facilities": {"totalCount": 6}}
    assert post.headers["content-type"].startswith("application/json")


async def test_graphql_response_media_type_when_accepted(bed: Bed) -> None:
    response = await bed.api.post(f"{bed.url}/graphql", json={"query": SIMPLE}, headers={"accept": GQL_RESPONSE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GQL_RESPONSE)


@pytest.mark.parametrize(
    ("body", "code", "json_status", "gql_status"),
    [
        ({"query": "{ facilities { "}, "GRAPHQL_PARSE_FAILED", 200, 400),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED", 200, 400),
        ({"query": "query($n: Int!) { facilities(first: $n) { totalCount } }", "variables": {"n": "x"}}, "BAD_USER_INPUT", 200, 400),
        ({"query": "query($n: Int!) { facilities(first: $n) { totalCount } }"}, "BAD_USER_INPUT", 200, 400),
        ({"query": "query A { __typename } query B { __typename }"}, "BAD_REQUEST", 400, 400),
        ({"query": "query A { __typename }", "operationName": "C"}, "BAD_REQUEST", 400, 400),
        ({"query": "subscription { occupancyChanged }"}, "BAD_REQUEST", 400, 400),
        ({"query": 42}, "BAD_REQUEST", 400, 400),
        ({"query": ""}, "BAD_REQUEST", 400, 400),
        ({"query": SIMPLE, "variables": [1]}, "BAD_REQUEST", 400, 400),
        ({"query": SIMPLE, "operationName": 3}, "BAD_REQUEST", 400, 400),
        ({"variables": {}}, "BAD_REQUEST", 400, 400),
    ],
)
async def test_request_errors_are_coded(bed: Bed, body: dict, code: str, json_status: int, gql_status: int) -> None:
    for accept, status in (("application/json", json_status), (GQL_RESPONSE, gql_status)):
        response = await bed.api.post(f"{bed.url}/graphql", json=body, headers={"accept": accept})
        assert response.status_code == status, (accept, response.text)
        errors = response.json()["errors"]
        assert errors and all(e["extensions"]["code"] == code for e in errors), errors
        assert "data" not in response.json()


async def test_malformed_http_gets_the_right_status(bed: Bed) -> None:
    url = f"{bed.url}/graphql"
    cases = [
        (await bed.api.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400),
        (await bed.api.post(url, content=b"[]", headers={"content-type": "application/json"}), 400),
        (await bed.api.post(url, content=b"query", headers={"content-type": "text/plain"}), 415),
        (await bed.api.post(url, json={"query": SIMPLE}, headers={"accept": "text/csv"}), 406),
        (await bed.api.put(url, json={"query": SIMPLE}), 405),
        (await bed.api.get(url, params={"query": "mutation { x }"}), 405),
        (await bed.api.get(url, params={"query": SIMPLE, "variables": "{bad"}), 400),
        (await bed.api.post(url, content=b'{"query": "' + b"a" * 1_100_000 + b'"}', headers={"content-type": "application/json"}), 413),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert cases[4][0].headers["allow"] == "GET, POST"
    assert cases[5][0].headers["allow"] == "POST"



async def test_a_body_sent_in_chunks_is_read_whole_and_one_too_large_is_refused_as_it_streams(bed: Bed) -> None:
    """Chunked transfer encoding (no Content-Length): the endpoint reads ASGI body messages itself
    (gateway/http_exchange.py), joins them, and stops at the size limit."""
    url = f"{bed.url}/graphql"
    body = b'{"query": "' + SIMPLE.encode() + b'"}'

    async def chunks(data: bytes, size: int):  # type: ignore[no-untyped-def]
        for start in range(0, len(data), size):
            yield data[start:start + size]

    headers = {"content-type": "application/json"}
    whole = await bed.api.post(url, content=chunks(body, 7), headers=headers)
    assert whole.status_code == 200 and whole.json()["data"] == {"facilities": {"totalCount": 6}}
    huge = b'{"query": "' + b"a" * 1_100_000 + b'"}'
    refused = await bed.api.post(url, content=chunks(huge, 64 * 1024), headers=headers)
    assert refused.status_code == 413 and refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "content-length" not in refused.request.headers

async def test_browsers_get_graphiql_and_health_endpoints_answer(bed: Bed) -> None:
    page = await bed.api.get(f"{bed.url}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert (await bed.api.get(f"{bed.url}/healthz")).json() == {"status": "ok"}
    ready = (await bed.api.get(f"{bed.url}/readyz")).json()
    assert set(ready["systems"]) == set(bed.sandbox.simulators)


def test_unexpected_exceptions_are_masked_and_coded() -> None:
    from graphql import located_error

    from gateway.errors import format_error

    error = located_error(RuntimeError("password=hunter2 in /srv/app.py line 3"), None, ["facility", "name"])
    formatted = format_error(error)
    assert formatted["message"] == "Internal server error."
    assert formatted["extensions"] == {"code": "INTERNAL"}
    assert formatted["path"] == ["facility", "name"]
    assert "hunter2" not in str(formatted)


async def test_sandbox_control_api_refuses_bad_input(bed: Bed) -> None:
    url = f"{bed.url}/sandbox/systems"
    assert (await bed.api.post(f"{url}/nope/fault", json={"mode": "down"})).status_code == 404
    assert (await bed.api.post(f"{url}/guidance/fault", json={"mode": "sideways"})).status_code == 400
    assert (await bed.api.post(f"{url}/guidance/fault", json={"mode": "slow", "delay_ms": -1})).status_code == 400
    assert (await bed.api.post(f"{url}/guidance/fault", content=b"{")).status_code == 400
    stats = (await bed.api.get(f"{url}/guidance/stats")).json()
    assert stats["mode"] == "ok" and stats["total"] == 0
