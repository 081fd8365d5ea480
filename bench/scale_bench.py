"""Benchmark: does a page of facilities cost the page, or the operator? (issue 14, part 2)

    .venv/bin/python bench/scale_bench.py [--sizes 100,1000,5000] [--duration 5] [--rounds 3] [--seed 7]
                                          [--page middle|first]

One sandbox per size (`parkgate sandbox --facilities N`: adapters/simulated/generate.py), each in
its own process on loopback, all built in this run. Every sandbox keeps vendor answers for a day
(`cache_ttl_s`), so once warm no request reaches a vendor, and its response cache is switched off
(every request executes). Then, round after round (sizes interleaved, so the machine's load
changes hit every size alike), one keep-alive client sends THE facilities query
(bench/facilities_bench.py `QUERY`, `facilities(first: 100)`) back to back for `--duration`
seconds, asking for a page in the middle of the list (`--page first`: the first page).

Then, the upstream cache alone, in this process (`--cache-duration`; 0 skips it): a list of N
facilities' occupancy stored once, read back as the slice a page needs (`get_slice`, 100
facilities from the middle) and, for contrast, whole (`get`), on the memory backend and on a
throwaway redis-server the bench starts when one is installed.

Before warming a sandbox up, it counts the vendor calls its first page costs with nothing cached
(by system and endpoint, from the simulators' own counters).

Per size it prints the median latency and the server's CPU time per request (user + system, from
/proc: what the request cost the gateway, whatever else runs on the machine), and each as a ratio
against the smallest size measured in the same run. The aim (issue 14): at 5,000 garages
≤ 1.5x the cost at 100.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from facilities_bench import QUERY, SANDBOX_SYSTEM_IDS, Server, stop_server, unthrottled_credential, watch_parent

DAY_S = 86_400
#: every resource kept a day: a warm sandbox answers from the upstream cache only
TTLS = {name: DAY_S for name in ("occupancy", "citations", "stays", "quotes", "rates", "facilities", "zones", "properties")}
PAGE_QUERY = QUERY.replace("facilities(first: 100)", "facilities(first: 100, after: $after)").replace(
    "query Facilities {", "query Facilities($after: String) {")


def server_main(facilities: int, seed: int, keys_file: str, conn: Any) -> None:
    """Child process: a sandbox of `facilities` garages, response cache off, served until terminated."""
    import uvicorn
    from _serving import loopback_socket, uvicorn_config

    from adapters.simulated.generate import generate_world
    from gateway.sandbox import build_sandbox

    sock = loopback_socket()
    port = sock.getsockname()[1]
    app, _ = build_sandbox(f"http://127.0.0.1:{port}", world=generate_world(facilities, seed), polling=False,
                           cache_ttl_s=TTLS, keys_file=Path(keys_file), timeout_s=60.0)
    app.state.graphql.responses.cache = None  # every request executes: the cost of the page itself
    conn.send(port)
    conn.close()
    watch_parent()
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


def start(ctx: Any, facilities: int, seed: int, keys_file: Path, timeout_s: float = 600.0) -> Server:
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=server_main, args=(facilities, seed, str(keys_file), child),
                          name=f"scale-{facilities}", daemon=True)
    process.start()
    child.close()
    if not parent.poll(timeout_s):
        raise RuntimeError(f"the sandbox of {facilities} did not start in {timeout_s:.0f} s")
    server = Server(f"{facilities}", process, f"http://127.0.0.1:{parent.recv()}")
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5.0) as client:
        while True:  # up once it answers and has written its demo keys (at startup)
            if time.monotonic() > deadline or not process.is_alive():
                raise RuntimeError(f"the sandbox of {facilities} did not come up")
            try:
                if keys_file.exists() and client.get(f"{server.base_url}/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.1)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def middle_cursor(client: httpx.Client, url: str, headers: dict[str, str], facilities: int) -> str | None:
    """The cursor after which the middle page of the list starts (None: the first page)."""
    skip = max(0, facilities // 2 - 50)
    if skip == 0:
        return None
    query = "query($n: Int!) { facilities(first: $n) { edges { cursor } } }"
    after: str | None = None
    while skip > 0:
        step = min(100, skip)
        body = {"query": query.replace("first: $n", "first: $n, after: $after").replace("($n: Int!)", "($n: Int!, $after: String)"),
                "variables": {"n": step, "after": after}}
        edges = client.post(url, json=body, headers=headers).json()["data"]["facilities"]["edges"]
        after, skip = edges[-1]["cursor"], skip - step
    return after


def vendor_calls(client: httpx.Client, server: Server) -> dict[str, int]:
    """Requests each simulated system has received so far, by `system endpoint` (the sandbox's control API)."""
    calls: dict[str, int] = {}
    for system_id in SANDBOX_SYSTEM_IDS:
        stats = client.get(f"{server.base_url}/sandbox/systems/{system_id}/stats").json()
        calls |= {f"{system_id} {endpoint}": n for endpoint, n in stats["by_endpoint"].items()}
    return calls


def cold_calls(client: httpx.Client, server: Server, body: bytes, headers: dict[str, str]) -> dict[str, int]:
    """The vendor calls of one page with nothing cached, by system and endpoint: what a page costs the
    vendors the first time (and after every TTL). Counted once the gateway's calls at start are over."""
    before = vendor_calls(client, server)
    for _ in range(50):  # the subscriptions and catalogs the gateway reads at start: wait until they are done
        time.sleep(0.2)
        if (now := vendor_calls(client, server)) == before:
            break
        before = now
    client.post(server.graphql_url, content=body, headers=headers)
    after = vendor_calls(client, server)
    return {endpoint: n - before.get(endpoint, 0) for endpoint, n in sorted(after.items()) if n > before.get(endpoint, 0)}


def warm(client: httpx.Client, url: str, body: bytes, headers: dict[str, str], name: str) -> None:
    """Ask until the answer has no errors twice in a row: every list the page needs is cached."""
    clean = 0
    for _ in range(60):
        answer = orjson.loads(client.post(url, content=body, headers=headers).content)
        if "errors" in answer:
            clean = 0
            time.sleep(1)
            continue
        assert len(answer["data"]["facilities"]["edges"]) == 100, f"{name}: a page of 100"
        clean += 1
        if clean == 2:
            return
    raise RuntimeError(f"the sandbox of {name} keeps answering with errors: {answer.get('errors', [])[:2]}")


def measure(client: httpx.Client, server: Server, body: bytes, headers: dict[str, str], duration_s: float
            ) -> tuple[float, float, int]:
    """(median latency ms, server CPU ms per request, requests) over `duration_s` of back-to-back requests."""
    pid = server.process.pid
    assert pid is not None
    latencies: list[float] = []
    cpu_before = cpu_s(pid)
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        started = time.perf_counter()
        response = client.post(server.graphql_url, content=body, headers=headers)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200 or b'"errors"' in response.content:
            raise RuntimeError(f"size {server.name}: {response.status_code} {response.text[:300]}")
    cpu = cpu_s(pid) - cpu_before
    return statistics.median(latencies) * 1000, cpu / len(latencies) * 1000, len(latencies)


# --- the upstream cache alone: a page's slice of a list of N facilities, memory and Redis ----------------


def cache_slices(sizes: list[int], duration_s: float, redis_url: str | None) -> None:
    """Per backend and size: a list answer of `size` facilities (two readings each) stored once, then
    `get_slice` of 100 facilities' readings back to back; and, for contrast, the whole list (`get`)."""
    import asyncio

    from adapters.models import Batch, OccupancyMethod, OccupancyReading
    from gateway.cache import Cache, MemoryCache, RedisCache
    from gateway.systems import OCCUPANCY
    from gateway.upstream import UpstreamCache, UpstreamPolicy
    from gateway.upstream_store import Want

    now = datetime.now(UTC)

    def batch(size: int) -> Batch[OccupancyReading]:
        return Batch(items=[OccupancyReading(f"site-{n}", level, OccupancyMethod.SENSED, 200, 90, 110, now, now)
                            for n in range(size) for level in (None, f"site-{n}-1")])

    async def run(make: Any, size: int) -> tuple[float, float]:
        value = batch(size)

        async def vendor(*_: Any) -> Batch[OccupancyReading]:
            return value

        cache: Cache = make()
        upstream = UpstreamCache(cache, UpstreamPolicy(ttl_s={"occupancy": DAY_S}), vendor)
        middle = size // 2 - 50
        want = Want(keys=tuple((f"site-{n}", None) for n in range(max(0, middle), max(0, middle) + 100)),
                    refs=tuple(f"site-{n}" for n in range(max(0, middle), max(0, middle) + 100)))
        try:
            await upstream.get("s", OCCUPANCY)  # stored
            per: list[float] = []
            for read in (lambda: upstream.get_slice("s", OCCUPANCY, OCCUPANCY.key, want),
                         lambda: upstream.get("s", OCCUPANCY)):
                await read()
                count, started = 0, time.perf_counter()
                while time.perf_counter() - started < duration_s:
                    await read()
                    count += 1
                per.append((time.perf_counter() - started) / count * 1000)
            assert upstream.metrics_dict()["s"]["upstream_calls"] == 1, "every read after the first a hit"
            return per[0], per[1]
        finally:
            await cache.clear()
            await cache.aclose()

    backends: list[tuple[str, Any]] = [("memory", MemoryCache)]
    if redis_url:
        backends.append(("redis", lambda: RedisCache(redis_url, f"scale-bench-{os.getpid()}:")))
    print("\nupstream cache alone: 100 facilities' readings (get_slice) of a list of N facilities, and the whole list (get)")
    print(f"{'backend':>8} {'garages':>8} {'slice ms':>9} {'x ' + str(sizes[0]):>8} {'whole ms':>9} {'x ' + str(sizes[0]):>8}")
    for name, make in backends:
        figures = {size: asyncio.run(run(make, size)) for size in sizes}
        base = figures[sizes[0]]
        for size, (sliced, whole) in figures.items():
            print(f"{name:>8} {size:>8} {sliced:>9.3f} {sliced / base[0]:>8.2f} {whole:>9.3f} {whole / base[1]:>8.2f}")


def own_redis(directory: Path) -> tuple[Any, str] | None:
    """A throwaway redis-server on a free loopback port (None when redis-server is not installed)."""
    import shutil
    import socket
    import subprocess

    if shutil.which("redis-server") is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.terminate()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per size per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--page", choices=("middle", "first"), default="middle")
    parser.add_argument("--cache-duration", type=float, default=2.0,
                        help="seconds per backend, size and read of the upstream cache alone (0: skip it)")
    options = parser.parse_args()
    sizes = sorted(int(n) for n in options.sizes.split(","))
    ctx = mp.get_context("spawn")
    servers: dict[int, Server] = {}
    bodies: dict[int, bytes] = {}
    auth: dict[int, dict[str, str]] = {}
    cold: dict[int, dict[str, int]] = {}
    headers: dict[str, str] = {"content-type": "application/json"}
    with tempfile.TemporaryDirectory() as tmp, httpx.Client(timeout=600.0) as client:
        try:
            for size in sizes:
                started = time.monotonic()
                keys_file = Path(tmp) / f"keys-{size}.json"
                servers[size] = start(ctx, size, options.seed, keys_file)
                chosen = unthrottled_credential(keys_file, servers[size].graphql_url)
                assert chosen is not None, "the sandbox writes its demo keys"
                own = {**headers, "authorization": f"Bearer {chosen[1]}"}
                after = middle_cursor(client, servers[size].graphql_url, own, size) if options.page == "middle" else None
                bodies[size] = orjson.dumps({"query": PAGE_QUERY, "operationName": "Facilities", "variables": {"after": after}})
                cold[size] = cold_calls(client, servers[size], bodies[size], own)
                warm(client, servers[size].graphql_url, bodies[size], own, str(size))
                auth[size] = own
                print(f"sandbox of {size:>5} garages up and warm in {time.monotonic() - started:5.1f} s", flush=True)
            results: dict[int, list[tuple[float, float, int]]] = {size: [] for size in sizes}
            for round_number in range(1, options.rounds + 1):
                for size in sizes:
                    results[size].append(measure(client, servers[size], bodies[size], auth[size], options.duration))
                print(f"round {round_number}: " + ", ".join(
                    f"{size}: {results[size][-1][0]:.1f} ms, {results[size][-1][1]:.1f} ms CPU" for size in sizes), flush=True)
        finally:
            for server in servers.values():
                stop_server(server)
    if options.cache_duration > 0:
        with tempfile.TemporaryDirectory() as tmp:
            redis = own_redis(Path(tmp))
            try:
                cache_slices(sizes, options.cache_duration, redis[1] if redis else None)
            finally:
                if redis is not None:
                    redis[0].terminate()
                    redis[0].wait(10)
            if redis is None:
                print("(no redis-server on PATH: memory only)")
    print(f"\nvendor calls of the first (cold) facilities(first: 100), {options.page} page, nothing cached")
    for size in sizes:
        print(f"{size:>8} garages: {sum(cold[size].values()):>4} calls  " +
              ", ".join(f"{endpoint} {n}" for endpoint, n in cold[size].items()))
    base = sizes[0]
    base_latency = statistics.median(r[0] for r in results[base])
    base_cpu = statistics.median(r[1] for r in results[base])
    print(f"\nfacilities(first: 100), {options.page} page, upstream cache warm, response cache off; "
          f"medians of {options.rounds} rounds of {options.duration:.0f} s; load {os.getloadavg()[0]:.2f}")
    print(f"{'garages':>8} {'requests':>9} {'latency ms':>11} {'x ' + str(base):>8} {'CPU ms/req':>11} {'x ' + str(base):>8}")
    for size in sizes:
        latency = statistics.median(r[0] for r in results[size])
        cpu = statistics.median(r[1] for r in results[size])
        requests = sum(r[2] for r in results[size])
        print(f"{size:>8} {requests:>9} {latency:>11.1f} {latency / base_latency:>8.2f} {cpu:>11.1f} {cpu / base_cpu:>8.2f}")


if __name__ == "__main__":
    main()
