"""Shared by in-process benchmarks: vendor answers captured once from the sandbox, then replayed.

    async with live_sandbox() as (app, sandbox):          # the sandbox in this process, on loopback
        with recording(sandbox.runtime.systems) as batches:
            await AsgiPost(app, body, headers)()           # real vendor calls over HTTP, recorded
    replay = ReplaySystems(sandbox.runtime.systems, batches)   # same answers, no I/O at all

Everything the gateway asks of a vendor goes through `Systems.fetch` (gateway/systems.py), so a
`Systems` whose `fetch` returns the recorded batch takes the vendors out of a measurement while
leaving every gateway layer above it (per-request loaders and their indexing, resolvers,
merging, sources) as it runs in production. `AsgiPost` calls an ASGI app directly with a
prepared scope: no sockets, no HTTP parsing, the least client-side work per request, identical
for every app it drives.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from gateway.systems import Systems

BatchKey = tuple[Any, ...]  # (system id, resource, *args)


@contextmanager
def recording(systems: Systems) -> Iterator[dict[BatchKey, Any]]:
    """Record what `systems.fetch` returns (the latest answer per system, resource and arguments)."""
    batches: dict[BatchKey, Any] = {}
    live_fetch = systems.fetch

    async def fetch(system_id: str, resource: str, *args: Any) -> Any:
        result = await live_fetch(system_id, resource, *args)
        batches[(system_id, resource, *args)] = result
        return result

    systems.fetch = fetch  # type: ignore[method-assign]  # on this instance only
    try:
        yield batches
    finally:
        del systems.fetch  # the class's method again


class ReplaySystems(Systems):
    """The configured systems of `live`, whose `fetch` answers from recorded batches.

    Health is a snapshot taken now (every source UP after a successful capture) and stays as
    it is: a replayed call records nothing, so `sources` answers the same on every request.
    A resource that was not recorded is a bench bug, reported as such.
    """

    def __init__(self, live: Systems, batches: dict[BatchKey, Any]) -> None:
        super().__init__(live.config, live.adapters)
        self.health = copy.deepcopy(live.health)
        self.batches = dict(batches)

    async def fetch(self, system_id: str, resource: str, *args: Any) -> Any:
        try:
            return self.batches[(system_id, resource, *args)]
        except KeyError:
            raise RuntimeError(f"bench: no recorded answer for {system_id}.{resource}{args}; "
                               f"recorded: {sorted(map(str, self.batches))}") from None


class AsgiPost:
    """POST one body to an ASGI app in process; `await post()` → (status, response body).

    The scope is built once; each call copies it (apps may write into it) and feeds the body in
    one `http.request` message.
    """

    def __init__(self, app: Any, body: bytes, headers: dict[str, str], path: str = "/graphql") -> None:
        self.app = app
        self.body = body
        raw_headers = [(b"host", b"bench.local"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }

    async def __call__(self) -> tuple[int, bytes]:
        request = {"type": "http.request", "body": self.body, "more_body": False}
        pending = [request]
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            return pending.pop() if pending else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(dict(self.scope), receive, send)
        return status, b"".join(chunks)


@asynccontextmanager
async def live_sandbox(keys_file: Path | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """The sandbox (gateway + simulated vendors over real loopback HTTP) served in this event loop.

    Yields (app, sandbox) once its lifespan has run, so the demo clients are seeded and
    `sandbox.clients[name]["key"]` works. On exit the server stops and the lifespan closes the
    runtime's vendor connections (a `ReplaySystems` made from it never uses them).
    """
    import uvicorn

    from facilities_bench import loopback_socket, uvicorn_config
    from gateway.sandbox import build_sandbox

    sock = loopback_socket()
    app, sandbox = build_sandbox(f"http://127.0.0.1:{sock.getsockname()[1]}", keys_file=keys_file)
    server = uvicorn.Server(uvicorn_config(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the sandbox server stopped while starting")
            await asyncio.sleep(0.01)
        yield app, sandbox
    finally:
        server.should_exit = True
        await task
