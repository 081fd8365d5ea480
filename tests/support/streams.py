"""Subscriptions, read the same way over every transport (SSE, graphql-transport-ws, graphql-ws)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import websockets

TRANSPORTS = ["sse", "graphql-transport-ws", "graphql-ws"]
#: the README's bound for a revocation (or any other admin change) to reach an open stream
ADMIN_CHANGE_BOUND_S = 1.0
#: what a loaded test machine may add to a bound
SLACK_S = 2.0


async def connect_ws(url: str, protocol: str, payload: dict[str, Any] | None) -> Any:
    """A WebSocket at `url` (ws://…/graphql) that has sent its connection_init."""
    # max_queue=None: a test that stops reading a busy stream can still close it (with a bounded queue
    # the close frame waits behind unread messages until the close timeout)
    ws = await websockets.connect(url, subprotocols=[protocol], max_queue=None)
    await ws.send(orjson.dumps({"type": "connection_init", "payload": payload or {}}).decode())
    return ws


class Stream:
    """One subscription over any transport, read as ("next", payload) until it ends:
    ("error", [errors]), then ("complete", None) and/or ("closed", WebSocket close code or None)."""

    def __init__(self, items: AsyncIterator[tuple[str, Any]]) -> None:
        self.items = items

    async def data(self, timeout: float = 3.0) -> dict[str, Any]:
        """The next payload with data."""
        kind, value = await asyncio.wait_for(anext(self.items), timeout)
        assert kind == "next", (kind, value)
        return value

    async def ending(self, timeout: float) -> tuple[list[dict[str, Any]] | None, list[tuple[str, Any]]]:
        """Read to the end within `timeout`, payloads skipped: the errors it ended with, and how it ended."""
        deadline = time.monotonic() + timeout
        errors, ends = None, []
        while True:
            try:
                kind, value = await asyncio.wait_for(anext(self.items), max(0.0, deadline - time.monotonic()))
            except StopAsyncIteration:
                return errors, ends
            if kind == "error":
                errors = value
            elif kind != "next":
                ends.append((kind, value))


async def _sse_items(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
            if event == "complete":
                yield "complete", None
        elif line.startswith("data: ") and event == "next":
            payload = orjson.loads(line[6:])
            yield ("next", payload) if "data" in payload else ("error", payload["errors"])
    yield "closed", None


async def _ws_items(ws: Any) -> AsyncIterator[tuple[str, Any]]:
    try:
        while True:
            message = orjson.loads(await ws.recv())
            if message["type"] in ("next", "data"):
                yield "next", message["payload"]
            elif message["type"] == "error":
                yield "error", message["payload"] if isinstance(message["payload"], list) else [message["payload"]]
            elif message["type"] == "complete":
                yield "complete", None
    except websockets.ConnectionClosed as closed:
        yield "closed", closed.rcvd.code if closed.rcvd else None


@asynccontextmanager
async def open_stream(base_url: str, transport: str, credential: str, query: str,
                      variables: dict[str, Any] | None = None) -> AsyncIterator[Stream]:
    """A subscription at `base_url` over `transport` (one of TRANSPORTS), with a key or an access token."""
    if transport == "sse":
        async with httpx.AsyncClient(timeout=30) as http, http.stream(
                "POST", f"{base_url}/graphql/stream", json={"query": query, "variables": variables},
                headers={"authorization": f"Bearer {credential}", "accept": "text/event-stream"}) as response:
            assert response.status_code == 200, await response.aread()
            yield Stream(_sse_items(response))
        return
    ws = await connect_ws(base_url.replace("http", "ws", 1) + "/graphql", transport, {"Authorization": f"Bearer {credential}"})
    try:
        while (message := orjson.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] in ("ka", "ping"):
            pass
        assert message["type"] == "connection_ack", message
        await ws.send(orjson.dumps({"type": "start" if transport == "graphql-ws" else "subscribe", "id": "1",
                                    "payload": {"query": query, "variables": variables}}).decode())
        yield Stream(_ws_items(ws))
    finally:
        await ws.close()


def assert_ended_by(ended: tuple[list[dict[str, Any]] | None, list[tuple[str, Any]]], transport: str, code: str,
                    reason: str) -> None:
    """A stream's last word (`Stream.ending()`) is the coded reason, then the end its transport gives a
    refusal: SSE `complete` and the end of the response, a WebSocket close 4403."""
    errors, ends = ended
    assert errors is not None and errors[0]["extensions"]["code"] == code and reason in errors[0]["message"], errors
    assert ends == ([("complete", None), ("closed", None)] if transport == "sse" else [("closed", 4403)]), ends
