"""What observability costs: the same build with Prometheus metrics and OpenTelemetry tracing (1 %
sampling, spans exported over OTLP/HTTP to a local sink) on, against it with both off, in one run.

    .venv/bin/python bench/observability_bench.py                    # ~2 min
    .venv/bin/python bench/observability_bench.py --paths cached --split --duration 20

Each build is the sandbox (`gateway.sandbox.build_sandbox`, its simulated vendors answering over
real loopback HTTP on the same port) under uvicorn in a child process of its own, as `parkgate
sandbox` runs; this process is the load generator (aiohttp, `--concurrency` clients back to back).
Builds are measured in alternating rounds on three paths:

    cached     THE facilities query (bench/facilities_bench.py) again and again: the response cache answers
    executed   the same with `rateLimit` asked too (never kept in the response cache): executed every
               time, the vendors' answers from the upstream cache
    uncached   the same with every upstream TTL at 0: every request calls every vendor (the hop's
               metrics, and its spans when sampled, on every call)

Printed per path and build: the server's CPU ms per request (its process's user + system time,
every thread: the span exporter's too; read from /proc) and requests per second; then against `off`:

    cpu  off's CPU per request ÷ this build's: the throughput a CPU-bound server keeps (1.00 = free;
         the issue's bound is 0.95: at most 5 % of throughput). The headline figure: on a shared,
         loaded machine a request's CPU moves far less than the wall-clock rate.
    wall requests per second ÷ off's, with the per-round ratios' median and quartiles: on a busy
         machine it swings with whatever else runs; read it with the load printed first.

Both builds log at WARNING: the one INFO line per request is the same in both and not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(1, str(BENCH_DIR.parent))

from _replay import create_bench_client
from _serving import loopback_socket, uvicorn_config
from facilities_bench import QUERY, watch_parent

EXECUTED_QUERY = QUERY.replace("query Facilities {", "query Executed {\n  rateLimit { remaining }", 1)
ALL_TTLS_ZERO = {name: 0 for name in ("occupancy", "citations", "stays", "quotes", "rates", "facilities", "zones",
                                      "properties")}
OFF: dict[str, Any] = {"metrics": {"enabled": False}, "tracing": {"enabled": False}}
PATHS = {"cached": (QUERY, "Facilities", None), "executed": (EXECUTED_QUERY, "Executed", None),
         "uncached": (EXECUTED_QUERY, "Executed", ALL_TTLS_ZERO)}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the OTLP collector: takes every export, keeps nothing -------------------------------------------


class Sink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Sink.received += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def start_sink() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1/traces"


# --- a build in a child process ------------------------------------------------------------------------


def serve_build(observability: dict[str, Any], ttls: dict[str, int] | None, conn: Any) -> None:
    """Child: the sandbox with this observability section, under uvicorn; reports its port and admin key."""
    import uvicorn

    from gateway.sandbox import build_sandbox

    logging.basicConfig(level=logging.WARNING)
    watch_parent()  # the bench killed: this server goes too
    sock = loopback_socket()
    port = sock.getsockname()[1]
    app, box = build_sandbox(f"http://127.0.0.1:{port}", polling=False, cache_ttl_s=ttls, observability=observability)
    server = uvicorn.Server(uvicorn_config(app))

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        conn.send({"port": port, "admin": box.clients["admin"]})
        conn.close()
        await task

    asyncio.run(run())


@dataclass
class Build:
    name: str
    process: Any
    url: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    rounds: list[tuple[int, float, float]] = field(default_factory=list)  # (requests, wall s, server CPU s)
    failures: int = 0
    first_failure: str = ""

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * sum(r[2] for r in self.rounds) / sum(r[0] for r in self.rounds)

    @property
    def per_s(self) -> float:
        return sum(r[0] for r in self.rounds) / sum(r[1] for r in self.rounds)

    def round_rate(self, index: int) -> float:
        requests, wall, _ = self.rounds[index]
        return requests / wall


def start_build(ctx: Any, name: str, observability: dict[str, Any], ttls: dict[str, int] | None) -> Build:
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=serve_build, args=(observability, ttls, child), name=f"obs-bench-{name}", daemon=True)
    process.start()
    child.close()
    if not parent.poll(60):
        raise SystemExit(f"{name}: the sandbox did not start in 60 s")
    report = parent.recv()
    build = Build(name, process, f"http://127.0.0.1:{report['port']}")
    build.headers = {"admin": report["admin"]["key"], "scopes": report["admin"]["scopes"]}
    return build


async def load(session: Any, build: Build, seconds: float, concurrency: int, record: bool = True) -> None:
    """`concurrency` clients posting back to back for `seconds`; one round of `build`."""
    done = failures = 0
    first_failure = ""
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done, failures, first_failure
        while time.perf_counter() < deadline:
            async with session.post(f"{build.url}/graphql", data=build.body, headers=build.headers) as answer:
                body = await answer.read()
            done += 1
            if answer.status != 200 or b'"errors"' in body:
                failures += 1
                first_failure = first_failure or f"{answer.status}: {body[:300]!r}"

    cpu, started = build.cpu_s(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - started, build.cpu_s() - cpu
    if record:
        build.rounds.append((done, wall, cpu))
        build.failures += failures
        build.first_failure = build.first_failure or first_failure


async def measure(ctx: Any, path: str, builds: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[Build]:
    import aiohttp

    query, operation, ttls = PATHS[path]
    started = [start_build(ctx, name, observability, ttls) for name, observability in builds.items()]
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for build in started:
                admin = build.headers

                async def post(body: bytes, headers: dict[str, str], build: Build = build) -> tuple[int, bytes]:
                    async with session.post(f"{build.url}/graphql", data=body, headers=headers) as answer:
                        return answer.status, await answer.read()

                client = await create_bench_client(post, admin["admin"], f"bench-{build.name}", admin["scopes"])
                build.body = orjson.dumps({"query": query, "operationName": operation})
                build.headers = {"content-type": "application/json", "authorization": f"Bearer {client['key']}"}
                await load(session, build, args.warmup, args.concurrency, record=False)
            per_round = args.duration / args.rounds
            for index in range(args.rounds):
                for build in (started if index % 2 == 0 else started[::-1]):
                    await load(session, build, per_round, args.concurrency)
    finally:
        for build in started:
            build.process.terminate()
            build.process.join(10)
    for build in started:
        if build.failures:
            raise SystemExit(f"{path}/{build.name}: {build.failures} failed requests, first: {build.first_failure}")
    return started


def spread(measured: Build, off: Build) -> str:
    ratios = sorted(measured.round_rate(i) / off.round_rate(i) for i in range(len(off.rounds)))
    if len(ratios) < 4:
        return "per round: " + " ".join(f"{r:.2f}" for r in ratios)
    q = statistics.quantiles(ratios, n=4)
    return f"per round: median {q[1]:.2f}, quartiles {q[0]:.2f}-{q[2]:.2f}"


async def main(args: argparse.Namespace) -> None:
    ctx = multiprocessing.get_context("spawn")
    tracing = {"enabled": True, "sample_ratio": args.sample_ratio, "otlp_endpoint": start_sink()}
    builds: dict[str, dict[str, Any]] = {"off": OFF, "on": {"metrics": {"enabled": True}, "tracing": tracing}}
    if args.split:
        builds["metrics"] = {"metrics": {"enabled": True}, "tracing": {"enabled": False}}
        builds["tracing"] = {"metrics": {"enabled": False}, "tracing": tracing}
    load_avg = os.getloadavg()
    print(f"observability bench: load {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f} ({os.cpu_count()} CPUs), "
          f"{args.rounds} rounds of {args.duration / args.rounds:.1f} s per build and path, {args.concurrency} clients, "
          f"sampling {args.sample_ratio:g}")
    lowest = float("inf")
    for path in args.paths:
        started = time.perf_counter()
        off, *others = await measure(ctx, path, builds, args)
        print(f"  {path:<9} {'off':<8} {off.cpu_ms_per_request:7.3f} CPU ms/req  {off.per_s:8.1f} req/s"
              f"   [{time.perf_counter() - started:.0f} s]")
        for measured in others:
            cpu = off.cpu_ms_per_request / measured.cpu_ms_per_request
            wall = measured.per_s / off.per_s
            if measured.name == "on":
                lowest = min(lowest, cpu)
            print(f"  {'':<9} {measured.name:<8} {measured.cpu_ms_per_request:7.3f} CPU ms/req  {measured.per_s:8.1f} req/s"
                  f"   cpu {cpu:.3f}  wall {wall:.3f} ({spread(measured, off)})")
    print(f"  spans exported to the sink in {Sink.received} batches")
    print(f"  bound: cpu ratio of `on` >= 0.95 on every path: {'held' if lowest >= 0.95 else 'NOT held'} "
          f"(lowest {lowest:.3f})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=12.0, help="measured seconds per build and path")
    parser.add_argument("--rounds", type=int, default=12, help="alternating rounds per path")
    parser.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds per build before the rounds")
    parser.add_argument("--concurrency", type=int, default=8, help="clients posting back to back")
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS), help="which paths to measure")
    parser.add_argument("--split", action="store_true", help="also metrics alone and tracing alone")
    parser.add_argument("--sample-ratio", type=float, default=0.01, help="share of traces sampled when on")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
