"""Benchmark: what quotas cost on a small cached dashboard query, as a ratio against no quotas.

    .venv/bin/python bench/quotas_bench.py [--duration 6] [--rounds 60] [--warmup 1]
                                           [--http-duration 4] [--concurrency 16] [--no-http]
                                           [--profile]

"Cached": the vendors' answers are captured once from the sandbox and replayed from memory
(bench/_replay.py), and the response cache is off (`replay_runtime`: no cache), so every request
executes (response-cache hits are bench/cache_bench.py's). What is measured is the gateway's own
edge: authentication + cost analysis + quota admit/settle + execution + orjson.

Three gateways (`create_app`) over ONE runtime built with `store.backend: redis` against a
throwaway redis-server this bench starts (never the machine's own on 6379): the same client
store (Redis, read through the authenticator's 0.5 s cache), the same authenticator, schema,
replayed systems, client and API key. They differ only in metering:

  no quotas      the endpoint's `Meter` replaced by `UnmeteredMeter` (bench/_replay.py): admit
                 charges nothing, settle answers no headers and no extensions.cost
  quotas memory  the gateway's `Meter` on `QuotaEnforcer()`: limits' MemoryStorage, what
                 `store.backend: memory` builds
  quotas Redis   the gateway's `Meter` on the runtime's own `QuotaEnforcer` (limits'
                 fixed-window script on the throwaway server), what `store.backend: redis` builds

The client is on a configured plan (`bench`) no run can exhaust, so nothing is ever refused.
In process, one request at a time through each ASGI app, variants alternating in short rounds.
Then (unless --no-http) the same three apps in one uvicorn child process, under concurrent HTTP
load, where Redis round trips of different requests overlap. THE figures are the ratios
no-quotas / quotas throughput, memory and Redis; the issue aims at <= 1.25 with Redis.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import itertools
import multiprocessing as mp
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from _replay import (  # noqa: E402
    AsgiPost,
    ReplaySystems,
    Variant,
    live_sandbox,
    recording,
    replay_runtime,
    run_for,
    spread,
    unmetered,
)
from facilities_bench import code_under_test, load_average, loopback_socket, process_cpu_seconds  # noqa: E402

#: a dashboard's occupancy tile for every facility
QUERY = """\
query Occupancy {
  facilities(first: 100) {
    totalCount
    edges { node { id name occupancy { free occupied percentOccupied status } } }
  }
}
"""
BODY = orjson.dumps({"query": QUERY, "operationName": "Occupancy"})
HEADERS = {"content-type": "application/json", "accept": "application/json"}
SCOPES = ["facilities:read", "occupancy:read"]
#: the sandbox demo client the capture runs as (those scopes, every facility; two requests)
CAPTURE_CLIENT = "dashboard"
#: a plan no run can exhaust, configured for the bench's client (no per-request overrides to apply)
BENCH_PLAN = "bench"
BENCH_PLAN_LIMITS = {"requests": 100_000_000, "cost": 1_000_000_000, "max_query_cost": 100_000}

VARIANTS = {
    "none": "no quotas      (UnmeteredMeter)",
    "memory": "quotas, memory (QuotaEnforcer(): limits MemoryStorage)",
    "redis": "quotas, Redis  (QuotaEnforcer on redis-server: limits' script)",
}
AIM = 1.25


# --- a throwaway redis-server --------------------------------------------------------------------


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    workdir: tempfile.TemporaryDirectory[str]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def throwaway_redis() -> Iterator[RedisServer]:
    """redis-server on a free loopback port, no persistence, in a scratch directory; stopped on exit."""
    import redis

    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not on PATH")
    port = free_port()
    if port == 6379:  # never the machine's own Redis
        port = free_port()
    workdir = tempfile.TemporaryDirectory(prefix="quotas-bench-redis-")
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir.name, "--logfile", "", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    server = RedisServer(process, port, workdir)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited ({process.returncode}): {process.stderr.read()[:500]!r}")
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING in 10 s") from None
                time.sleep(0.05)
        client.close()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        workdir.cleanup()


def redis_commands(url: str) -> dict[str, int]:
    """INFO commandstats: calls per command (lower case), server-wide."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2.0)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}


# --- the three gateways ----------------------------------------------------------------------------


@dataclass
class Built:
    apps: dict[str, Any]
    key: str
    client_id: str
    runtime: Any  # the Redis runtime (its quotas: the Redis enforcer)
    memory_quotas: Any
    plan: Any
    facilities: int


async def build_variants(redis_url: str, prefix: str) -> Built:
    """Capture vendor answers from the sandbox, then three gateways over one Redis-store runtime."""
    from gateway.app import create_app
    from gateway.auth.keys import Environment
    from gateway.config import PlanConfig, StoreConfig
    from gateway.quotas import QuotaEnforcer
    from gateway.runtime import Runtime
    from resolvers.schema import schema

    async with live_sandbox() as (sandbox_app, sandbox):
        capture = AsgiPost(sandbox_app, BODY, {**HEADERS, "authorization": f"Bearer {sandbox.clients[CAPTURE_CLIENT]['key']}"})
        with recording(sandbox.runtime.systems) as batches:
            for _ in range(2):  # the first answer has every source UNKNOWN (no vendor called yet)
                status, body = await capture()
                answer = orjson.loads(body)
                if status != 200 or answer.get("errors"):
                    raise RuntimeError(f"capturing from the sandbox failed ({status}): {body[:1000]!r}")
        live = sandbox.runtime
        replay = ReplaySystems(live.systems, batches)

    config = live.config.model_copy(update={
        "store": StoreConfig(backend="redis", redis_url=redis_url, prefix=prefix),
        "auth": live.config.auth.model_copy(update={"key_pepper": secrets.token_urlsafe(32)}),
        "plans": {**live.config.plans, BENCH_PLAN: PlanConfig(**BENCH_PLAN_LIMITS)},
    })
    runtime = Runtime.from_config(config)
    await runtime.systems.aclose()  # its vendor connections: never used, the replay answers instead
    # no cache (`replay_runtime`): every request executes (response-cache hits are cache_bench.py's)
    runtime = replay_runtime(runtime, replay)
    issued = await runtime.admin.create_client("bench", name="bench-dashboard", environment=Environment.TEST,
                                               scopes=SCOPES, plan=BENCH_PLAN, notes="quotas bench")
    memory_quotas = QuotaEnforcer()  # what QuotaEnforcer.from_config builds for store.backend: memory
    apps = {
        "none": unmetered(create_app(runtime, schema)),
        "memory": create_app(dataclasses.replace(runtime, quotas=memory_quotas), schema),
        "redis": create_app(runtime, schema),
    }
    facilities = len(answer["data"]["facilities"]["edges"])
    return Built(apps, issued.key, issued.client.id, runtime, memory_quotas, runtime.plans[BENCH_PLAN], facilities)


async def check_same_work(built: Built, posts: dict[str, AsgiPost]) -> list[str]:
    """Refuse to time what does not do the work it claims; return lines describing it."""
    answers = {}
    for name, post in posts.items():
        status, body = await post()
        answer = orjson.loads(body)
        if status != 200 or answer.get("errors") or not answer.get("data"):
            raise RuntimeError(f"{name} answered {status}: {body[:500]!r}")
        answers[name] = answer
    if not answers["none"]["data"] == answers["memory"]["data"] == answers["redis"]["data"]:
        raise RuntimeError("the three gateways answer different data: they would not do the same work")
    if "extensions" in answers["none"]:
        raise RuntimeError(f"no quotas answered extensions: {answers['none']['extensions']}")
    costs = [answers[name].get("extensions", {}).get("cost") for name in ("memory", "redis")]
    if None in costs:
        raise RuntimeError("a quota variant answered no extensions.cost: it was not metered")
    if built.runtime.quotas.status != "redis":
        raise RuntimeError(f"the Redis enforcer is {built.runtime.quotas.status!r}, not on Redis")
    used_redis = await built.runtime.quotas.usage(built.client_id, built.plan)
    used_memory = await built.memory_quotas.usage(built.client_id, built.plan)
    if used_redis.requests < 1 or used_memory.requests < 1:
        raise RuntimeError(f"quota counters did not move: Redis {used_redis}, memory {used_memory}")
    cost = costs[1]
    return [
        f"query Occupancy: {built.facilities} facilities, {len(orjson.dumps(answers['none']))} bytes without quotas "
        f"({len(orjson.dumps(answers['redis']))} with extensions.cost); estimated cost {cost['requestedQueryCost']}, "
        f"actual {cost['actualQueryCost']} (settle refunds the difference)",
        "all three answer identical data, no errors; the quota variants' counters moved (memory and Redis)",
    ]


# --- timing, in process ----------------------------------------------------------------------------


def orders(names: list[str]) -> Iterator[tuple[str, ...]]:
    """Every order of the variants in turn, so each goes first, second and last equally often."""
    return itertools.cycle(itertools.permutations(names))


# --- where the Redis time goes ---------------------------------------------------------------------


@dataclass
class RoundTrips:
    by_site: dict[str, list[tuple[int, float, float]]] = field(default_factory=lambda: defaultdict(list))  # commands, wall, cpu


def call_site(frame: Any) -> str:
    """The innermost gateway frame and the metering/authentication frame above it."""
    inner, outer = None, None
    while frame is not None:
        filename = frame.f_code.co_filename
        if "/gateway/" in filename:
            where = f"gateway/{filename.rsplit('/gateway/', 1)[1]}:{frame.f_lineno} {frame.f_code.co_name}"
            inner = inner or where
            if filename.endswith(("gateway/metering.py", "gateway/auth/authenticate.py")):
                outer = where
                break
        frame = frame.f_back
    return f"{inner} <- {outer}" if outer and outer != inner else str(inner)


@contextmanager
def counting_round_trips() -> Iterator[RoundTrips]:
    """Count every redis-py round trip (a pipeline's execute, or one command) by call site, timed."""
    from redis.asyncio.client import Pipeline, Redis

    trips = RoundTrips()
    execute_command, execute = Redis.execute_command, Pipeline.execute

    async def timed(site: str, commands: int, call: Any) -> Any:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            return await call
        finally:
            trips.by_site[site].append((commands, time.perf_counter() - wall0, time.process_time() - cpu0))

    async def counted_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        site = f"{call_site(sys._getframe(1))} [{args[0]}]"
        return await timed(site, 1, execute_command(self, *args, **kwargs))

    async def counted_pipeline(self: Any, *args: Any, **kwargs: Any) -> Any:
        commands = " ".join(str(c[0][0]).lower() for c in self.command_stack)
        return await timed(f"{call_site(sys._getframe(1))} [pipeline: {commands}]", len(self.command_stack),
                           execute(self, *args, **kwargs))

    Redis.execute_command, Pipeline.execute = counted_command, counted_pipeline  # type: ignore[method-assign]
    try:
        yield trips
    finally:
        Redis.execute_command, Pipeline.execute = execute_command, execute  # type: ignore[method-assign]


async def redis_breakdown(built: Built, post: AsgiPost, requests: int = 300) -> list[str]:
    """Redis round trips per request of the Redis variant (outside timing), with their time."""
    await asyncio.sleep(0.6)  # past the authenticator's 0.5 s cache, so its store reads show at their rate
    with counting_round_trips() as trips:
        started = time.perf_counter()
        for _ in range(requests):
            await post()
        wall = time.perf_counter() - started
    # a bare round trip on the enforcer's own connection, for scale
    client = built.runtime.quotas._redis.client
    samples = []
    for _ in range(200):
        t0 = time.perf_counter()
        await client.ping()
        samples.append(time.perf_counter() - t0)
    ping_us = 1e6 * statistics.median(samples)
    total = sum(len(v) for v in trips.by_site.values())
    lines = [f"Redis per request (quotas Redis, {requests} requests over {wall:.2f} s, outside timing): "
             f"{total / requests:.2f} round trips; bare PING on the same connection {ping_us:.0f} us (median)"]
    for site, calls in sorted(trips.by_site.items(), key=lambda item: -len(item[1])):
        n = len(calls)
        wall_us = 1e6 * sum(c[1] for c in calls) / n
        cpu_us = 1e6 * sum(c[2] for c in calls) / n
        lines.append(f"  {n / requests:5.2f}/request  {calls[0][0]} command(s)  {wall_us:5.0f} us wall, {cpu_us:4.0f} us CPU "
                     f"each  {site}")
    return lines


async def profile(variant: Variant, seconds: float) -> None:
    import cProfile
    import pstats

    await run_for(variant, 1.0, record=False)
    profiler = cProfile.Profile()
    profiler.enable()
    await run_for(variant, seconds)
    profiler.disable()
    requests = variant.ops
    print(f"profile of {variant.label}: {requests} requests, {variant.ms_per_op:.3f} ms/op under the profiler")
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(20)
    # The metering path on its own, cumulative per request: what each quota layer costs with what it calls.
    rows = []
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        if filename.endswith(("gateway/metering.py", "gateway/quotas.py")) or (
                filename.endswith("gateway/graphql_http.py") and name in ("authenticate", "operation")) or (
                filename.endswith("gateway/auth/authenticate.py") and name == "authenticate"):
            rows.append((cumtime, f"{filename.split('/work/main/')[-1]}:{line}({name})", ncalls, tottime))
    print("metering path, per request (cumulative includes what it calls; times ~2-3x real under the profiler; a "
          "coroutine counts one call per resumption):")
    for cumtime, where, ncalls, tottime in sorted(rows, reverse=True)[:16]:
        print(f"  {where:<58} calls {ncalls / requests:5.1f}  cumulative {1e6 * cumtime / requests:7.1f} us  "
              f"own {1e6 * tottime / requests:6.1f} us")
    # Inside the round trips: redis-py (and limits) functions by cumulative time per request.
    rows = []
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "/site-packages/redis/" in filename or "/site-packages/limits/" in filename:
            rows.append((cumtime, f"{filename.split('/site-packages/')[-1]}:{line}({name})", ncalls, tottime))
    own = sum(r[3] for r in rows)
    print(f"redis-py and limits, per request: own time {1e6 * own / requests:.1f} us in total; the top by cumulative:")
    for cumtime, where, ncalls, tottime in sorted(rows, reverse=True)[:16]:
        print(f"  {where:<58} calls {ncalls / requests:5.1f}  cumulative {1e6 * cumtime / requests:7.1f} us  "
              f"own {1e6 * tottime / requests:6.1f} us")


# --- over HTTP: the three apps in one uvicorn child process ---------------------------------------


def dispatcher(apps: dict[str, Any]) -> Any:
    """/<variant>/graphql -> that variant's app at /graphql (the same routing work for each)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        name, _, rest = scope["path"][1:].partition("/")
        inner = apps.get(name)
        if inner is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        path = f"/{rest}"
        await inner({**scope, "path": path, "raw_path": path.encode()}, receive, send)

    return app


def server_main(redis_url: str, prefix: str, conn: Any) -> None:
    """Child process: build the three gateways (own capture, own client, own Redis prefix), serve them."""
    import uvicorn

    from facilities_bench import watch_parent

    async def serve() -> None:
        built = await build_variants(redis_url, prefix)
        sock = loopback_socket()
        # lifespan off: the apps were built and their client made above; nothing to start
        config = uvicorn.Config(dispatcher(built.apps), access_log=False, log_level="warning",
                                ws="websockets-sansio", lifespan="off")
        server = uvicorn.Server(config)
        conn.send((sock.getsockname()[1], built.key))
        conn.close()
        await server.serve(sockets=[sock])
        await built.runtime.aclose()

    watch_parent()
    asyncio.run(serve())


@dataclass
class HttpRun:
    requests: int = 0
    failures: int = 0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    redis_commands: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first_failure: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def http_load(session: Any, url: str, headers: dict[str, str], concurrency: int, seconds: float,
                    run: HttpRun | None, server_pid: int, redis_pid: int) -> None:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    failures = 0
    first_failure = ""

    async def worker() -> None:
        nonlocal failures, first_failure
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with session.post(url, data=BODY, headers=headers) as response:
                status, body = response.status, await response.read()
            latencies.append(1000 * (time.perf_counter() - t0))
            if status != 200 or b'"errors"' in body:
                failures += 1
                first_failure = first_failure or f"{status}: {body[:300]!r}"

    server0, redis0 = process_cpu_seconds(server_pid) or 0.0, process_cpu_seconds(redis_pid) or 0.0
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    if run is not None:
        run.requests += len(latencies)
        run.failures += failures
        run.first_failure = run.first_failure or first_failure
        run.wall_s += wall
        run.server_cpu_s += (process_cpu_seconds(server_pid) or 0.0) - server0
        run.redis_cpu_s += (process_cpu_seconds(redis_pid) or 0.0) - redis0
        run.latencies_ms += latencies


async def http_bench(args: argparse.Namespace, redis: RedisServer) -> int:
    import aiohttp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=server_main, args=(redis.url, "parkgate-bench-http:", child), name="bench-quotas", daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(60):
            raise RuntimeError("the HTTP server did not report its port in 60 s")
        port, key = parent.recv()
        parent.close()
        base = f"http://127.0.0.1:{port}"
        headers = {**HEADERS, "authorization": f"Bearer {key}"}
        runs = {name: HttpRun() for name in VARIANTS}
        sessions = {name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency),
                                                timeout=aiohttp.ClientTimeout(total=60)) for name in VARIANTS}
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with sessions["none"].get(f"{base}/none/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the HTTP server did not answer /healthz in 30 s")
                await asyncio.sleep(0.05)
            for name in VARIANTS:  # warm-up: connections, caches, the Redis pool
                await http_load(sessions[name], f"{base}/{name}/graphql", headers, args.concurrency, args.warmup, None,
                                process.pid, redis.process.pid)
            rounds = max(3, round(args.http_duration / 0.5))
            segment = args.http_duration / rounds
            order = orders(list(VARIANTS))
            for _ in range(rounds):
                for name in next(order):
                    before = redis_commands(redis.url) if name == "redis" else {}
                    await http_load(sessions[name], f"{base}/{name}/graphql", headers, args.concurrency, segment,
                                    runs[name], process.pid, redis.process.pid)
                    if name == "redis":
                        after = redis_commands(redis.url)
                        for command, calls in after.items():
                            runs[name].redis_commands[command] += calls - before.get(command, 0)
                        runs[name].redis_commands["info"] -= 1  # the INFO that read `before`
        finally:
            for session in sessions.values():
                await session.close()
    finally:
        if process.is_alive():
            process.terminate()
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)

    print(f"over HTTP: the three apps in one uvicorn child process (routed by path), aiohttp, concurrency "
          f"{args.concurrency}, {args.warmup:g} s warm-up each, then {rounds} rounds of {segment:.2f} s per variant; "
          f"load average {load_average()}")
    for name, label in VARIANTS.items():
        r = runs[name]
        extra = (f"; {sum(r.redis_commands.values()) / r.requests:.1f} Redis commands/request" if name == "redis" else "")
        print(f"  {label:<68} {r.rps:7.1f} req/s  p50 {r.percentile(0.5):5.1f} ms  p95 {r.percentile(0.95):5.1f} ms  "
              f"(server CPU {100 * r.server_cpu_s / r.wall_s:.0f}%, redis-server CPU {100 * r.redis_cpu_s / r.wall_s:.0f}%"
              f"{extra})")
    commands = sorted(((calls / runs["redis"].requests, command) for command, calls in runs["redis"].redis_commands.items()
                       if calls), reverse=True)
    print("  Redis commands per request of quotas Redis, as redis-server counted them (top-level and inside Lua "
          "scripts): " + ", ".join(f"{command} {n:.2f}" for n, command in commands))
    none = runs["none"]
    for name, what in (("memory", "memory"), ("redis", "Redis ")):
        ratio = none.rps / runs[name].rps
        aim = f" (aim <= {AIM})" if name == "redis" else ""
        print(f"  quota overhead over HTTP, {what} = {ratio:.2f}x{aim}   [no-quotas/quotas throughput; "
              f"server CPU per request {1000 * none.server_cpu_s / none.requests:.2f} -> "
              f"{1000 * runs[name].server_cpu_s / runs[name].requests:.2f} ms]")
    if 100 * none.server_cpu_s / none.wall_s < 90:
        print(f"  note: the server below 90% CPU without quotas: the machine was busy with other work (load average "
              f"{load_average()}) or the load too light; the ratios are noisier than usual")
    failed = {name: r for name, r in runs.items() if r.failures}
    for name, r in failed.items():
        print(f"  WARNING: {name}: {r.failures} unexpected answers over HTTP, first: {r.first_failure}", file=sys.stderr)
    return 1 if failed else 0


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0,
                        help="in-process measured seconds per variant, over the rounds (default 6)")
    parser.add_argument("--rounds", type=int, default=60, help="in-process alternating rounds (default 60)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per variant first, each mode (default 1)")
    parser.add_argument("--http-duration", type=float, default=4.0,
                        help="measured seconds per variant over HTTP, in rounds of ~0.5 s (default 4)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent HTTP workers (default 16)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP part")
    parser.add_argument("--profile", action="store_true",
                        help="instead of timing, profile the Redis variant in process (cProfile) for --duration s")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.http_duration <= 0 or args.concurrency < 1:
        parser.error("durations must be positive, --rounds and --concurrency at least 1")
    return args


async def in_process(args: argparse.Namespace, redis: RedisServer) -> int:
    built = await build_variants(redis.url, "parkgate-bench:")
    try:
        headers = {**HEADERS, "authorization": f"Bearer {built.key}"}
        posts = {name: AsgiPost(app, BODY, headers) for name, app in built.apps.items()}
        print(f"redis-server {redis_version(redis.url)} on 127.0.0.1:{redis.port} (throwaway, no persistence); "
              f"client store and Redis quotas on it")
        plan = built.plan
        print(f"client bench-dashboard ({' '.join(SCOPES)}, every facility), API key; plan {plan.name!r}: "
              f"{plan.requests} requests and {plan.cost} cost points per {plan.window_s} s, max query cost "
              f"{plan.max_query_cost} (never refuses)")
        for note in await check_same_work(built, posts):
            print(note)
        variants = {name: Variant(name, VARIANTS[name], posts[name]) for name in VARIANTS}
        if args.profile:
            for line in await redis_breakdown(built, posts["redis"]):
                print(line)
            await profile(variants["redis"], args.duration)
            return 0
        print(f"in-process ASGI (prepared scope, no sockets), one request at a time; warm-up {args.warmup:g} s per "
              f"variant, then {args.rounds} rounds, every order of the three in turn: {args.duration:g} s each; "
              f"load average {load_average()}")
        for variant in variants.values():
            await run_for(variant, args.warmup, record=False)
        gc.collect()
        gc.freeze()
        order = orders(list(VARIANTS))
        for _ in range(args.rounds):
            for name in next(order):
                await run_for(variants[name], args.duration / args.rounds)
        gc.unfreeze()
        if built.runtime.quotas.status != "redis":
            raise RuntimeError(f"the Redis enforcer fell back ({built.runtime.quotas.status}) during timing")
        none = variants["none"]
        for v in variants.values():
            print(f"  {v.label:<68} {v.ms_per_op:6.3f} ms/op {v.ops_per_s:7.1f} op/s  (CPU {v.cpu_ms_per_op:.3f} ms/op, "
                  f"{v.cpu_percent:.0f}%; {v.ops} requests)")
        for name, what in (("memory", "memory"), ("redis", "Redis ")):
            v = variants[name]
            aim = f" (aim <= {AIM})" if name == "redis" else ""
            print(f"  quota overhead, {what} = {none.ops_per_s / v.ops_per_s:.2f}x{aim}   [no-quotas/quotas throughput; "
                  f"{1000 * (v.ms_per_op - none.ms_per_op):+.0f} us per request, of which CPU "
                  f"{1000 * (v.cpu_ms_per_op - none.cpu_ms_per_op):+.0f} us; {spread(none, v)}]")
        busy = [v.name for v in (none, variants["memory"]) if v.cpu_percent < 90]
        if busy:
            print(f"  note: {', '.join(busy)} below 90% CPU (nothing there waits on I/O): the machine was busy with other "
                  f"work (load average {load_average()}); the ratios are noisier than usual")
        for line in await redis_breakdown(built, posts["redis"]):
            print(line)
        failed = [v for v in variants.values() if v.failures]
        for v in failed:
            print(f"  WARNING: {v.name}: {v.failures} unexpected answers, first: {v.first_failure}", file=sys.stderr)
        return 1 if failed else 0
    finally:
        await built.runtime.aclose()


def redis_version(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2.0)
    try:
        return str(client.info("server").get("redis_version"))
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop redis-server and the child
    print(f"code under test: {code_under_test()}")
    started = time.perf_counter()
    with throwaway_redis() as redis:
        status = asyncio.run(in_process(args, redis))
        if not args.profile and not args.no_http:
            status = asyncio.run(http_bench(args, redis)) or status
    print(f"({time.perf_counter() - started:.0f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
