"""Shared by in-process benchmarks: vendor answers captured once from the sandbox, then replayed.

    async with live_sandbox() as (app, sandbox):          # the sandbox in this process, on loopback
        with recording(sandbox.runtime.systems) as batches:
            await AsgiPost(app, body, headers)()           # real vendor calls over HTTP, recorded
    replay = ReplaySystems(sandbox.runtime.systems, batches)   # same answers, no I/O at all

Everything the gateway asks of a vendor goes through `Systems.fetch`, `fetch_entry` or
`fetch_slice` (gateway/systems.py; the per-request loaders read whole answers with `fetch_entry`
and a page's records of a list with `fetch_slice`, both through the upstream cache when there is
one), so recording wraps all three on the instance, and `ReplaySystems` answers them from what
was recorded. That takes the vendors out of a measurement while leaving every gateway layer above
it (per-request loaders and their batching, resolvers, merging, sources) as it runs in production.

The live sandbox has a response cache: a capture request answered from it runs no resolver and
records nothing, so recordings keep what the earlier requests fetched (the first request of a
fresh sandbox always executes). A runtime made for replay should normally have no cache either
(`replay_runtime`): an in-process bench that means to measure execution must not measure
response-cache hits instead. `AsgiPost` calls an ASGI app directly with a
prepared scope: no sockets, no HTTP parsing, the least client-side work per request, identical
for every app it drives.

Quotas apply to every authenticated request, so a bench also needs a client whose quota its load
cannot exhaust (`create_bench_client`: made through the admin GraphQL API with the scopes of the
client it stands in for, then given BENCH_QUOTA as overrides), or metering taken out of an app
altogether (`unmetered(app)`: its endpoint's `Meter` replaced by `UnmeteredMeter`, which does
what the gateway's meter does for a principal without a plan; no gateway code changes).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.systems import Systems
from gateway.upstream import Fetched
from gateway.upstream_store import RecordIndex, Slice, Want

BatchKey = tuple[Any, ...]  # (system id, resource, *args)


@dataclass
class RecordedSlices:
    """What the loaders read of one list by key (`Systems.fetch_slice`): every record and unreadable
    record they were given, and every key and reference they asked for (so a replayed read asking
    for more than was recorded is a bench bug, not an empty answer)."""

    index: RecordIndex = field(default_factory=lambda: RecordIndex({}, {}))
    keys: set[Any] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)
    whole: bool = False  # the index is a whole list: it covers any key

    def add(self, want: Want, got: Slice) -> None:
        self.index.items.update(got.items)
        self.index.errors.update(got.errors)
        self.keys.update(want.keys)
        self.refs.update(want.refs)

    def covers(self, want: Want) -> bool:
        return self.whole or (self.keys.issuperset(want.keys) and self.refs.issuperset(want.refs))


@dataclass
class Recording:
    """The vendor answers a capture read: whole answers (`fetch`, `fetch_entry`) by system, resource
    and arguments, and slices of lists (`fetch_slice`) by system and resource."""

    batches: dict[BatchKey, Any] = field(default_factory=dict)
    slices: dict[tuple[str, Any], RecordedSlices] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.batches) + len(self.slices)

    def __str__(self) -> str:
        return ", ".join(sorted(map(str, [*self.batches, *self.slices])))


@contextmanager
def recording(systems: Systems) -> Iterator[Recording]:
    """Record what the loaders read through `systems`: `fetch` and `fetch_entry` (the latest answer
    per system, resource and arguments; for `fetch_entry`, the answer inside the `Fetched`) and
    `fetch_slice` (every slice of a list, merged: what the request's pages were given).

    Each is wrapped on this instance only: with an upstream cache `fetch_entry` and `fetch_slice`
    do not go through `fetch` (without one they do: then the whole answer is recorded as well).
    """
    recorded = Recording()
    live_fetch = systems.fetch
    live_fetch_entry = systems.fetch_entry
    live_fetch_slice = systems.fetch_slice

    async def fetch(system_id: str, resource: Any, *args: Any) -> Any:
        result = await live_fetch(system_id, resource, *args)
        recorded.batches[(system_id, resource, *args)] = result
        return result

    async def fetch_entry(system_id: str, resource: Any, *args: Any) -> Any:
        fetched = await live_fetch_entry(system_id, resource, *args)
        recorded.batches[(system_id, resource, *args)] = fetched.value
        return fetched

    async def fetch_slice(system_id: str, resource: Any, want: Want) -> Any:
        fetched = await live_fetch_slice(system_id, resource, want)
        recorded.slices.setdefault((system_id, resource), RecordedSlices()).add(want, fetched.value)
        return fetched

    systems.fetch = fetch  # type: ignore[method-assign]  # on this instance only
    systems.fetch_entry = fetch_entry  # type: ignore[method-assign]
    systems.fetch_slice = fetch_slice  # type: ignore[method-assign]
    try:
        yield recorded
    finally:
        del systems.fetch, systems.fetch_entry, systems.fetch_slice  # the class's methods again


class ReplaySystems(Systems):
    """The configured systems of `live`, answering from a `Recording`: `fetch` (and through it, with
    no upstream cache, `fetch_entry`) the recorded whole answer, `fetch_slice` the recorded records
    it wants, from an index made once (as the memory upstream cache keeps one), so a replayed read
    does no vendor mapping and no I/O.

    Health is a snapshot taken now (every source UP after a successful capture) and stays as
    it is: a replayed call records nothing, so `sources` answers the same on every request.
    A resource that was not recorded is a bench bug, reported as such.
    """

    def __init__(self, live: Systems, recorded: Recording) -> None:
        super().__init__(live.config, live.adapters)  # no cache: nothing to bypass the replay
        if getattr(self, "upstream", None) is not None:
            raise RuntimeError("bench: ReplaySystems must not have an upstream cache (it would bypass the replay)")
        self.health = copy.deepcopy(live.health)
        self.recorded = recorded

    async def fetch(self, system_id: str, resource: Any, *args: Any) -> Any:
        try:
            return self.recorded.batches[(system_id, resource, *args)]
        except KeyError:
            raise self._unrecorded(f"{system_id}.{resource}{args}") from None

    async def fetch_slice(self, system_id: str, resource: Any, want: Want) -> Fetched[Slice]:
        slices = self.recorded.slices.get((system_id, resource))
        if slices is None or not slices.covers(want):
            if (system_id, resource) not in self.recorded.batches:
                raise self._unrecorded(f"{system_id}.{resource} slice {want}")
            # the whole list was recorded (a capture without an upstream cache): index it once
            whole = RecordIndex.of(self.recorded.batches[(system_id, resource)], resource.key)
            slices = RecordedSlices(whole, whole=True)
            self.recorded.slices[(system_id, resource)] = slices
        return Fetched(slices.index.slice(want), datetime.now(UTC))

    def _unrecorded(self, what: str) -> RuntimeError:
        return RuntimeError(f"bench: no recorded answer for {what}; recorded: [{self.recorded}]")


def replay_runtime(live: Any, replay: ReplaySystems, **changes: Any) -> Any:
    """`live` (a `Runtime`) answering from `replay`, with no cache at all (`cache=None`): no
    response cache and no persisted-query cache, so every request executes. Other fields as
    given in `changes` (e.g. `config=`, `directory=`)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(live)}
    if "cache" in fields:
        changes.setdefault("cache", None)  # checkouts older than the response cache have no such field
    return dataclasses.replace(live, systems=replay, **changes)


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

    from _serving import loopback_socket, uvicorn_config
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


# --- quotas: a client the bench cannot exhaust, and metering taken out -----------------------------

#: quota overrides for a bench client: far more than any run can spend, and a per-query ceiling
#: above every bench query's estimate (the facilities list with levels estimates just over the
#: `standard` plan's 5000)
BENCH_QUOTA = {"requests": 100_000_000, "cost": 1_000_000_000, "maxQueryCost": 100_000}

CREATE_CLIENT = """\
mutation BenchClient($input: CreateClientInput!) {
  createClient(input: $input) { key client { id name scopes facilities plan } }
}"""
UPDATE_QUOTA = """\
mutation BenchQuota($id: ID!, $input: UpdateClientInput!) {
  updateClient(id: $id, input: $input) { id quota { requests cost maxQueryCost } }
}"""

PostJson = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]


async def create_bench_client(post: PostJson, admin_key: str, name: str, scopes: list[str],
                              facilities: list[str] | None = None, environment: str = "TEST") -> dict[str, Any]:
    """A new client made through the admin GraphQL API (`createClient`, then `updateClient` with
    BENCH_QUOTA as its quota overrides), with the given scopes and facilities.

    `post(body, headers)` sends one GraphQL request to the gateway's /graphql. Returns
    {"id", "key", "name", "scopes", "facilities", "quota"}; raises RuntimeError when the gateway
    refuses (e.g. a checkout without quotas, or no admin key).
    """
    headers = {"content-type": "application/json", "accept": "application/json",
               "authorization": f"Bearer {admin_key}"}

    async def call(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        status, body = await post(orjson.dumps({"query": query, "variables": variables}), headers)
        answer = orjson.loads(body) if body else {}
        if status != 200 or answer.get("errors") or not answer.get("data"):
            raise RuntimeError(f"admin API answered {status}: {body[:500]!r}")
        return answer["data"]

    created = (await call(CREATE_CLIENT, {"input": {
        "name": name, "environment": environment, "scopes": scopes, "facilities": facilities,
        "notes": "benchmark client: a quota no run can exhaust",
    }}))["createClient"]
    updated = (await call(UPDATE_QUOTA, {"id": created["client"]["id"],
                                         "input": {"quotaOverrides": BENCH_QUOTA}}))["updateClient"]
    return {**created["client"], "key": created["key"], "quota": updated["quota"]}


def asgi_post_json(app: Any, path: str = "/graphql") -> PostJson:
    """`post(body, headers)` for `create_bench_client`, through an ASGI app in process."""

    async def post(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        return await AsgiPost(app, body, headers, path)()

    return post


def graphql_endpoint(app: Any) -> Any:
    """The `GraphQLEndpoint` behind an app's /graphql route (what `create_app` built)."""
    for route in app.routes:
        if getattr(route, "path", None) == "/graphql":
            return route.endpoint
    raise RuntimeError("the app has no /graphql route")


def unmetered(app: Any) -> Any:
    """`app` with metering taken out of its /graphql endpoint (`UnmeteredMeter`); returns app."""
    endpoint = graphql_endpoint(app)
    if not hasattr(endpoint, "meter"):
        return app  # a checkout older than metering: nothing to take out
    endpoint.meter = unmetered_meter_class()(endpoint.meter.quotas, endpoint.meter.plans)
    return app


@functools.cache
def unmetered_meter_class() -> type:
    """`UnmeteredMeter` (made on first use: checkouts older than metering have no `Meter`)."""
    from gateway.metering import Meter, MeterCharge, Settled

    class UnmeteredMeter(Meter):
        """The gateway's `Meter` doing what it does for a principal without a plan (authentication
        off): admit charges nothing and returns an unmetered `MeterCharge`, settle returns no headers
        and no `extensions.cost`. Everything else on the request's path stays as it is (cost
        analysis and the actual cost are computed by the endpoint either way)."""

        async def admit(self, principal: Any, analysis: Any, known_cost: int | None = None) -> Any:
            return MeterCharge(principal, None, analysis.cost if known_cost is None else known_cost, None)

        async def settle(self, charge: Any, actual: int) -> Any:
            return Settled({}, {})

        async def count_refused(self, principal: Any) -> dict[str, str]:
            return {}

    return UnmeteredMeter


# --- timing in process: variants measured in alternating rounds ----------------------------------


@dataclass
class Variant:
    """One thing measured: how to send a request, and what the rounds measured (ops, wall s, cpu s)."""

    name: str
    label: str
    post: AsgiPost
    expect_errors: bool = False  # True when every answer must carry errors (e.g. FORBIDDEN fields)
    segments: list[tuple[int, float, float]] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""

    @property
    def ops(self) -> int:
        return sum(s[0] for s in self.segments)

    @property
    def wall_s(self) -> float:
        return sum(s[1] for s in self.segments)

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.wall_s

    @property
    def ms_per_op(self) -> float:
        return 1000 * self.wall_s / self.ops

    @property
    def cpu_ms_per_op(self) -> float:
        return 1000 * sum(s[2] for s in self.segments) / self.ops

    @property
    def cpu_percent(self) -> float:
        return 100 * sum(s[2] for s in self.segments) / self.wall_s

    def segment_rate(self, index: int) -> float:
        ops, wall, _ = self.segments[index]
        return ops / wall


def spread(baseline: Variant, measured: Variant) -> str:
    """The per-round ratios baseline/measured: median and quartiles (how steady the run was)."""
    ratios = sorted(baseline.segment_rate(i) / measured.segment_rate(i) for i in range(len(measured.segments)))
    if len(ratios) < 4:
        return "per round: " + " ".join(f"{r:.2f}" for r in ratios)
    q = statistics.quantiles(ratios, n=4)
    return f"per round: median {q[1]:.2f}, quartiles {q[0]:.2f}-{q[2]:.2f}"


async def run_for(variant: Variant, seconds: float, record: bool = True) -> None:
    """Requests back to back for `seconds` (at least one); one at a time, in this event loop."""
    post = variant.post
    failures, first_failure, ops = 0, "", 0
    cpu0 = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        status, body = await post()
        ops += 1
        if status != 200 or (b'"errors"' in body) is not variant.expect_errors:
            failures += 1
            first_failure = first_failure or f"{status}: {body[:300]!r}"
        now = time.perf_counter()
        if now >= deadline:
            break
    if record:
        variant.segments.append((ops, now - started, time.process_time() - cpu0))
        variant.failures += failures
        variant.first_failure = variant.first_failure or first_failure
