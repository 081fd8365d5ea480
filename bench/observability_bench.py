"""What observability costs: the same build with Prometheus metrics and OpenTelemetry tracing (1 %
sampling, spans exported over OTLP/HTTP to a local sink) on, against it with both off, in one run.

    .venv/bin/python bench/observability_bench.py                 # ~1 min
    .venv/bin/python bench/observability_bench.py --duration 12 --rounds 6

Three paths, each a sandbox pair (off, on) started afresh, served by uvicorn in this process (the
simulated vendors answer over real loopback HTTP); requests go to each gateway's ASGI app in
process, one at a time, alternating off and on for `--rounds` rounds:

    cached     THE facilities query again and again: answered from the response cache
    executed   the same with `rateLimit` asked too (no response cache): executed every time,
               vendor answers from the upstream cache
    uncached   the same with every upstream TTL at 0: every request calls the vendors (the hop's
               metrics and spans on every call)

Printed per path, for each build: CPU ms per request (this process's CPU time, every thread: the
span exporter's too) and requests per second; then the two ratios against `off`:

    cpu  off's CPU per request ÷ this build's: the throughput a CPU-bound server keeps (1.00 = free,
         0.95 = the issue's bound: at most 5 % of throughput). The headline figure: on a shared,
         loaded machine the CPU a request takes moves far less than the wall-clock rate.
    wall requests per second ÷ off's, as measured (with the per-round ratios' median and quartiles):
         on a busy machine this swings with what else runs; read it with `uptime`.

The request log is at WARNING in both builds (its INFO line per request is the same in both and not
what is measured here).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(1, str(BENCH_DIR.parent))

from _replay import AsgiPost, Variant, create_bench_client, run_for, spread  # noqa: E402
from _serving import loopback_socket, uvicorn_config  # noqa: E402
from facilities_bench import QUERY  # noqa: E402

EXECUTED_QUERY = QUERY.replace("query Facilities {", "query Executed {\n  rateLimit { remaining }", 1)
ALL_TTLS_ZERO = {name: 0 for name in ("occupancy", "citations", "stays", "quotes", "rates", "facilities", "zones",
                                      "properties")}
OFF = {"metrics": {"enabled": False}, "tracing": {"enabled": False}}


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that takes every export and keeps nothing but the count."""

    received = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
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


@asynccontextmanager
async def sandbox(observability: dict[str, Any], ttls: dict[str, int] | None) -> AsyncIterator[tuple[Any, Any]]:
    import uvicorn

    from gateway.sandbox import build_sandbox

    sock = loopback_socket()
    app, box = build_sandbox(f"http://127.0.0.1:{sock.getsockname()[1]}", polling=False, cache_ttl_s=ttls,
                             observability=observability)
    server = uvicorn.Server(uvicorn_config(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield app, box
    finally:
        server.should_exit = True
        await task


async def variant(name: str, app: Any, box: Any, query: str, operation: str) -> Variant:
    admin = box.clients["admin"]
    client = await create_bench_client(lambda body, headers: AsgiPost(app, body, headers)(), admin["key"],
                                       f"bench-{name}", admin["scopes"])
    body = orjson.dumps({"query": query, "operationName": operation})
    return Variant(name, name, AsgiPost(app, body, {"content-type": "application/json",
                                                     "authorization": f"Bearer {client['key']}"}))


async def measure(path: str, query: str, operation: str, ttls: dict[str, int] | None,
                  builds: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[Variant]:
    """Each build of `builds` (the first is the baseline) on one path, in alternating rounds."""
    async with AsyncExitStack() as stack:
        variants = []
        for name, observability in builds.items():
            app, box = await stack.enter_async_context(sandbox(observability, ttls))
            variants.append(await variant(name, app, box, query, operation))
        for v in variants:
            await run_for(v, args.warmup, record=False)
        per_round = args.duration / args.rounds
        for index in range(args.rounds):
            for v in (variants if index % 2 == 0 else variants[::-1]):
                await run_for(v, per_round)
        for v in variants:
            if v.failures:
                raise SystemExit(f"{path}/{v.name}: {v.failures} failed requests, first: {v.first_failure}")
        return variants


async def main(args: argparse.Namespace) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    tracing = {"enabled": True, "sample_ratio": args.sample_ratio, "otlp_endpoint": start_sink()}
    builds: dict[str, dict[str, Any]] = {"off": OFF, "on": {"metrics": {"enabled": True}, "tracing": tracing}}
    if args.split:
        builds["metrics"] = {"metrics": {"enabled": True}, "tracing": {"enabled": False}}
        builds["tracing"] = {"metrics": {"enabled": False}, "tracing": tracing}
    load = os.getloadavg()
    print(f"observability bench: pid {os.getpid()}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {args.rounds} rounds "
          f"of {args.duration / args.rounds:.1f} s per build and path, sampling {args.sample_ratio:g}")
    paths = [("cached", QUERY, "Facilities", None), ("executed", EXECUTED_QUERY, "Executed", None),
             ("uncached", EXECUTED_QUERY, "Executed", ALL_TTLS_ZERO)]
    lowest = float("inf")
    for path, query, operation, ttls in paths:
        started = time.perf_counter()
        off, *others = await measure(path, query, operation, ttls, builds, args)
        print(f"  {path:<9} {'off':<8} {off.cpu_ms_per_op:7.3f} CPU ms/req  {off.ops_per_s:8.1f} req/s"
              f"   [{time.perf_counter() - started:.0f} s]")
        for measured in others:
            cpu = off.cpu_ms_per_op / measured.cpu_ms_per_op
            wall = measured.ops_per_s / off.ops_per_s
            if measured.name == "on":
                lowest = min(lowest, cpu)
            print(f"  {'':<9} {measured.name:<8} {measured.cpu_ms_per_op:7.3f} CPU ms/req  {measured.ops_per_s:8.1f} req/s"
                  f"   cpu {cpu:.3f}  wall {wall:.3f} ({spread(measured, off)})")
    print(f"  spans exported to the sink in {Sink.received} batches")
    print(f"  bound: cpu ratio of `on` >= 0.95 on every path: {'held' if lowest >= 0.95 else 'NOT held'} "
          f"(lowest {lowest:.3f})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per build and path")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds (off, on) per path")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per build before the rounds")
    parser.add_argument("--split", action="store_true", help="also metrics alone and tracing alone")
    parser.add_argument("--sample-ratio", type=float, default=0.01, help="share of traces sampled when on")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
