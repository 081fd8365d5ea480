"""Benchmark: what the caches buy, in one run (the four figures of the cache issue, each beside its aim).

    .venv/bin/python bench/cache_bench.py                       # ~2 min
    .venv/bin/python bench/cache_bench.py --poll-seconds 10 --duration 4 --exec-duration 1.5 --hop-calls 800
    .venv/bin/python bench/cache_bench.py --only edge,execution # some parts only
    .venv/bin/python bench/cache_bench.py --profile memory      # the cached edge in process: cProfile + its steps timed
    .venv/bin/python bench/cache_bench.py --profile-http redis  # cProfile inside a gateway child under HTTP load
    .venv/bin/python bench/cache_bench.py --profile execution   # cProfile of the Executor's uncached execution

1. Vendor amplification. The sandbox (gateway + six simulated vendors, real HTTP) in a child
   process; --pollers dashboards (asyncio tasks, each on its own keep-alive connection, phases
   spread over the second) each post the dashboard occupancy query once a second for
   --poll-seconds, from a cold cache, as three bench clients (three permission signatures:
   the stand-ins of the demo clients `dashboard`, `driver-app` and `admin`, made through the
   admin API with a quota no run can exhaust). Vendor calls are counted by the sandbox's
   control API (reset first). "Direct polling" is what those polls would have cost the vendors
   without parkgate: polls x the vendor HTTP calls of ONE uncached query, measured on a gateway
   built with `cache.backend: none` on the same simulators.
2. The cached facilities query through the whole edge (authentication with a real API key,
   cost analysis, quota admit/settle, response cache hit, orjson) against a bare Starlette
   endpoint returning the same bytes. Three child processes, the same uvicorn settings and the
   same HTTP load, alternating rounds: the gateway on `store.backend: memory`, the gateway on
   `store.backend: redis` (client store, quotas, response and upstream cache in a throwaway
   redis-server this bench starts; its client made with `python -m gateway clients create`),
   and bare Starlette. The gateways' vendors are the sandbox's simulators (another process).
3. Uncached execution, in process: the gateway's `Executor` (cached parse/validate) against
   stock strawberry's `schema.execute` on the SAME schema (`resolvers.schema.schema`), the same
   request context and per-request loaders answering from replayed vendor answers; no response
   cache. Stock strawberry as shipped (no extensions), and with ParserCache/ValidationCache.
4. The adapter's HTTP hop: bench/http_hop_bench.py's measurement (VendorHTTP vs raw aiohttp,
   client CPU per call against a simulator in a child process), briefly.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # for tests.support; last, so that PYTHONPATH's checkout still supplies gateway/

from _replay import BENCH_QUOTA, ReplaySystems, create_bench_client, live_sandbox, recording, replay_runtime  # noqa: E402
from facilities_bench import (  # noqa: E402
    QUERY as FACILITIES_QUERY,
    SANDBOX_SYSTEM_IDS,
    LoadResult,
    Server,
    code_under_test,
    combine,
    describe,
    differing_values,
    load_average,
    loopback_socket,
    process_cpu_seconds,
    run_load,
    shape_differences,
    stop_server,
    uvicorn_config,
    watch_parent,
)
from quotas_bench import QUERY as OCCUPANCY_QUERY  # noqa: E402
from quotas_bench import redis_commands, throwaway_redis  # noqa: E402

FACILITIES_BODY = orjson.dumps({"query": FACILITIES_QUERY, "operationName": "Facilities"})
OCCUPANCY_BODY = orjson.dumps({"query": OCCUPANCY_QUERY, "operationName": "Occupancy"})
JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}

AIM_AMPLIFICATION = 100.0
AIM_EDGE_MEMORY = 0.75
AIM_EDGE_REDIS = 0.5
AIM_EXECUTION = 3.0  # issue 14: uncached >= 3x stock strawberry
AIM_HOP = 0.5

#: the demo clients whose stand-ins poll (three permission signatures, all facilities)
POLLING_CLIENTS = ("dashboard", "driver-app", "admin")
#: the demo client whose scopes the edge's bench client has (it may read THE query everywhere)
EDGE_CLIENT = "driver-app"
BENCH_PLAN = "bench"
BENCH_PLAN_LIMITS = {"requests": BENCH_QUOTA["requests"], "cost": BENCH_QUOTA["cost"],
                     "max_query_cost": BENCH_QUOTA["maxQueryCost"]}
PARTS = ("amplification", "edge", "execution", "hop")


# --- child processes: the sandbox, a gateway from a YAML file, bare Starlette ----------------------


def child_main(kind: str, payload: dict[str, Any], conn: Any) -> None:
    """Child process: bind a loopback port, build the app, report, serve until terminated."""
    import uvicorn

    sock = loopback_socket()
    port = sock.getsockname()[1]
    report: dict[str, Any] = {"port": port}
    if kind == "sandbox":
        app, report["sandbox"] = sandbox_app(f"http://127.0.0.1:{port}", Path(payload["keys_file"]))
    elif kind == "gateway":
        app = gateway_app(payload)
    elif kind == "bare":
        app = bare_app(payload["body"], payload["headers"], payload.get("burn_us", 0))
        if payload.get("profile_out"):
            app.router.routes.append(profile_route(payload["profile_out"]))
    else:
        raise ValueError(kind)
    conn.send(report)
    conn.close()
    watch_parent()
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


def stats_route(app: Any) -> Any:
    """GET /bench/stats: the response cache's hits and misses and the upstream cache's counters.

    Added after every gateway route, so /graphql matches first and pays nothing for it."""
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def stats(request: Any) -> Any:
        endpoint = app.state.graphql
        upstream = app.state.runtime.systems.upstream
        return JSONResponse({"responses": {"hits": endpoint.responses.hits, "misses": endpoint.responses.misses},
                             "upstream": upstream.metrics_dict() if upstream is not None else {}})

    return Route("/bench/stats", stats, methods=["GET"])


def sandbox_app(base_url: str, keys_file: Path) -> tuple[Any, dict[str, Any]]:
    """The sandbox, and what another gateway needs to reach its simulators (resolved credentials)."""
    from gateway.sandbox import build_sandbox

    app, sandbox = build_sandbox(base_url, keys_file=keys_file)
    app.router.routes.append(stats_route(app))
    systems = {sid: {"dialect": s.dialect, "base_url": s.base_url, "credentials": dict(s.credentials)}
               for sid, s in sandbox.config.systems.items()}
    facilities = {fid: f.model_dump(exclude_none=True) for fid, f in sandbox.config.facilities.items()}
    return app, {"systems": systems, "facilities": facilities}


def gateway_app(payload: dict[str, Any]) -> Any:
    """`create_app(Runtime.from_config(load_config(yaml)), schema)`, as `parkgate serve` builds it, plus
    /bench/stats. With the memory store its bench client is made at start (written to key_out)."""
    from gateway.app import create_app
    from gateway.auth.keys import Environment
    from gateway.config import load_config
    from gateway.runtime import Runtime
    from resolvers.schema import schema

    settings = load_config(payload["config"], environ=payload["env"])
    runtime = Runtime.from_config(settings)
    client = payload.get("client")

    async def make_client() -> None:
        if client is None or settings.store.backend != "memory":
            return
        issued = await runtime.admin.create_client(
            "bench", name=client["name"], environment=Environment.TEST, scopes=client["scopes"], plan=BENCH_PLAN,
            notes="cache bench: a plan no run can exhaust")
        Path(client["key_out"]).write_text(json.dumps({"key": issued.key, "client_id": issued.client.id}))

    app = create_app(runtime, schema, on_startup=[make_client])
    app.router.routes.append(stats_route(app))
    if payload.get("profile_out"):
        app.router.routes.append(profile_route(payload["profile_out"]))
    return app


def profile_route(out: str) -> Any:
    """POST /bench/profile with body `start` or `stop`: cProfile this server process (stop dumps to `out`)."""
    import cProfile

    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    profiler = cProfile.Profile()

    async def control(request: Any) -> Any:
        action = (await request.body()).decode()
        if action == "start":
            profiler.enable()
        elif action == "stop":
            profiler.disable()
            profiler.dump_stats(out)
        return PlainTextResponse(action)

    return Route("/bench/profile", control, methods=["POST"])


def bare_app(body: bytes, headers: dict[str, str], burn_us: float = 0) -> Any:
    """A bare Starlette endpoint: reads the request body, answers the captured bytes (and headers).

    `burn_us` > 0 makes it spin that long per request first (a control: a server as slow as the
    gateway but doing nothing else, to tell the gateway's own work from what any slower server
    pays per request at lower throughput on this machine)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    media_type = headers.pop("content-type", "application/json")

    async def graphql(request: Request) -> Response:
        await request.body()
        if burn_us:
            until = time.perf_counter() + burn_us / 1e6
            while time.perf_counter() < until:
                pass
        return Response(body, media_type=media_type, headers=headers)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])])


def start_child(ctx: Any, name: str, kind: str, payload: dict[str, Any], timeout_s: float = 40.0) -> tuple[Server, dict[str, Any]]:
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=child_main, args=(kind, payload, child), name=f"cache-bench-{name}", daemon=True)
    process.start()
    child.close()
    server = Server(name, process, "")
    try:
        if not parent.poll(timeout_s):
            raise RuntimeError(f"{name}: no port reported in {timeout_s:.0f} s")
        report = parent.recv()
    except EOFError:
        raise RuntimeError(f"{name}: exited before it started (exit code {process.exitcode})") from None
    finally:
        parent.close()
    server.base_url = f"http://127.0.0.1:{report['port']}"
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while True:
            if not process.is_alive():
                raise RuntimeError(f"{name}: exited while starting (exit code {process.exitcode})")
            try:
                if client.get(f"{server.base_url}/healthz").status_code == 200:
                    return server, report
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: no answer on /healthz in {timeout_s:.0f} s")
            time.sleep(0.05)


# --- configuration files for gateways on the sandbox's simulators ---------------------------------


@dataclass
class Deployment:
    """A YAML configuration for `parkgate serve`-style gateways whose systems are the sandbox's simulators."""

    config: Path
    env: dict[str, str]

    def cli(self, *args: str) -> Any:
        """`python -m gateway <args> --config <file>`, JSON out."""
        env = {**self.env, "PATH": os.environ.get("PATH", "")}
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        result = subprocess.run([sys.executable, "-m", "gateway", *args, "--config", str(self.config)],
                                capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"parkgate {' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-1000:]}")
        return json.loads(result.stdout)


def write_deployment(sandbox: dict[str, Any], directory: Path, name: str, *, store: dict[str, Any] | None = None,
                     cache_backend: str | None = None) -> Deployment:
    """Like tests/support/processes.py `deployment_config`: credentials as ${VARIABLES}, a `bench` plan."""
    from gateway.config import DEFAULT_PLANS
    from tests.support.processes import systems_by_variables

    systems, env = systems_by_variables(
        ((sid, s["dialect"], s["base_url"], s["credentials"]) for sid, s in sandbox["systems"].items()), "BENCH_")
    document: dict[str, Any] = {
        "environment": "test",
        "systems": systems,
        "facilities": sandbox["facilities"],
        "plans": {**{n: p.model_dump() for n, p in DEFAULT_PLANS.items()}, BENCH_PLAN: BENCH_PLAN_LIMITS},
    }
    if store is not None:
        document["store"] = store
        env["BENCH_KEY_PEPPER"] = secrets.token_urlsafe(32)
        document["auth"] = {"key_pepper": "${BENCH_KEY_PEPPER}"}
    if cache_backend is not None:
        document["cache"] = {"backend": cache_backend}
    import yaml

    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return Deployment(path, env)


# --- small HTTP helpers ------------------------------------------------------------------------------


def post_json(url: str, body: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], httpx.Headers, bytes]:
    response = httpx.post(url, content=body, headers=headers, timeout=30.0)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:500]}")
    answer = orjson.loads(response.content)
    if answer.get("errors") or not answer.get("data"):
        raise RuntimeError(f"{url} answered with errors: {response.text[:1000]}")
    return answer, response.headers, response.content


def vendor_totals(server: Server) -> dict[str, int]:
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        return {s: client.get(f"/sandbox/systems/{s}/stats").json()["total"] for s in SANDBOX_SYSTEM_IDS}


def reset_vendor_stats(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        for s in SANDBOX_SYSTEM_IDS:
            client.post(f"/sandbox/systems/{s}/stats/reset").raise_for_status()


def bench_stats(server: Server) -> dict[str, Any]:
    return httpx.get(f"{server.base_url}/bench/stats", timeout=5.0).json()


def by_system(calls: dict[str, int | float], scale: float = 1.0) -> str:
    return ", ".join(f"{s} {n / scale:g}" for s, n in calls.items() if n) or "none"


async def stand_in_clients(sandbox: Server, keys_file: Path, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """For each demo client named, a bench client with its scopes and facilities and BENCH_QUOTA
    (made through the admin GraphQL API as the sandbox's `admin`)."""
    demo = orjson.loads(keys_file.read_bytes())
    made = {}
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def post(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            response = await client.post(f"{sandbox.base_url}/graphql", content=body, headers=headers)
            return response.status_code, response.content

        for name in names:
            info = demo[name]
            made[name] = await create_bench_client(post, demo["admin"]["key"], f"bench-poll-{name}",
                                                   list(info["scopes"]), info.get("facilities"))
    return made


# --- part 1: vendor amplification ------------------------------------------------------------------


@dataclass
class PollResult:
    polls: int = 0
    failures: int = 0
    late: int = 0
    first_failure: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    timeline: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (seconds since start, cumulative calls)
    wall_s: float = 0.0
    server_cpu_s: float | None = None

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def poll_dashboards(sandbox: Server, keys: list[str], pollers: int, seconds: float, seed: int = 7) -> PollResult:
    """`pollers` dashboards, each posting the occupancy query once a second (fixed rate, its own
    phase in the second; a poll answered late is followed at once by the next) for `seconds`."""
    import aiohttp

    result = PollResult()
    rng = random.Random(seed)
    url = f"{sandbox.base_url}/graphql"
    connector = aiohttp.TCPConnector(limit=pollers + 4)  # one keep-alive connection per dashboard
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        start = time.perf_counter() + 0.1
        end = start + seconds

        async def dashboard(index: int) -> None:
            headers = {**JSON_HEADERS, "authorization": f"Bearer {keys[index % len(keys)]}"}
            due = start + rng.random()
            while due < end:
                pause = due - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                sent = time.perf_counter()
                async with session.post(url, data=OCCUPANCY_BODY, headers=headers) as response:
                    status, body = response.status, await response.read()
                result.latencies_ms.append((time.perf_counter() - sent) * 1000)
                result.polls += 1
                if status != 200 or b'"errors"' in body:
                    result.failures += 1
                    result.first_failure = result.first_failure or f"{status}: {body[:300]!r}"
                due += 1.0
                if due < time.perf_counter():
                    result.late += 1
                    due = time.perf_counter()

        async def watch() -> None:  # cumulative vendor calls every 5 s (one GET per system to the control API)
            async with aiohttp.ClientSession() as control:
                mark = start
                while True:
                    mark += 5.0
                    await asyncio.sleep(max(0.0, mark - time.perf_counter()))
                    totals = {}
                    for s in SANDBOX_SYSTEM_IDS:
                        async with control.get(f"{sandbox.base_url}/sandbox/systems/{s}/stats") as response:
                            totals[s] = (await response.json())["total"]
                    result.timeline.append((mark - start, totals))

        watcher = asyncio.create_task(watch())
        cpu0 = process_cpu_seconds(sandbox.process.pid)
        await asyncio.gather(*(dashboard(i) for i in range(pollers)))
        result.wall_s = time.perf_counter() - start
        cpu1 = process_cpu_seconds(sandbox.process.pid)
        watcher.cancel()
        try:
            await watcher
        except asyncio.CancelledError:
            pass
    result.server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return result


def uncached_calls_per_query(ctx: Any, sandbox: Server, report: dict[str, Any], scratch: Path,
                             servers: list[Server]) -> tuple[dict[str, int], dict[str, int]]:
    """Vendor HTTP calls of ONE occupancy query on a gateway with `cache.backend: none` (same simulators):
    (a steady query's, the first query's). The first may add one-time calls (a token, a listing an
    adapter keeps); direct polling is counted at the steady rate."""
    deployment = write_deployment(report["sandbox"], scratch, "uncached", cache_backend="none")
    key_out = scratch / "uncached-key.json"
    client = {"name": "bench-uncached", "scopes": ["facilities:read", "occupancy:read"], "key_out": str(key_out)}
    gateway, _ = start_child(ctx, "uncached", "gateway",
                             {"config": str(deployment.config), "env": deployment.env, "client": client})
    servers.append(gateway)
    try:
        headers = {**JSON_HEADERS, "authorization": f"Bearer {json.loads(key_out.read_text())['key']}"}
        reset_vendor_stats(sandbox)
        post_json(gateway.graphql_url, OCCUPANCY_BODY, headers)  # connections, any first-call work
        first = vendor_totals(sandbox)
        counts = []
        for _ in range(2):
            reset_vendor_stats(sandbox)
            post_json(gateway.graphql_url, OCCUPANCY_BODY, headers)
            counts.append(vendor_totals(sandbox))
        if counts[0] != counts[1]:
            print(f"  note: two uncached queries cost different vendor calls: {counts}; using the larger")
        return max(counts, key=lambda c: sum(c.values())), first
    finally:
        stop_server(gateway)
        servers.remove(gateway)


def amplification(args: argparse.Namespace, ctx: Any, sandbox: Server, report: dict[str, Any], keys_file: Path,
                  scratch: Path, servers: list[Server]) -> None:
    print(f"\n[1] vendor amplification: {args.pollers} dashboards polling the occupancy query once a second "
          f"for {args.poll_seconds:g} s (load average {load_average()})")
    per_query, first = uncached_calls_per_query(ctx, sandbox, report, scratch, servers)
    stand_ins = asyncio.run(stand_in_clients(sandbox, keys_file, POLLING_CLIENTS))
    keys = [stand_ins[name]["key"] for name in POLLING_CLIENTS]
    print(f"  one uncached query (gateway with cache.backend: none on the same simulators): "
          f"{sum(per_query.values())} vendor HTTP calls ({by_system(per_query)}); the first query of that fresh "
          f"gateway made {sum(first.values())} ({by_system(first)}): one-time calls are not counted as polling cost")
    print(f"  pollers: {', '.join(f'bench-poll-{n}' for n in POLLING_CLIENTS)} in turn (three permission "
          f"signatures, every facility), from a cold cache; stats reset first")
    reset_vendor_stats(sandbox)
    before = bench_stats(sandbox)
    polled = asyncio.run(poll_dashboards(sandbox, keys, args.pollers, args.poll_seconds))
    time.sleep(0.5)  # background refreshes still in flight
    actual = vendor_totals(sandbox)
    after = bench_stats(sandbox)
    hits = after["responses"]["hits"] - before["responses"]["hits"]
    misses = after["responses"]["misses"] - before["responses"]["misses"]
    upstream = {s: m.get("upstream_calls", 0) for s, m in after["upstream"].items()}
    total_actual = sum(actual.values())
    direct = polled.polls * sum(per_query.values())
    cpu = "n/a" if polled.server_cpu_s is None else f"{100 * polled.server_cpu_s / polled.wall_s:.0f}%"
    print(f"  polls answered: {polled.polls} ({polled.polls / polled.wall_s:.1f}/s), {polled.failures} failed, "
          f"{polled.late} late (> 1 s); latency p50 {polled.percentile(0.5):.1f} ms, p95 {polled.percentile(0.95):.1f} ms, "
          f"max {max(polled.latencies_ms, default=0):.0f} ms; sandbox CPU {cpu}")
    if polled.failures:
        print(f"  WARNING: failed polls, first: {polled.first_failure}")
    print(f"  response cache: {hits} hits, {misses} misses; upstream cache vendor calls: {by_system(upstream)}")
    windows, previous = [], dict.fromkeys(SANDBOX_SYSTEM_IDS, 0)
    for at, totals in polled.timeline:
        windows.append(f"{at - 5:.0f}-{at:.0f}s: {sum(totals.values()) - sum(previous.values())}")
        previous = totals
    print(f"  vendor calls per 5 s window: {'; '.join(windows)}")
    print(f"  vendor calls, direct polling: {direct} (= {polled.polls} polls x {sum(per_query.values())} calls of one uncached query)")
    print(f"  vendor calls through parkgate: {total_actual} ({by_system(actual)})")
    ratio = direct / total_actual if total_actual else float("inf")
    print(f"  vendor amplification = {ratio:.0f}x fewer vendor calls (aim >= {AIM_AMPLIFICATION:.0f}x)"
          f"{'' if ratio >= AIM_AMPLIFICATION else '   MISSED'}")


# --- part 2: the cached edge against bare Starlette -------------------------------------------------


@asynccontextmanager
async def http_poster(url: str, body: bytes, headers: dict[str, str], concurrency: int) -> AsyncIterator[Callable[[], Awaitable[tuple[int, bytes]]]]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def post() -> tuple[int, bytes]:
            async with session.post(url, data=body, headers=headers) as response:
                return response.status, await response.read()

        yield post


async def measure(server: Server, headers: dict[str, str], concurrency: int, seconds: float, warmup_s: float) -> LoadResult:
    async with http_poster(server.graphql_url, FACILITIES_BODY, headers, concurrency) as post:
        if warmup_s > 0:
            await run_load(post, concurrency, warmup_s, None)
        return await run_load(post, concurrency, seconds, server.process.pid)


@dataclass
class EdgeTarget:
    name: str
    label: str
    server: Server
    headers: dict[str, str]
    runs: list[LoadResult] = field(default_factory=list)
    stats_before: dict[str, Any] | None = None
    hits: int = 0
    misses: int = 0
    redis_commands: dict[str, int] = field(default_factory=dict)
    redis_reads: int = 0  # read events of redis-server: one per round trip from a client


def redis_reads(url: str) -> int:
    """INFO stats `total_reads_processed`: how many times redis-server read from a client socket, server-wide
    (a pipeline or a script is one read, so this counts round trips; the INFO asking for it is one too)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2.0)
    try:
        return int(client.info("stats")["total_reads_processed"])
    finally:
        client.close()


def edge(args: argparse.Namespace, ctx: Any, sandbox: Server, report: dict[str, Any], scratch: Path,
         servers: list[Server], redis_url: str) -> None:
    from gateway.sandbox import DEMO_CLIENTS

    scopes = [s.value for s in DEMO_CLIENTS[EDGE_CLIENT][0]]
    print(f"\n[2] the cached facilities query through the whole edge vs bare Starlette "
          f"(load average {load_average()})")
    memory = write_deployment(report["sandbox"], scratch, "memory")
    key_out = scratch / "memory-key.json"
    memory_gw, _ = start_child(ctx, "gateway-memory", "gateway", {
        "config": str(memory.config), "env": memory.env,
        "client": {"name": "bench-facilities", "scopes": scopes, "key_out": str(key_out)}})
    servers.append(memory_gw)
    memory_key = json.loads(key_out.read_text())["key"]

    prefix = f"cache-bench-{uuid.uuid4().hex[:8]}:"
    redis_dep = write_deployment(report["sandbox"], scratch, "redis",
                                 store={"backend": "redis", "redis_url": redis_url, "prefix": prefix})
    scope_args = [arg for s in scopes for arg in ("--scope", s)]
    created = redis_dep.cli("clients", "create", "--name", "bench-facilities", "--env", "test", *scope_args,
                            "--plan", BENCH_PLAN, "--notes", "cache bench: a plan no run can exhaust")
    redis_key = created["key"]
    redis_gw, _ = start_child(ctx, "gateway-redis", "gateway", {"config": str(redis_dep.config), "env": redis_dep.env})
    servers.append(redis_gw)

    targets = {
        "memory": EdgeTarget("memory", "gateway, store memory (auth+quota+cost+response cache)", memory_gw,
                             {**JSON_HEADERS, "authorization": f"Bearer {memory_key}"}),
        "redis": EdgeTarget("redis", "gateway, store redis  (store, quotas, caches in Redis)", redis_gw,
                            {**JSON_HEADERS, "authorization": f"Bearer {redis_key}"}),
    }
    answers = {}
    for target in targets.values():
        post_json(target.server.graphql_url, FACILITIES_BODY, target.headers)  # executes: fills both caches
        before = bench_stats(target.server)["responses"]
        answers[target.name] = post_json(target.server.graphql_url, FACILITIES_BODY, target.headers)
        after = bench_stats(target.server)["responses"]
        if after["hits"] != before["hits"] + 1:
            raise RuntimeError(f"{target.name}: the second facilities query was not a response-cache hit "
                               f"({before} -> {after}); nothing cached to measure")
    answer, answer_headers, raw = answers["memory"]
    skip = {"date", "server", "content-length", "transfer-encoding", "connection"}
    bare_headers = {k: v for k, v in answer_headers.items() if k.lower() not in skip}
    bare, _ = start_child(ctx, "bare", "bare", {"body": raw, "headers": bare_headers})
    servers.append(bare)
    targets["bare"] = EdgeTarget("bare", "bare Starlette, the same bytes", bare, dict(JSON_HEADERS))
    if args.control_burn_us:
        control, _ = start_child(ctx, "control", "bare", {"body": raw, "headers": dict(bare_headers),
                                                          "burn_us": args.control_burn_us})
        servers.append(control)
        targets["control"] = EdgeTarget("control", f"control: bare + {args.control_burn_us:g} us spin per request",
                                        control, dict(JSON_HEADERS))
    bare_answer = post_json(bare.graphql_url, FACILITIES_BODY, JSON_HEADERS)[0]
    for name in ("memory", "redis"):
        differences = shape_differences(answers[name][0], bare_answer)
        if differences:
            raise RuntimeError(f"{name} and bare answer different shapes: {differences[:5]}")
    moved = sorted({p.removeprefix("data.facilities.edges[].node.")
                    for p in differing_values(answers["redis"][0], bare_answer)})
    facilities = len(answer["data"]["facilities"]["edges"])
    print(f"  THE facilities query: {facilities} facilities, {len(raw)} bytes; bench client with {EDGE_CLIENT}'s scopes "
          f"on plan `{BENCH_PLAN}` (memory: made at start; Redis: `python -m gateway clients create`)")
    print(f"  all three answer the same shape (values that differ from the captured bytes: {', '.join(moved) or 'none'}); "
          f"both gateways' second answer was a response-cache hit")
    print(f"  aiohttp, concurrency {args.concurrency}, {args.warmup:g} s warm-up then {args.duration:g} s per target "
          f"in {args.rounds} alternating rounds (0.5 s warm-up before later rounds)")

    order = list(targets)
    segment = args.duration / args.rounds
    for round_index in range(args.rounds):
        warmup = args.warmup if round_index == 0 else min(args.warmup, 0.5)
        rotation = order[round_index % len(order):] + order[:round_index % len(order)]
        for name in rotation:
            target = targets[name]
            target.runs.append(asyncio.run(measure_with_stats(target, args.concurrency, segment, warmup, redis_url)))
    for name, target in targets.items():
        run = combine(target.runs)
        extra = ""
        if name in ("memory", "redis"):
            total = target.hits + target.misses
            extra = f"\n      response cache over the measured rounds: {target.hits} hits, {target.misses} misses " \
                    f"({100 * target.hits / max(1, total):.2f}% hits; a miss executes the query: its maxAge is 5 s)"
        if name == "redis":
            per = {c: n / max(1, run.requests) for c, n in sorted(target.redis_commands.items(), key=lambda i: -i[1])}
            extra += (f"\n      Redis commands per request (INFO commandstats, Lua scripts' own included): {sum(per.values()):.1f}: "
                      + ", ".join(f"{c} {n:.2f}" for c, n in per.items() if n >= 0.005)
                      + f"\n      Redis round trips per request (INFO stats total_reads_processed): "
                      f"{target.redis_reads / max(1, run.requests):.2f}")
        cpu_ms = f"; {1000 * run.server_cpu_s / run.requests:.2f} ms server CPU/request" if run.server_cpu_s else ""
        print(f"  {target.label:<56} {describe(run)}{cpu_ms}{extra}")
    bare_run = combine(targets["bare"].runs)
    for name, aim in (("memory", AIM_EDGE_MEMORY), ("redis", AIM_EDGE_REDIS)):
        run = combine(targets[name].runs)
        ratio = run.rps / bare_run.rps
        per_round = "  ".join(f"{g.rps / b.rps:.2f}" for g, b in zip(targets[name].runs, targets["bare"].runs, strict=True))
        cpu = ""
        if run.server_cpu_s and bare_run.server_cpu_s:
            cpu = (f"; by server CPU per request: {(bare_run.server_cpu_s / bare_run.requests) / (run.server_cpu_s / run.requests):.2f}x")
        print(f"  cached edge, {name:<6} = {ratio:.2f}x bare Starlette throughput (aim >= {aim}x)"
              f"{'' if ratio >= aim else '   MISSED'}   [per round: {per_round}{cpu}]")
    failed = [n for n, t in targets.items() if any(r.failures for r in t.runs)]
    if failed:
        print(f"  WARNING: requests failed on {', '.join(failed)}; the figures are not comparable")
    busy = [n for n, t in targets.items() if (combine(t.runs).server_cpu_percent or 100) < 90]
    if busy:
        print(f"  note: {', '.join(busy)} server below 90% CPU (load average {load_average()}): the machine was busy "
              f"or the load too light; ratios are noisier")


async def measure_with_stats(target: EdgeTarget, concurrency: int, seconds: float, warmup_s: float, redis_url: str) -> LoadResult:
    """Warm up, read the counters, measure, read them again (so the warm-up is not counted)."""
    async with http_poster(target.server.graphql_url, FACILITIES_BODY, target.headers, concurrency) as post:
        if warmup_s > 0:
            await run_load(post, concurrency, warmup_s, None)
        loop = asyncio.get_running_loop()
        before = await loop.run_in_executor(None, bench_stats, target.server) if target.name in ("memory", "redis") else None
        commands = await loop.run_in_executor(None, redis_commands, redis_url) if target.name == "redis" else {}
        reads = await loop.run_in_executor(None, redis_reads, redis_url) if target.name == "redis" else 0
        result = await run_load(post, concurrency, seconds, target.server.process.pid)
        if before is not None:
            after = await loop.run_in_executor(None, bench_stats, target.server)
            target.hits += after["responses"]["hits"] - before["responses"]["hits"]
            target.misses += after["responses"]["misses"] - before["responses"]["misses"]
        if target.name == "redis":
            target.redis_reads += await loop.run_in_executor(None, redis_reads, redis_url) - reads - 1  # less its own INFO
            later = await loop.run_in_executor(None, redis_commands, redis_url)
            for command, calls in later.items():
                if command != "info":
                    target.redis_commands[command] = target.redis_commands.get(command, 0) + calls - commands.get(command, 0)
        return result


# --- part 3: uncached execution, gateway Executor vs stock strawberry ---------------------------------


@dataclass
class ExecVariant:
    name: str
    label: str
    op: Callable[[], Awaitable[Any]]
    ops: int = 0
    wall_s: float = 0.0
    rounds: list[float] = field(default_factory=list)  # ms/op per round

    @property
    def ms_per_op(self) -> float:
        return 1000 * self.wall_s / self.ops

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.wall_s


async def run_round(variant: ExecVariant, seconds: float, record: bool = True) -> None:
    ops = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        await variant.op()
        ops += 1
        now = time.perf_counter()
        if now >= deadline:
            break
    if record:
        variant.ops += ops
        variant.wall_s += now - started
        variant.rounds.append(1000 * (now - started) / ops)


async def execution(args: argparse.Namespace) -> None:
    import strawberry
    from strawberry.extensions import ParserCache, ValidationCache

    from gateway.execution import Executor
    from gateway.kernel.context import RequestContext
    from gateway.kernel.permissions import enforce_scopes
    from resolvers.schema import Mutation, Query
    from resolvers.schema import schema as gateway_schema

    print(f"\n[3] uncached execution of THE facilities query, in process (load average {load_average()})")
    async with live_sandbox() as (_, sandbox):
        live = sandbox.runtime
        principal = await live.authenticator.authenticate(f"Bearer {sandbox.clients[EDGE_CLIENT]['key']}", None)
        executor = Executor(gateway_schema, introspection=live.config.server.introspection)
        with recording(live.systems) as batches:
            for _ in range(2):  # the second sees every source UP
                captured = await executor.execute(executor.prepare(FACILITIES_QUERY, "Facilities"),
                                                  RequestContext.for_request(live, principal), None, "Facilities")
                if captured.errors:
                    raise RuntimeError(f"capture failed: {captured.errors}")
        replay = ReplaySystems(live.systems, batches)
    runtime = replay_runtime(live, replay)

    def context() -> Any:  # the same for every variant: what the endpoint makes per request
        return RequestContext.for_request(runtime, principal)

    cached_schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=[ParserCache, ValidationCache])
    enforce_scopes(cached_schema)

    async def gateway_op() -> Any:
        prepared = executor.prepare(FACILITIES_QUERY, "Facilities")
        return await executor.execute(prepared, context(), None, "Facilities")

    async def stock_op() -> Any:
        return await gateway_schema.execute(FACILITIES_QUERY, context_value=context(), operation_name="Facilities")

    async def cached_op() -> Any:
        return await cached_schema.execute(FACILITIES_QUERY, context_value=context(), operation_name="Facilities")

    variants = [
        ExecVariant("gateway", "gateway Executor (cached parse/validate, graphql-core execute)", gateway_op),
        ExecVariant("stock", "stock strawberry schema.execute (as shipped: no extensions)", stock_op),
        ExecVariant("cached", "strawberry schema.execute + ParserCache, ValidationCache", cached_op),
    ]
    results = {}
    for variant in variants:
        result = await variant.op()
        if result.errors:
            raise RuntimeError(f"{variant.name} answered errors: {result.errors}")
        results[variant.name] = result.data
    for name in ("stock", "cached"):
        differences = shape_differences(results["gateway"], results[name])
        moved = differing_values(results["gateway"], results[name])
        if differences or moved:
            raise RuntimeError(f"{name} answers differently from the gateway Executor: {(differences or moved)[:5]}")
    print(f"  the three answer identical data from the same replayed vendor answers "
          f"({len(batches)} recorded resources), principal {principal.client_name} ({len(principal.scopes)} scopes); "
          f"a fresh RequestContext + Loaders per operation; one operation at a time")
    for variant in variants:  # warm-up
        await run_round(variant, min(1.0, args.exec_duration / 3), record=False)
    gc.collect()
    gc.freeze()
    rounds = max(3, int(args.exec_duration / 0.25))
    segment = args.exec_duration / rounds
    try:
        for round_index in range(rounds):
            order = variants if round_index % 2 == 0 else variants[::-1]
            for variant in order:
                await run_round(variant, segment)
    finally:
        gc.unfreeze()
    gateway, stock, cached = variants
    for variant in variants:
        print(f"  {variant.label:<64} {variant.ms_per_op:6.3f} ms/op ({variant.ops_per_s:6.0f} op/s)")
    ratio = gateway.ops_per_s / stock.ops_per_s
    per_round = sorted(s / g for g, s in zip(gateway.rounds, stock.rounds, strict=True))
    q = statistics.quantiles(per_round, n=4) if len(per_round) >= 4 else [per_round[0], statistics.median(per_round), per_round[-1]]
    print(f"  uncached execution, Executor / stock strawberry = {ratio:.2f}x throughput (aim >= {AIM_EXECUTION}x)"
          f"{'' if ratio >= AIM_EXECUTION else '   MISSED'}   [per round: median {q[1]:.2f}, quartiles {q[0]:.2f}-{q[2]:.2f}]")
    print(f"  (against strawberry with ParserCache + ValidationCache: {gateway.ops_per_s / cached.ops_per_s:.2f}x)")
    from graphql import parse, validate

    n = 30
    started = time.perf_counter()
    for _ in range(n):
        document = parse(FACILITIES_QUERY)
    parse_ms = 1000 * (time.perf_counter() - started) / n
    started = time.perf_counter()
    for _ in range(n):
        validate(gateway_schema._schema, document)
    validate_ms = 1000 * (time.perf_counter() - started) / n
    print(f"  stock strawberry's extra per operation: {stock.ms_per_op - gateway.ms_per_op:.2f} ms (it parses, "
          f"{parse_ms:.2f} ms alone, and validates, {validate_ms:.2f} ms alone, every time); the rest, "
          f"{gateway.ms_per_op:.2f} ms, is graphql-core execution on the same schema and resolvers, the Executor's "
          f"reading plain fields directly (gateway/plain_fields.py)")


# --- part 4: the adapter's HTTP hop --------------------------------------------------------------------


def hop(args: argparse.Namespace) -> None:
    import http_hop_bench as hb

    print(f"\n[4] the adapter's HTTP hop (bench/http_hop_bench.py's measurement: GET /apds/v1/places, ~9 KB, "
          f"{args.hop_rounds} rounds x {args.hop_calls} calls, concurrency 8; load average {load_average()})")
    targets = [hb.Target("aiohttp", hb.raw_aiohttp),
               hb.Target("VendorHTTP", lambda url, pool: hb.vendor_http(url, pool, "default"))]
    process, url = hb.start_server()
    try:
        async def rounds() -> None:
            for round_no in range(args.hop_rounds):
                for target in targets if round_no % 2 == 0 else targets[::-1]:
                    await hb.run(target, url, args.hop_calls, 8, 200)

        asyncio.run(rounds())
    finally:
        process.terminate()
        process.join(5)
    if len({frozenset(t.sizes) for t in targets}) != 1:
        raise RuntimeError(f"the clients read different bodies: {[t.sizes for t in targets]}")
    raw, vendor = targets
    for target in targets:
        print(f"  {target.name:<12} {target.cpu_us_per_call:6.0f} us CPU per call ({target.calls_per_wall_s:6.0f} calls per wall s)")
    ratio = raw.cpu_us_per_call / vendor.cpu_us_per_call
    print(f"  HTTP hop, VendorHTTP / raw aiohttp = {ratio:.2f}x throughput per CPU (aim >= {AIM_HOP}x)"
          f"{'' if ratio >= AIM_HOP else '   MISSED'}   [{vendor.calls_per_wall_s / raw.calls_per_wall_s:.2f}x calls per wall second]")


# --- --profile: cProfile of the cached edge, in process ------------------------------------------------


async def profile_edge(args: argparse.Namespace, report: dict[str, Any], scratch: Path, redis_url: str) -> None:
    """The cached facilities query through `create_app` in this process (ASGI, no sockets; what the
    gateway does beyond what bare Starlette does, apart from uvicorn's share), under cProfile."""
    import cProfile
    import pstats

    from _replay import AsgiPost
    from gateway.app import create_app
    from gateway.auth.keys import Environment
    from gateway.config import load_config
    from gateway.runtime import Runtime
    from gateway.sandbox import DEMO_CLIENTS
    from resolvers.schema import schema

    store = None if args.profile == "memory" else {"backend": "redis", "redis_url": redis_url,
                                                    "prefix": f"cache-bench-{uuid.uuid4().hex[:8]}:"}
    deployment = write_deployment(report["sandbox"], scratch, f"profile-{args.profile}", store=store)
    runtime = Runtime.from_config(load_config(deployment.config, environ=deployment.env))
    issued = await runtime.admin.create_client("bench", name="bench-facilities", environment=Environment.TEST,
                                               scopes=[s.value for s in DEMO_CLIENTS[EDGE_CLIENT][0]], plan=BENCH_PLAN)
    app = create_app(runtime, schema)
    post = AsgiPost(app, FACILITIES_BODY, {**JSON_HEADERS, "authorization": f"Bearer {issued.key}"})
    for _ in range(200):
        status, body = await post()
        assert status == 200 and b'"errors"' not in body, body[:300]
    n = args.profile_requests
    started = time.perf_counter()
    for _ in range(n):
        await post()
    plain_ms = 1000 * (time.perf_counter() - started) / n
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        await post()
    profiler.disable()
    endpoint = app.state.graphql
    responses = endpoint.responses
    print(f"\n--profile {args.profile}: {n} cached facilities queries through create_app in process, "
          f"{plain_ms:.3f} ms/request unprofiled; response cache {responses.hits} hits ({responses.local_hits} from "
          f"this process's copy), {responses.misses} misses")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"gateway/|resolvers/|graphql/|limits/|redis/|aiocache/", 30)
    stats.print_callees(r"graphql_http.py:\d+\((handle|operation|run_operation)\)")  # where the endpoint's own time goes

    # The steps of a cached answer (graphql_http.py `run_operation`), each timed alone, unprofiled.
    from gateway.graphql_http import OperationAnswer

    executor = endpoint.executor
    principal = await runtime.authenticator.authenticate(f"Bearer {issued.key}", None)
    prepared = executor.prepare(FACILITIES_QUERY, "Facilities")
    analysis = executor.analyze(prepared, None)
    key = responses.key(FACILITIES_QUERY, "Facilities", None, principal)
    cached = await responses.get(key, principal)
    assert cached is not None, "the answer is not in the response cache"
    assert endpoint.bodies.get(FACILITIES_BODY) is not None, "the body is not in the endpoint's memo"
    settled = await endpoint.meter.settle(await endpoint.meter.admit(principal, analysis, cached.actual_cost),
                                          cached.actual_cost)
    answer = OperationAnswer({"extensions": {"cost": settled.extensions}}, 200, settled.headers, 5,
                             data_json=cached.data_json)

    async def admit_settle() -> None:  # as for a hit: the known cost charged, nothing to refund
        await endpoint.meter.settle(await endpoint.meter.admit(principal, analysis, cached.actual_cost), cached.actual_cost)

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("authenticate (graphql_http.py authenticate, API key)", lambda: runtime.authenticator.authenticate(f"Bearer {issued.key}", None)),
        ("the body understood before: JSON .. analyze, kept by its bytes (body_memo.py)",
         lambda: endpoint.bodies.get(FACILITIES_BODY)),
        ("  (in its place when not kept) prepare: parse + validate, cached", lambda: executor.prepare(FACILITIES_QUERY, "Facilities")),
        ("  (in its place when not kept) analyze: estimated cost, cached", lambda: executor.analyze(prepared, None)),
        ("meter admit + settle of a hit (metering.py admit, settle)", admit_settle),
        ("response cache key (response_cache.py key)", lambda: responses.key(FACILITIES_QUERY, "Facilities", None, principal)),
        ("response cache get (response_cache.py get)", lambda: responses.get(key, principal)),
        ("the answer's bytes: data spliced with extensions (OperationAnswer.payload)", answer.payload),
    ]
    print(f"steps of one cached answer, each timed alone ({args.profile_requests} times, unprofiled):")
    total = 0.0
    for label, step in steps:
        started = time.perf_counter()
        for _ in range(args.profile_requests):
            result = step()
            if asyncio.iscoroutine(result):
                await result
        us = 1e6 * (time.perf_counter() - started) / args.profile_requests
        if not label.startswith("  ("):  # what a hit no longer does is shown, not summed
            total += us
        print(f"  {label:<72} {us:7.1f} us")
    print(f"  {'sum of the steps a hit takes':<72} {total:7.1f} us   (whole request in process: {1000 * plain_ms:.0f} us)")
    await compare_in_process(args, app, post)
    await runtime.aclose()


async def compare_in_process(args: argparse.Namespace, app: Any, post: Any) -> None:
    """The same POST in process against bare Starlette answering the gateway's bytes, alone and
    behind the gateway's two middlewares (request log, card-number URL screen): what is the
    endpoint's, what every route of the gateway pays, what any Starlette app pays."""
    from _replay import AsgiPost
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from gateway.card_screen import CardNumberURLs
    from gateway.observability.request_log import RequestLog

    _, raw = await post()
    bare = bare_app(raw, {"content-type": "application/json; charset=utf-8"})
    behind = Starlette(routes=bare.routes, middleware=[Middleware(RequestLog), Middleware(CardNumberURLs)])
    targets = {"the gateway (create_app)": post, "bare Starlette": AsgiPost(bare, FACILITIES_BODY, JSON_HEADERS),
               "bare Starlette behind the gateway's two middlewares": AsgiPost(behind, FACILITIES_BODY, JSON_HEADERS)}
    timings: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(5):  # alternating rounds
        for name, target in targets.items():
            started = time.perf_counter()
            for _ in range(args.profile_requests // 5):
                await target()
            timings[name].append(1e6 * (time.perf_counter() - started) / (args.profile_requests // 5))
    print("the same POST in process, median of 5 alternating rounds:")
    for name, rounds in timings.items():
        print(f"  {name:<72} {statistics.median(rounds):7.1f} us")


def profile_http(args: argparse.Namespace, ctx: Any, report: dict[str, Any], scratch: Path, servers: list[Server],
                 redis_url: str) -> None:
    """cProfile inside a gateway child (uvicorn and h11 included) under the edge's HTTP load."""
    import pstats

    from gateway.sandbox import DEMO_CLIENTS

    scopes = [s.value for s in DEMO_CLIENTS[EDGE_CLIENT][0]]
    out = scratch / "server.prof"
    kind = "memory" if args.profile_http == "bare" else args.profile_http
    store = None if kind == "memory" else {"backend": "redis", "redis_url": redis_url,
                                           "prefix": f"cache-bench-{uuid.uuid4().hex[:8]}:"}
    deployment = write_deployment(report["sandbox"], scratch, f"http-{kind}", store=store)
    key_out = scratch / "http-key.json"
    client = {"name": "bench-facilities", "scopes": scopes, "key_out": str(key_out)}
    if store is not None:
        scope_args = [arg for s in scopes for arg in ("--scope", s)]
        key = deployment.cli("clients", "create", "--name", "bench-facilities", "--env", "test", *scope_args,
                             "--plan", BENCH_PLAN)["key"]
    gateway, _ = start_child(ctx, f"gateway-{kind}", "gateway",
                             {"config": str(deployment.config), "env": deployment.env, "client": client,
                              "profile_out": str(out)})
    servers.append(gateway)
    if store is None:
        key = json.loads(key_out.read_text())["key"]
    headers = {**JSON_HEADERS, "authorization": f"Bearer {key}"}
    post_json(gateway.graphql_url, FACILITIES_BODY, headers)
    if args.profile_http == "bare":  # the same answer's bytes from bare Starlette, profiled instead
        _, answer_headers, raw = post_json(gateway.graphql_url, FACILITIES_BODY, headers)
        skip = {"date", "server", "content-length", "transfer-encoding", "connection"}
        gateway, _ = start_child(ctx, "bare", "bare", {"body": raw, "profile_out": str(out), "headers": {
            k: v for k, v in answer_headers.items() if k.lower() not in skip}})
        servers.append(gateway)
        headers = dict(JSON_HEADERS)
    target = EdgeTarget(args.profile_http, args.profile_http, gateway, headers)
    asyncio.run(measure(gateway, target.headers, args.concurrency, 0.1, args.warmup))
    httpx.post(f"{gateway.base_url}/bench/profile", content=b"start").raise_for_status()
    result = asyncio.run(measure(gateway, target.headers, args.concurrency, args.duration, 0))
    httpx.post(f"{gateway.base_url}/bench/profile", content=b"stop").raise_for_status()
    print(f"\n--profile-http {args.profile_http}: cProfile inside the server process under HTTP load "
          f"(concurrency {args.concurrency}, {args.duration:g} s): {describe(result)}")
    print("  (times are per the whole run; divide by the requests above for per-request figures; the profiler ~doubles them)")
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


async def profile_execution(args: argparse.Namespace) -> None:
    """cProfile of the gateway Executor on THE facilities query, loaders replaying vendor answers."""
    import cProfile
    import pstats

    from gateway.execution import Executor
    from gateway.kernel.context import RequestContext
    from resolvers.schema import schema as gateway_schema

    async with live_sandbox() as (_, sandbox):
        live = sandbox.runtime
        principal = await live.authenticator.authenticate(f"Bearer {sandbox.clients[EDGE_CLIENT]['key']}", None)
        executor = Executor(gateway_schema, introspection=live.config.server.introspection)
        with recording(live.systems) as batches:
            for _ in range(2):
                await executor.execute(executor.prepare(FACILITIES_QUERY, "Facilities"),
                                       RequestContext.for_request(live, principal), None, "Facilities")
        replay = ReplaySystems(live.systems, batches)
    runtime = replay_runtime(live, replay)

    async def op() -> Any:
        return await executor.execute(executor.prepare(FACILITIES_QUERY, "Facilities"),
                                      RequestContext.for_request(runtime, principal), None, "Facilities")

    n = max(100, args.profile_requests // 4)
    for _ in range(100):
        await op()
    started = time.perf_counter()
    for _ in range(n):
        await op()
    plain_ms = 1000 * (time.perf_counter() - started) / n
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        await op()
    profiler.disable()
    print(f"\n--profile execution: {n} executions of THE facilities query (gateway Executor, replayed loaders), "
          f"{plain_ms:.3f} ms/op unprofiled")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(r"gateway/|resolvers/|adapters/", 40)


# --- main --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="[1] seconds the dashboards poll (default 30)")
    parser.add_argument("--pollers", type=int, default=200, help="[1] simulated dashboards (default 200)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="[2] measured seconds of HTTP load per target, all rounds (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="[2] alternating rounds (default 5)")
    parser.add_argument("--warmup", type=float, default=1.5, help="[2] unmeasured seconds before a target's first round (default 1.5)")
    parser.add_argument("--concurrency", type=int, default=16, help="[2] HTTP workers (default 16)")
    parser.add_argument("--control-burn-us", type=float, default=0,
                        help="[2] add a control target: bare Starlette spinning this many us per request (default: none)")
    parser.add_argument("--exec-duration", type=float, default=4.0, help="[3] measured seconds per variant (default 4)")
    parser.add_argument("--hop-calls", type=int, default=2000, help="[4] calls per client per round (default 2000)")
    parser.add_argument("--hop-rounds", type=int, default=4, help="[4] alternating rounds (default 4)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run (default all: {','.join(PARTS)})")
    parser.add_argument("--profile", choices=("memory", "redis", "execution"),
                        help="instead of timing: cProfile the cached edge in process on that store (memory, redis), "
                             "or the Executor's uncached execution (execution)")
    parser.add_argument("--profile-requests", type=int, default=2000, help="requests profiled (default 2000)")
    parser.add_argument("--profile-http", choices=("memory", "redis", "bare"),
                        help="instead of timing: cProfile inside a gateway child process under the edge's HTTP load "
                             "for --duration seconds (uvicorn included)")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    if min(args.poll_seconds, args.duration, args.exec_duration) <= 0 or min(args.pollers, args.rounds, args.concurrency,
                                                                             args.hop_calls, args.hop_rounds) < 1:
        parser.error("durations must be positive, counts at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally blocks
    started = time.monotonic()
    print(f"code under test: {code_under_test()}")
    print(f"{os.cpu_count()} CPUs, load average {load_average()}, python {sys.version.split()[0]}")
    ctx = mp.get_context("spawn")
    servers: list[Server] = []
    scratch_dir = tempfile.TemporaryDirectory(prefix="cache-bench-")
    scratch = Path(scratch_dir.name)
    if args.profile == "execution":
        asyncio.run(profile_execution(args))
        return 0
    try:
        needs_children = args.profile is not None or args.profile_http is not None or {"amplification", "edge"} & set(args.parts)
        if needs_children:
            with throwaway_redis() as redis:
                keys_file = scratch / "sandbox-keys.json"
                sandbox, report = start_child(ctx, "sandbox", "sandbox", {"keys_file": str(keys_file)})
                servers.append(sandbox)
                if args.profile is not None:
                    asyncio.run(profile_edge(args, report, scratch, redis.url))
                    return 0
                if args.profile_http is not None:
                    profile_http(args, ctx, report, scratch, servers, redis.url)
                    return 0
                if "amplification" in args.parts:
                    amplification(args, ctx, sandbox, report, keys_file, scratch, servers)
                if "edge" in args.parts:
                    edge(args, ctx, sandbox, report, scratch, servers, redis.url)
                for server in servers:
                    stop_server(server)
                servers.clear()
        if "execution" in args.parts:
            asyncio.run(execution(args))
        if "hop" in args.parts:
            hop(args)
    finally:
        for server in servers:
            stop_server(server)
        scratch_dir.cleanup()
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
