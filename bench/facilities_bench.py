"""Benchmark: THE facilities query through the gateway, as a ratio against plain strawberry.

    .venv/bin/python bench/facilities_bench.py [--duration 10] [--rounds 2] [--concurrency 16] [--warmup 2]
                                               [--client aiohttp|httpx] [--header 'NAME: VALUE']
                                               [--exec-duration 3] [--no-executor]

Two servers, each in its own process (so the load generator's CPU never counts against them),
both under uvicorn with the same settings (access_log=False, ws="websockets-sansio"):

  gateway    the sandbox (`build_sandbox`): the gateway plus the six simulated vendor systems,
             reached by the gateway over real HTTP on every request (there is no cache yet)
  baseline   a plain strawberry schema (bench/plain_schema.py) with stock ParserCache and
             ValidationCache, served by strawberry's stock `strawberry.asgi.GraphQL` app on
             starlette, answering from memory with data captured from the sandbox in this run

The same HTTP load (N concurrent workers, fixed duration, after a warm-up) is run against each;
the figures are printed as ratios gateway/baseline measured in the same run. Absolute numbers
depend on the machine; the ratios are the figures to report. See bench/README.md.

A second, in-process comparison (skip with --no-executor): our `Executor` on the gateway schema
with per-request loaders replaying vendor answers captured once (no HTTP at all), against the
baseline schema's `schema.execute`, one operation at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from _serving import loopback_socket, uvicorn_config  # re-exported: other benches import them from here

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

#: THE facilities query: what an operator's dashboard asks for every facility
QUERY = """\
query Facilities {
  facilities(first: 100) {
    totalCount
    edges {
      node {
        id
        name
        city
        timeZone
        capacity
        occupancy {
          free
          occupied
          percentOccupied
          status
          freshness
          served
          counted { occupied }
          sensed { occupied }
        }
        rates { currency lines { kind amount { amount currency } } }
        sources { id status }
      }
    }
  }
}
"""
BODY = orjson.dumps({"query": QUERY, "operationName": "Facilities"})
HEADERS = {"content-type": "application/json", "accept": "application/json"}
SANDBOX_SYSTEM_IDS = ("parcs-central", "parcs-london", "guidance", "enforcement", "hotel-pms", "open-data")


# --- servers, each in a child process ------------------------------------------------------------


def server_main(kind: str, data: dict[str, Any] | None, conn: Any, keys_file: str | None = None) -> None:
    """Child process: bind a loopback port, report it, build the app, serve until terminated."""
    import inspect

    import uvicorn

    sock = loopback_socket()
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    if kind == "gateway":
        from gateway.sandbox import build_sandbox

        options: dict[str, Any] = {}
        if keys_file is not None and "keys_file" in inspect.signature(build_sandbox).parameters:
            options["keys_file"] = Path(keys_file)  # a sandbox with authentication writes its demo keys there
        app, _ = build_sandbox(base_url, **options)
    else:
        from plain_schema import build_app

        assert data is not None
        app = build_app(data)
    conn.send(port)
    conn.close()
    watch_parent()
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


def watch_parent() -> None:
    """Shut this server down (SIGTERM to itself) if the bench process dies without stopping it."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


@dataclass
class Server:
    name: str
    process: mp.process.BaseProcess
    base_url: str

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"


def start_server(ctx: Any, kind: str, data: dict[str, Any] | None = None, keys_file: str | None = None,
                 timeout_s: float = 30.0) -> Server:
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=server_main, args=(kind, data, child, keys_file), name=f"bench-{kind}", daemon=True)
    process.start()
    child.close()
    deadline = time.monotonic() + timeout_s
    server = Server(kind, process, "")
    try:
        if not parent.poll(timeout_s):
            raise RuntimeError(f"the {kind} server did not report its port in {timeout_s:.0f} s")
        server.base_url = f"http://127.0.0.1:{parent.recv()}"
    except EOFError:
        raise RuntimeError(f"the {kind} server exited before it started (exit code {process.exitcode})") from None
    finally:
        parent.close()
    with httpx.Client(timeout=2.0) as client:
        while True:
            if not process.is_alive():
                raise RuntimeError(f"the {kind} server exited while starting (exit code {process.exitcode})")
            try:
                if client.get(f"{server.base_url}/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not answer /healthz in {timeout_s:.0f} s")
            time.sleep(0.05)


def stop_server(server: Server) -> None:
    process = server.process
    if process.is_alive():
        process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)


#: the scopes THE query needs, where the gateway checks scopes
QUERY_SCOPES = {"facilities:read", "occupancy:read", "rates:read"}


def sandbox_credential(keys_file: Path) -> tuple[str, str] | None:
    """A demo key of the sandbox that may run THE query on every facility, as a header; None without auth.

    Only when the sandbox has authentication and wrote its demo clients' keys: the least-privileged
    client that sees every facility with the query's scopes (a real client pays for authentication).
    """
    if not keys_file.exists():
        return None
    clients = orjson.loads(keys_file.read_bytes())
    fitting = [
        (len(info.get("scopes", ())), name, info["key"])
        for name, info in clients.items()
        if info.get("facilities") is None and QUERY_SCOPES <= set(info.get("scopes", ()))
    ]
    if not fitting:
        raise RuntimeError(f"no sandbox demo client in {keys_file} may run the query on every facility")
    # Not a client on a deliberately small quota plan (the sandbox's `throttled-demo`: 30 requests
    # a minute): the load would measure its 429s. `driver-app` when it fits, else the least privileged.
    fitting = [c for c in fitting if "throttled" not in c[1]] or fitting
    preferred = [c for c in fitting if c[1] == "driver-app"]
    _, name, key = (preferred or [min(fitting)])[0]
    return name, key


def unthrottled_credential(keys_file: Path, graphql_url: str) -> tuple[str, str] | None:
    """`sandbox_credential`'s choice, as a client whose quota the load cannot exhaust; None without auth.

    Quotas apply (the demo clients' `standard` plan allows 600 requests a minute, which the load
    spends in seconds), so the bench makes a client of its own through the admin GraphQL API, as
    the sandbox's `admin` demo client: the chosen demo client's scopes, every facility, and quota
    overrides no run can exhaust (bench/_replay.py BENCH_QUOTA). The gateway then does the same
    work per request as for the demo client, quota checks included, and never refuses. A checkout
    without that API (or without an admin key) gets the demo client itself.
    """
    chosen = sandbox_credential(keys_file)
    if chosen is None:
        return None
    name, key = chosen
    clients = orjson.loads(keys_file.read_bytes())
    from _replay import create_bench_client

    async def make() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30.0) as client:

            async def post(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
                response = await client.post(graphql_url, content=body, headers=headers)
                return response.status_code, response.content

            return await create_bench_client(post, clients["admin"]["key"], f"bench-{name}",
                                             list(clients[name]["scopes"]), clients[name].get("facilities"))

    try:
        made = asyncio.run(make())
    except (KeyError, RuntimeError) as exc:
        print(f"note: no bench client ({str(exc)[:200]}); authenticating as the demo client {name!r} itself")
        return name, key
    return f"{made['name']} (a client with {name}'s scopes and quota {made['quota']})", made["key"]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# --- the answer, and making sure both servers do the same work -----------------------------------


def post_query(url: str) -> dict[str, Any]:
    response = httpx.post(url, content=BODY, headers=HEADERS, timeout=30.0)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:500]}")
    body = orjson.loads(response.content)
    if body.get("errors") or not body.get("data"):
        raise RuntimeError(f"{url} answered with errors: {orjson.dumps(body.get('errors')).decode()[:1000]}")
    return body


def shape_differences(a: Any, b: Any, path: str = "data") -> list[str]:
    """Where two answers differ in shape: keys, list lengths, or scalar types (values may differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return [f"{path}: keys {list(a)} vs {list(b)}"]
        return [d for key in a for d in shape_differences(a[key], b[key], f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in shape_differences(x, y, f"{path}[{i}]")]
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} vs {type(b).__name__}"]
    return []


def differing_values(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict):
        return [d for key in a for d in differing_values(a[key], b[key], f"{path}.{key}" if path else key)]
    if isinstance(a, list):
        return [d for x, y in zip(a, b, strict=True) for d in differing_values(x, y, f"{path}[]")]
    return [] if a == b else [path]


# --- HTTP load -----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    failures: int
    wall_s: float
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float | None

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    @property
    def server_cpu_percent(self) -> float | None:
        return None if self.server_cpu_s is None else 100 * self.server_cpu_s / self.wall_s

    @property
    def client_cpu_percent(self) -> float:
        return 100 * self.client_cpu_s / self.wall_s


PostFn = Callable[[], Awaitable[tuple[int, bytes]]]


@asynccontextmanager
async def http_client(url: str, concurrency: int, client_kind: str) -> AsyncIterator[PostFn]:
    """One POST of THE query; aiohttp when available (less client CPU per request), else httpx."""
    if client_kind == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

            async def post() -> tuple[int, bytes]:
                async with session.post(url, data=BODY, headers=HEADERS) as response:
                    return response.status, await response.read()

            yield post
    else:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

            async def post() -> tuple[int, bytes]:
                response = await client.post(url, content=BODY, headers=HEADERS)
                return response.status_code, response.content

            yield post


async def run_load(post: PostFn, concurrency: int, duration_s: float, server_pid: int | None) -> LoadResult:
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, content = await post()
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200 or b'"errors"' in content:
                failures += 1

    cpu0, server0 = time.process_time(), process_cpu_seconds(server_pid) if server_pid else None
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    cpu1, server1 = time.process_time(), process_cpu_seconds(server_pid) if server_pid else None
    server_cpu = None if server0 is None or server1 is None else server1 - server0
    return LoadResult(len(latencies), failures, wall, latencies, cpu1 - cpu0, server_cpu)


async def measure(server: Server, args: argparse.Namespace, seconds: float, warmup_s: float,
                  before: Callable[[], None] | None = None) -> LoadResult:
    """Warm up (unmeasured), call `before`, then measure `seconds` of load."""
    async with http_client(server.graphql_url, args.concurrency, args.client) as post:
        if warmup_s > 0:
            await run_load(post, args.concurrency, warmup_s, None)
        if before is not None:
            before()
        return await run_load(post, args.concurrency, seconds, server.process.pid)


def combine(results: list[LoadResult]) -> LoadResult:
    server_cpu = [r.server_cpu_s for r in results]
    return LoadResult(
        requests=sum(r.requests for r in results),
        failures=sum(r.failures for r in results),
        wall_s=sum(r.wall_s for r in results),
        latencies_ms=[latency for r in results for latency in r.latencies_ms],
        client_cpu_s=sum(r.client_cpu_s for r in results),
        server_cpu_s=None if None in server_cpu else sum(server_cpu),  # type: ignore[arg-type]
    )


def vendor_calls(server: Server) -> dict[str, int]:
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        return {s: client.get(f"/sandbox/systems/{s}/stats").json()["total"] for s in SANDBOX_SYSTEM_IDS}


# --- in-process: our Executor with replayed loaders vs strawberry's schema.execute ---------------


@dataclass
class ExecResult:
    ops: int
    wall_s: float

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.wall_s

    @property
    def ms_per_op(self) -> float:
        return 1000 * self.wall_s / self.ops


async def timed(op: Callable[[], Awaitable[None]], duration_s: float) -> ExecResult:
    warm_until = time.perf_counter() + min(1.0, duration_s / 3)
    while time.perf_counter() < warm_until:
        await op()
    ops = 0
    started = time.perf_counter()
    deadline = started + duration_s
    while time.perf_counter() < deadline:
        await op()
        ops += 1
    return ExecResult(ops, time.perf_counter() - started)


async def executor_comparison(duration_s: float) -> tuple[ExecResult, ExecResult, list[str]]:
    """The GraphQL execution alone, no HTTP anywhere: gateway Executor vs plain strawberry."""
    import uvicorn

    from gateway.execution import Executor
    from gateway.kernel.context import RequestContext
    from gateway.loaders import Loaders
    from gateway.sandbox import build_sandbox
    from resolvers.schema import schema as gateway_schema
    from plain_schema import build_schema

    def context(loaders: Loaders) -> RequestContext:
        # A request context as the endpoint makes one; once requests carry a principal (the
        # authentication work in progress), the in-process run asks as an unrestricted client.
        extra: dict[str, Any] = {}
        if "principal" in {f.name for f in dataclasses.fields(RequestContext)}:
            from gateway.auth.authenticate import UNRESTRICTED

            extra["principal"] = UNRESTRICTED
        return RequestContext(runtime=runtime, loaders=loaders, **extra)

    class RecordingLoaders(Loaders):
        """Real loaders that keep every resource future they hand out."""

        def __init__(self, systems: Any) -> None:
            super().__init__(systems)
            self.recorded: dict[tuple[Any, ...], asyncio.Future[Any]] = {}

        def resource(self, system_id: str, resource: Any, *args: Any) -> asyncio.Future[Any]:
            future = super().resource(system_id, resource, *args)
            self.recorded[(system_id, resource, *args)] = future
            return future

    class ReplayLoaders(Loaders):
        """Loaders that answer from recorded (completed) futures: no vendor call at all."""

        def __init__(self, systems: Any, recorded: dict[tuple[Any, ...], asyncio.Future[Any]]) -> None:
            super().__init__(systems)
            self.recorded = recorded

        def resource(self, system_id: str, resource: Any, *args: Any) -> asyncio.Future[Any]:
            return self.recorded[(system_id, resource, *args)]

    # The sandbox in this process, only to capture one round of vendor answers over real HTTP.
    sock = loopback_socket()
    app, _ = build_sandbox(f"http://127.0.0.1:{sock.getsockname()[1]}")
    runtime = app.state.runtime
    server = uvicorn.Server(uvicorn_config(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        executor = Executor(gateway_schema, introspection=runtime.config.server.introspection)
        prepared = executor.prepare(QUERY, "Facilities")
        for _ in range(2):  # the second round sees every source UP, as the HTTP run does
            recording = RecordingLoaders(runtime.systems)
            live = await executor.execute(prepared, context(recording), None, "Facilities")
            if live.errors:
                raise RuntimeError(f"in-process gateway execution failed: {live.errors}")
        recorded = recording.recorded
    finally:
        server.should_exit = True
        await task

    async def gateway_op() -> None:
        result = await executor.execute(prepared, context(ReplayLoaders(runtime.systems, recorded)), None, "Facilities")
        if result.errors:
            raise RuntimeError(f"gateway execution failed: {result.errors}")

    plain = build_schema(live.data)

    async def plain_op() -> None:
        result = await plain.execute(QUERY, operation_name="Facilities")
        if result.errors:
            raise RuntimeError(f"plain execution failed: {result.errors}")

    check = await plain.execute(QUERY, operation_name="Facilities")
    differences = shape_differences(live.data, check.data)
    gateway_result = await timed(gateway_op, duration_s)
    plain_result = await timed(plain_op, duration_s)
    return gateway_result, plain_result, differences


# --- main ----------------------------------------------------------------------------------------


def describe(result: LoadResult) -> str:
    server_cpu = f"{result.server_cpu_percent:.0f}%" if result.server_cpu_percent is not None else "n/a"
    return (
        f"{result.rps:7.1f} req/s  p50 {result.percentile(0.50):6.1f} ms  p95 {result.percentile(0.95):6.1f} ms  "
        f"({result.requests} requests, {result.failures} failed; server CPU {server_cpu}, client CPU {result.client_cpu_percent:.0f}%)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per target, all rounds (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load per target first (default 2)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate gateway/baseline this many times, --duration split between rounds (default 2)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent client workers (default 16)")
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default=None, help="HTTP client (default aiohttp if installed)")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                        help="an extra header on every request to both servers, e.g. 'X-API-Key: pk_...' (repeatable)")
    parser.add_argument("--exec-duration", type=float, default=3.0, help="seconds per side of the in-process comparison (default 3)")
    parser.add_argument("--no-executor", action="store_true", help="skip the in-process Executor comparison")
    args = parser.parse_args(argv)
    if args.client is None:
        try:
            import aiohttp  # noqa: F401

            args.client = "aiohttp"
        except ImportError:
            args.client = "httpx"
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            parser.error(f"--header {header!r} is not NAME:VALUE")
        HEADERS[name.strip().lower()] = value.strip()
    if args.duration <= 0 or args.warmup < 0 or args.concurrency < 1 or args.rounds < 1 or args.exec_duration <= 0:
        parser.error("durations must be positive, --concurrency and --rounds at least 1")
    return args


def code_under_test() -> str:
    """Where the gateway code measured comes from (PYTHONPATH can point at another checkout)."""
    import subprocess

    import gateway

    root = Path(gateway.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "gateway", "resolvers", "adapters"],
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return str(root)
    changed = len(dirty.stdout.splitlines())
    return f"{root} at {head.stdout.strip()}" + (f" + {changed} uncommitted changes in gateway/resolvers/adapters" if changed else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the `finally` below stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"code under test: {code_under_test()}")
    ctx = mp.get_context("spawn")  # a clean interpreter per server: no state inherited from this one
    servers: list[Server] = []
    scratch = tempfile.TemporaryDirectory(prefix="facilities-bench-")
    try:
        keys_file = Path(scratch.name) / "sandbox-keys.json"
        gateway = start_server(ctx, "gateway", keys_file=str(keys_file))
        servers.append(gateway)
        credential = None if {"authorization", "x-api-key"} & set(HEADERS) else unthrottled_credential(
            keys_file, gateway.graphql_url)
        if credential is not None:
            HEADERS["authorization"] = f"Bearer {credential[1]}"
            print(f"gateway authentication: API key of {credential[0]}")
        post_query(gateway.graphql_url)  # the first answer has every source UNKNOWN (not called yet)
        captured = post_query(gateway.graphql_url)["data"]
        baseline = start_server(ctx, "baseline", captured)
        servers.append(baseline)

        gateway_answer, baseline_answer = post_query(gateway.graphql_url), post_query(baseline.graphql_url)
        differences = shape_differences(gateway_answer["data"], baseline_answer["data"])
        if differences:
            print("The two endpoints do not return the same shape; refusing to compare them:", file=sys.stderr)
            for difference in differences[:20]:
                print(f"  {difference}", file=sys.stderr)
            return 1
        prefix = "facilities.edges[].node."
        moving = sorted({path.removeprefix(prefix) for path in differing_values(gateway_answer["data"], baseline_answer["data"])})
        facilities = len(captured["facilities"]["edges"])
        size = len(orjson.dumps(gateway_answer))

        print(f"facilities query: {facilities} facilities, {size} bytes of JSON; "
              f"concurrency {args.concurrency}, {args.warmup:g} s warm-up + {args.duration:g} s per target "
              f"in {args.rounds} alternating rounds, "
              f"client {args.client}, {os.cpu_count()} CPUs, load average {load_average()}")
        print(f"same shape on both endpoints: yes (values that moved since capture: {', '.join(moving) or 'none'})")

        # Alternate the targets (gateway, baseline, gateway, baseline...) so that a change in the
        # machine's load during the run (it is shared, 2 cores) hits both about equally.
        runs: dict[str, list[LoadResult]] = {"gateway": [], "baseline": []}
        calls = dict.fromkeys(SANDBOX_SYSTEM_IDS, 0)
        segment = args.duration / args.rounds
        for round_index in range(args.rounds):
            warmup = args.warmup if round_index == 0 else min(args.warmup, 0.5)
            before_calls: dict[str, int] = {}
            runs["gateway"].append(asyncio.run(measure(
                gateway, args, segment, warmup, before=lambda: before_calls.update(vendor_calls(gateway))
            )))
            for system_id, total in vendor_calls(gateway).items():
                calls[system_id] += total - before_calls[system_id]
            runs["baseline"].append(asyncio.run(measure(baseline, args, segment, warmup)))
    finally:
        for server in servers:
            stop_server(server)
        scratch.cleanup()

    gateway_run, baseline_run = combine(runs["gateway"]), combine(runs["baseline"])
    # Requests still in flight at a segment's end are counted on the vendor side but not here: ±concurrency.
    per_query = sum(calls.values()) / max(1, gateway_run.requests)
    by_system = ", ".join(f"{s} {n / max(1, gateway_run.requests):.1f}" for s, n in calls.items() if n)
    print(f"  gateway (sandbox, vendors over HTTP): {describe(gateway_run)}")
    print(f"      vendor HTTP calls per query: {per_query:.1f} ({by_system})")
    print(f"  plain strawberry from memory:         {describe(baseline_run)}")
    throughput_ratio = gateway_run.rps / baseline_run.rps
    p50_ratio = gateway_run.percentile(0.5) / baseline_run.percentile(0.5)
    p95_ratio = gateway_run.percentile(0.95) / baseline_run.percentile(0.95)
    per_round = "  ".join(
        f"{g.rps / b.rps:.2f}x" for g, b in zip(runs["gateway"], runs["baseline"], strict=True)
    )
    print(f"  ratio gateway/baseline = {throughput_ratio:.2f}x throughput "
          f"(p50 latency {p50_ratio:.1f}x, p95 latency {p95_ratio:.1f}x; per round: {per_round})")
    if gateway_run.failures or baseline_run.failures:
        print("  WARNING: some requests failed; the figures above are not comparable", file=sys.stderr)
    unsaturated = [name for name, run in (("gateway", gateway_run), ("baseline", baseline_run))
                   if run.server_cpu_percent is not None and run.server_cpu_percent < 90]
    if unsaturated:
        print(f"  note: {' and '.join(unsaturated)} server below 90% CPU: the machine was busy with other work "
              f"(load average {load_average()}) or the load too light; the ratio is noisier than usual")

    if not args.no_executor:
        gateway_exec, plain_exec, exec_differences = asyncio.run(executor_comparison(args.exec_duration))
        if exec_differences:
            print(f"execution only: shapes differ ({exec_differences[:3]}); ratio not printed", file=sys.stderr)
            return 1
        print("execution only (in-process, no HTTP; gateway loaders replay captured vendor answers):")
        print(f"  gateway Executor:                {gateway_exec.ms_per_op:6.2f} ms/op ({gateway_exec.ops_per_s:6.0f} op/s)")
        print(f"  plain strawberry schema.execute: {plain_exec.ms_per_op:6.2f} ms/op ({plain_exec.ops_per_s:6.0f} op/s)")
        print(f"  ratio gateway/baseline = {gateway_exec.ops_per_s / plain_exec.ops_per_s:.2f}x throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
