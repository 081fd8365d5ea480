"""The upstream hop's cost: client CPU per vendor call, raw aiohttp vs httpx vs VendorHTTP.

    .venv/bin/python bench/http_hop_bench.py                 # ~30 s
    .venv/bin/python bench/http_hop_bench.py --calls 3000 --rounds 4 --concurrency 16

A simulated APDS vendor runs under uvicorn in a child process (its CPU is not counted); this
process makes the same call (GET /apds/v1/places, one page of 50 places, ~9 KB of JSON, body
read in full) through each client over real HTTP on loopback, in alternating rounds, and
reports CPU seconds of THIS process per call (time.process_time) and calls per wall second.
The figure that matters is the ratio to raw aiohttp measured in the same run: "throughput"
below is calls per CPU second of the client, so 0.5x means the hop costs twice raw aiohttp's CPU.

Clients:
    aiohttp            aiohttp.ClientSession, nothing else (the floor)
    httpx              httpx.AsyncClient, its own transport (httpcore)
    httpx+aiohttp      httpx.AsyncClient over httpx_aiohttp.AiohttpTransport
    VendorHTTP/httpx   adapters.http.VendorHTTP over httpx's own transport
    VendorHTTP         adapters.http.VendorHTTP as the adapters build it (its default transport)

VendorHTTP's figures include everything it does per call: breaker, deadline, concurrency slot,
tenacity (GETs are retryable), counters.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing as mp
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOKEN = "bench-token"
PATH = "/apds/v1/places"
PARAMS = {"offset": 0, "pageSize": 50}
HEADERS = {"X-MCC-Access-Token": TOKEN}  # the APDS README's header

Call = Callable[[], Awaitable[int]]


def server_main(conn: object) -> None:
    """Child process: the APDS simulator under uvicorn on a loopback port."""
    import threading

    import uvicorn

    from adapters.apds.simulator import create_simulator
    from adapters.simulated.world import World

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY on accept
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    conn.send(sock.getsockname()[1])  # type: ignore[attr-defined]
    conn.close()  # type: ignore[attr-defined]
    parent = os.getppid()

    def watch() -> None:  # stop if the bench dies without stopping us
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
    app = create_simulator(World(seed=11), "parcs-central", {"token": TOKEN}).app
    config = uvicorn.Config(app, access_log=False, log_level="warning", lifespan="on", timeout_keep_alive=30)
    uvicorn.Server(config).run(sockets=[sock])


def start_server() -> tuple[mp.process.BaseProcess, str]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=server_main, args=(child,), daemon=True, name="bench-apds")
    process.start()
    child.close()
    if not parent.poll(30):
        raise RuntimeError("the simulator did not report its port")
    url = f"http://127.0.0.1:{parent.recv()}"
    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + PATH, params=PARAMS, headers=HEADERS, timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the simulator did not answer")
        time.sleep(0.05)


# --- the clients ---------------------------------------------------------------------------


@asynccontextmanager
async def raw_aiohttp(url: str, pool: int) -> AsyncIterator[Call]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=pool)) as session:
        async def call() -> int:
            async with session.get(url + PATH, params=PARAMS, headers=HEADERS) as response:
                return len(await response.read())

        yield call


@asynccontextmanager
async def httpx_client(url: str, pool: int, transport: str) -> AsyncIterator[Call]:
    import httpx

    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        tr: httpx.AsyncBaseTransport = AiohttpTransport(limits=limits)
    else:
        tr = httpx.AsyncHTTPTransport(limits=limits)
    async with httpx.AsyncClient(base_url=url, transport=tr, timeout=5.0) as client:
        async def call() -> int:
            response = await client.get(PATH, params=PARAMS, headers=HEADERS)
            return len(response.content)

        yield call


@asynccontextmanager
async def vendor_http(url: str, pool: int, transport: str) -> AsyncIterator[Call]:
    import httpx

    from adapters.http import VendorHTTP

    tr: httpx.AsyncBaseTransport | None = None
    if transport == "httpx":
        tr = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool))
    http = VendorHTTP("parcs-central", url, max_concurrency=pool, transport=tr)
    try:
        async def call() -> int:
            response = await http.request("GET", PATH, params=PARAMS, headers=HEADERS)
            return len(response.content)

        yield call
    finally:
        await http.aclose()


@dataclass
class Target:
    name: str
    factory: Callable[[str, int], object]
    cpu_s: float = 0.0
    wall_s: float = 0.0
    calls: int = 0
    sizes: set[int] = field(default_factory=set)

    @property
    def cpu_us_per_call(self) -> float:
        return self.cpu_s / self.calls * 1e6

    @property
    def calls_per_wall_s(self) -> float:
        return self.calls / self.wall_s


TARGETS = [
    Target("aiohttp", raw_aiohttp),
    Target("httpx", lambda url, pool: httpx_client(url, pool, "httpx")),
    Target("httpx+aiohttp", lambda url, pool: httpx_client(url, pool, "aiohttp")),
    Target("VendorHTTP/httpx", lambda url, pool: vendor_http(url, pool, "httpx")),
    Target("VendorHTTP", lambda url, pool: vendor_http(url, pool, "default")),
]


async def run(target: Target, url: str, calls: int, concurrency: int, warmup: int) -> None:
    async with target.factory(url, concurrency) as call:  # type: ignore[attr-defined]
        async def worker(n: int) -> None:
            for _ in range(n):
                target.sizes.add(await call())

        await asyncio.gather(*(worker(warmup // concurrency + 1) for _ in range(concurrency)))
        per_worker = calls // concurrency
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
        target.cpu_s += time.process_time() - cpu0
        target.wall_s += time.perf_counter() - wall0
        target.calls += per_worker * concurrency


async def main_async(args: argparse.Namespace, url: str) -> None:
    for round_no in range(args.rounds):
        order = TARGETS if round_no % 2 == 0 else list(reversed(TARGETS))
        for target in order:
            await run(target, url, args.calls, args.concurrency, args.warmup)
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight (and pool size)")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    process, url = start_server()
    try:
        asyncio.run(main_async(args, url))
    finally:
        process.terminate()
        process.join(5)
    import aiohttp
    import httpx
    from importlib import metadata

    sniffio = "installed" if importlib.util.find_spec("sniffio") else "absent (httpcore assumes asyncio)"
    print(f"python {sys.version.split()[0]}, httpx {httpx.__version__}, aiohttp {aiohttp.__version__}, "
          f"httpx-aiohttp {metadata.version('httpx-aiohttp')}, sniffio {sniffio}, "
          f"{os.cpu_count()} CPUs; {args.rounds} rounds x {args.calls} calls, concurrency {args.concurrency}")
    sizes = {t.name: t.sizes for t in TARGETS}
    if len({frozenset(s) for s in sizes.values()}) != 1:
        print(f"the clients read different bodies: {sizes}", file=sys.stderr)
        return 1
    base = TARGETS[0]
    print(f"{'client':<18} {'CPU us/call':>12} {'calls/CPU s':>12} {'vs aiohttp':>11} {'calls/wall s':>13}")
    for t in TARGETS:
        print(f"{t.name:<18} {t.cpu_us_per_call:>12.0f} {1e6 / t.cpu_us_per_call:>12.0f} "
              f"{base.cpu_us_per_call / t.cpu_us_per_call:>10.2f}x {t.calls_per_wall_s:>13.0f}")
    vendor = TARGETS[-1]
    print(f"VendorHTTP vs raw aiohttp: {base.cpu_us_per_call / vendor.cpu_us_per_call:.2f}x throughput per CPU "
          f"(aim >= 0.5x); {vendor.calls_per_wall_s / base.calls_per_wall_s:.2f}x calls per wall second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
