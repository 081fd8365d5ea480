"""/graphql taken before Starlette's router (gateway/graphql_first.py) answers as the router would:
the same answer and headers, the app's handlers for an unreachable store, a 500 for a bug, and
every other way in left to Starlette."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from starlette.routing import Route

from gateway.app import store_unreachable
from gateway.errors import STORE_ERRORS, StoreUnavailable
from gateway.graphql_first import GraphQLFirst
from tests.support.bed import Bed

QUERY = b'{"query": "query Names { facilities(first: 3) { totalCount edges { node { id name } } } }"}'


async def asgi_post(app: Any, path: str, root_path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One POST through `app` on the ASGI messages, as a server would send it."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": root_path, "query_string": b"",
             "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                         *((k.encode(), v.encode()) for k, v in headers.items())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}
    messages = [{"type": "http.request", "body": QUERY, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


async def test_the_shortcut_and_the_router_answer_alike(bed: Bed) -> None:
    shortcut = await asgi_post(bed.app, "/graphql", "", bed.auth())
    routed = await asgi_post(bed.app, "/gw/graphql", "/gw", bed.auth())  # under a root path: Starlette's router
    for status, headers, body in (shortcut, routed):
        assert status == 200, body
        answer = orjson.loads(body)
        assert answer["data"]["facilities"]["totalCount"] >= 3 and "errors" not in answer
        assert headers["cache-control"] == "no-store" and "ratelimit" in headers and len(headers["x-request-id"]) == 32
    assert shortcut[1].keys() == routed[1].keys()
    assert orjson.loads(shortcut[2])["data"] == orjson.loads(routed[2])["data"]


async def test_other_paths_still_meet_starlettes_routing(bed: Bed) -> None:
    async with httpx.AsyncClient() as http:
        slash = await http.post(f"{bed.url}/graphql/", content=QUERY, headers=bed.auth())
        assert slash.status_code == 307 and slash.headers["location"].endswith("/graphql")
        assert (await http.get(f"{bed.url}/healthz")).json() == {"status": "ok"}
        missing = await http.post(f"{bed.url}/graphqlx", content=QUERY)
        assert missing.status_code == 404


def app_raising(error: Exception) -> GraphQLFirst:
    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        raise error

    return GraphQLFirst(endpoint, routes=[Route("/graphql", endpoint)],
                        middleware=[], exception_handlers={e: store_unreachable for e in STORE_ERRORS})


async def test_an_unreachable_store_is_the_apps_503_not_a_500() -> None:
    status, headers, body = await asgi_post(app_raising(StoreUnavailable("down")), "/graphql", "", {})
    assert status == 503 and headers["retry-after"] == "5"
    assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "GATEWAY_UNAVAILABLE"


async def test_a_bug_is_a_plain_500_and_reaches_the_server() -> None:
    app = app_raising(ZeroDivisionError("a bug"))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": QUERY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql", "root_path": "", "query_string": b"", "headers": []}
    with pytest.raises(ZeroDivisionError):  # ServerErrorMiddleware answers, then re-raises for the server's log
        await app(scope, receive, send)
    assert sent[0]["status"] == 500 and sent[1]["body"] == b"Internal Server Error"  # no traceback out
