"""`parkgate serve --workers 2` against one worker, and granian against uvicorn (issue 14, part 4).

    .venv/bin/python bench/workers_bench.py                   # 5 runs of 1 worker vs 2 workers (--query executed)
    .venv/bin/python bench/workers_bench.py --runs 3 --duration 8 --connections 32
    .venv/bin/python bench/workers_bench.py --granian         # also: granian vs uvicorn, one worker each

What runs, all on loopback, each in a process of its own:
  redis      a throwaway redis-server (temporary folder, nothing saved): the gateway's store
  vendors    the sandbox's simulated vendors (`build_sandbox`, under uvicorn); the gateway reaches them
             over HTTP, as a deployment reaches its systems
  gateway    `parkgate serve --config FILE` on the Redis store, over those vendors: one worker (no
             supervisor: what `serve` is without --workers), then `--workers 2`; with --granian, the
             same app under granian (one worker) as well
  client     this process: `--connections` keep-alive HTTP/1.1 connections, each a fresh connection
             when it opens (so the kernel places it), each posting THE facilities query back to back
             as a bench client with a quota no run can spend. The client is raw asyncio streams with
             the request prepared once: it costs the machine as little CPU as a Python client can,
             because on 2 cores every cycle it takes is one a worker does not get.

Per run, the baseline (one worker) and the candidate (two workers) are measured back to back; the
ratio of their answers per second is the figure. The query is answered from the response cache
(Redis) nearly always, so the vendors (one process) are not what is measured; every request still
authenticates, is metered against the client's quota in Redis and is cost-checked.

Printed: per run the answers/s of each, the ratio, how many of the connections each worker held,
the 1-minute load average before and after; then min / median / max of the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUERY = """query Facilities {
  facilities(first: 100) {
    totalCount
    edges { node {
      id name city timeZone capacity
      occupancy { free occupied percentOccupied status freshness served counted { occupied } sensed { occupied } }
      rates { currency lines { kind amount { amount currency } } }
      sources { id status }
    } }
  }
}"""
#: with the client's own quota asked too, the answer is the client's: never from the response cache,
#: every request runs the whole query (over the upstream cache)
EXECUTED = QUERY.replace("query Facilities {", "query Facilities {\n  rateLimit { remaining }")
SCOPES = ["facilities:read", "occupancy:read", "rates:read"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> float:
    return os.getloadavg()[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """A process and its children (a supervisor and its workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(child) for child in children)]


# --- the parts: redis, vendors, the gateway ------------------------------------------------------

def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def vendors_main(conn: Any, garages: int | None = None) -> None:
    """The sandbox's simulated vendors (and its idle gateway) under uvicorn; sends back the systems'
    X
    world of that many garages (adapters/simulated/generate.py), else the sandbox's own six."""
    import uvicorn

    from adapters.simulated.generate import generate_world
    from gateway.sandbox import build_sandbox, demo_clients
    from tests.support.processes import systems_by_variables

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, polling=False, world=generate_world(garages) if garages else None)
    systems, env = systems_by_variables(
        (sid, s.dialect, s.base_url, s.credentials) for sid, s in sandbox.config.systems.items())
    facilities = {fid: f.model_dump(exclude_none=True) for fid, f in sandbox.config.facilities.items()}
    roles = {name: (sorted(s.value for s in scopes), list(only) if only is not None else None)
             for name, (scopes, only) in demo_clients(sandbox.world).items()}
    conn.send({"systems": systems, "facilities": facilities, "env": env, "url": url, "roles": roles})
    config = uvicorn.Config(app, access_log=False, log_level="warning", ws="websockets-sansio", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


def deployment(folder: Path, redis_url: str, vendors: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    env = {**os.environ, **vendors["env"], "PARKGATE_KEY_PEPPER": uuid.uuid4().hex}
    document = {
        "environment": "test",
        "systems": vendors["systems"],
        "facilities": vendors["facilities"],
        "auth": {"key_pepper": "${PARKGATE_KEY_PEPPER}"},
        "store": {"backend": "redis", "redis_url": redis_url, "prefix": f"bench-{uuid.uuid4().hex[:8]}:"},
        "events": {"polling": False},
    }
    path = folder / "parkgate.yaml"
    path.write_text(yaml.safe_dump(document))
    return path, env


def cli(config: Path, env: dict[str, str], *args: str) -> Any:
    result = subprocess.run([sys.executable, "-m", "gateway", *args, "--config", str(config)],
                            check=False, capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    if result.returncode != 0:
        raise RuntimeError(f"parkgate {' '.join(args)}: {result.stderr}")
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else result.stdout


@dataclass
class Gateway:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    workers: int
    server: str


def start_gateway(name: str, config: Path, env: dict[str, str], workers: int, server: str,
                  log: Path | None = None) -> Gateway:
    """`parkgate serve` (or granian) in a session of its own; its output to `log` if given, else nowhere."""
    port = free_port()
    if server == "granian":
        command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", str(workers), "--no-ws", "--log-level", "warning",
                   "_granian_app:build"]
        env = {**env, "PARKGATE_CONFIG": str(config), "PYTHONPATH": f"{REPO / 'bench'}:{REPO}"}
    else:
        command = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port),
                   "--workers", str(workers)]
    # A session of its own, as a service has: where the kernel shares the CPU between sessions first
    # (autogroup), the gateway does not share one session's share with this client.
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=output, stderr=output, start_new_session=True)
    return Gateway(name, process, port, workers, server)


def stop_gateway(gateway: Gateway) -> None:
    if gateway.process.poll() is None:
        gateway.process.send_signal(signal.SIGTERM)
    try:
        gateway.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(gateway.process.pid, signal.SIGKILL)
        gateway.process.wait()


# --- the client ------------------------------------------------------------------------------------

def request_bytes(port: int, key: str, query: str) -> bytes:
    body = json.dumps({"query": query}).encode()
    return (f"POST /graphql HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body


@dataclass
class Load:
    answers: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    #: connections held by each worker (by its X-Parkgate-Worker; "-" where there is none: one process)
    connections: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    #: CPU seconds during the measurement: the gateway's processes, Redis, the vendors
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_s(self) -> float:
        """Answers per CPU-second of the gateway's processes: what a server costs, however many
        threads it spreads over (granian parses HTTP on a thread of its own beside Python's)."""
        cpu = self.cpu_s.get("gateway", 0.0)
        return self.answers / cpu if cpu else 0.0


async def one_exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return status, headers, body


async def load(port: int, key: str, query: str, connections: int, warmup_s: float, seconds: float,
               watched: dict[str, list[int]]) -> Load:
    request = request_bytes(port, key, query)
    result = Load()
    measuring = asyncio.Event()
    stop_at = [float("inf")]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, headers, body = await one_exchange(reader, writer, request)
            if status != 200 or b'"errors"' in body:
                raise RuntimeError(f"the gateway answered {status}: {body[:300]!r}")
            result.connections[headers.get(b"x-parkgate-worker", b"-").decode()] += 1
            while True:
                status, _, body = await one_exchange(reader, writer, request)
                if time.monotonic() >= stop_at[0]:
                    return
                if measuring.is_set():
                    if status == 200:
                        result.answers += 1
                    else:
                        result.failures[str(status)] += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(connection()) for _ in range(connections)]
    await asyncio.sleep(warmup_s)
    for task in tasks:
        if task.done():
            task.result()  # a failure at the first answer says why
    cpu0, t0 = time.process_time(), time.monotonic()
    before = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in watched.items()}
    measuring.set()
    stop_at[0] = t0 + seconds
    await asyncio.sleep(seconds)
    result.cpu_s = {name: sum(cpu_seconds(pid) for pid in pids) - before[name] for name, pids in watched.items()}
    await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - t0
    result.client_cpu_s = time.process_time() - cpu0
    return result


async def wait_serving(gateway: Gateway, key: str, query: str, timeout_s: float = 90.0) -> None:
    """Until every worker answers the query (fresh connections until each worker was seen)."""
    request = request_bytes(gateway.port, key, query)
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    # granian's workers do not say who they are: one answer is all that can be seen
    expected = gateway.workers if gateway.server == "uvicorn" else 1
    while len(seen) < expected:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"{gateway.name} exited with {gateway.process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{gateway.name}: only workers {sorted(seen)} answered within {timeout_s:.0f} s")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            try:
                status, headers, _ = await one_exchange(reader, writer, request)
            finally:
                writer.close()
            if status == 200:
                seen.add(headers.get(b"x-parkgate-worker", b"-").decode())
                continue
        except (OSError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.2)


def combine(rounds: list[Load]) -> Load:
    total = Load()
    for part in rounds:
        total.answers += part.answers
        total.failures.update(part.failures)
        total.connections.update(part.connections)
        total.seconds += part.seconds
        total.client_cpu_s += part.client_cpu_s
        for name, seconds in part.cpu_s.items():
            total.cpu_s[name] = total.cpu_s.get(name, 0.0) + seconds
    return total


async def run_once(servers: list[tuple[str, int, str]], config: Path, env: dict[str, str], key: str,
                   args: argparse.Namespace, others: dict[str, list[int]]) -> dict[str, Load]:
    """Every server of the run started side by side (an idle one costs nothing), then measured in
    alternating rounds, so that what the rest of a shared machine does falls on all of them alike."""
    query = EXECUTED if args.query == "executed" else QUERY
    gateways = [start_gateway(name, config, env, workers, server) for name, workers, server in servers]
    try:
        for gateway in gateways:
            await wait_serving(gateway, key, query)
        rounds: dict[str, list[Load]] = {gateway.name: [] for gateway in gateways}
        for number in range(args.rounds):
            for gateway in gateways:
                watched = {"gateway": family(gateway.process.pid), **others}
                rounds[gateway.name].append(await load(
                    gateway.port, key, query, args.connections, args.warmup if number == 0 else 0.5,
                    args.duration / args.rounds, watched))
        return {name: combine(parts) for name, parts in rounds.items()}
    finally:
        for gateway in gateways:
            stop_gateway(gateway)


def describe(result: Load) -> str:
    spread = " ".join(f"w{w}:{n}" for w, n in sorted(result.connections.items()))
    failures = f", failures {dict(result.failures)}" if result.failures else ""
    cpu = " ".join(f"{name} {100 * seconds / result.seconds:.0f}" for name, seconds in
                   {**result.cpu_s, "client": result.client_cpu_s}.items())
    return (f"{result.per_s:8.0f} answers/s, {result.per_cpu_s:5.0f} per gateway CPU-second  "
            f"(connections {spread}; CPU % {cpu}{failures})")


def summary(name: str, ratios: list[float]) -> str:
    return (f"{name}: min {min(ratios):.2f}x  median {statistics.median(ratios):.2f}x  max {max(ratios):.2f}x"
            f"  over {len(ratios)} runs: {' '.join(f'{r:.2f}' for r in ratios)}")


async def bench(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="parkgate-workers-bench-"))
    redis, redis_url = start_redis(folder)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    vendors_process = ctx.Process(target=vendors_main, args=(child,), daemon=True)
    vendors_process.start()
    try:
        config, env = deployment(folder, redis_url, parent.recv())
        client = cli(config, env, "clients", "create", "--name", "bench", "--env", "test",
                     *(arg for scope in SCOPES for arg in ("--scope", scope)))
        cli(config, env, "clients", "update", "bench", "--override", "requests=100000000",
            "--override", "cost=1000000000", "--override", "max_query_cost=100000")
        key = client["key"]
        print(f"{os.cpu_count()} CPUs; {args.connections} keep-alive connections, {args.warmup:.0f} s warm-up + "
              f"{args.duration:.0f} s measured per server; load average now {load_average():.2f}", flush=True)
        ratios: list[float] = []
        granian_ratios: dict[str, list[float]] = {"1 worker, answers/s": [], "1 worker, per CPU-second": [],
                                                  "2 workers, answers/s": []}
        servers = [("1 worker", 1, "uvicorn"), ("2 workers", 2, "uvicorn")]
        if args.granian:
            servers += [("granian, 1 worker", 1, "granian"), ("granian, 2 workers", 2, "granian")]
        others = {"redis": [redis.pid], "vendors": [vendors_process.pid or 0]}
        for run in range(1, args.runs + 1):
            before = load_average()
            loads = await run_once(servers, config, env, key, args, others)
            one, two = loads["1 worker"], loads["2 workers"]
            ratio = two.per_s / one.per_s
            ratios.append(ratio)
            print(f"run {run}: load average {before:.2f} → {load_average():.2f}", flush=True)
            print(f"  1 worker   {describe(one)}", flush=True)
            print(f"  2 workers  {describe(two)}", flush=True)
            print(f"  ratio      {ratio:.2f}x", flush=True)
            if args.granian:
                granian, granian_two = loads["granian, 1 worker"], loads["granian, 2 workers"]
                figures = {"1 worker, answers/s": granian.per_s / one.per_s,
                           "1 worker, per CPU-second": granian.per_cpu_s / one.per_cpu_s,
                           "2 workers, answers/s": granian_two.per_s / two.per_s}
                print(f"  granian 1  {describe(granian)}", flush=True)
                print(f"  granian 2  {describe(granian_two)}", flush=True)
                print("  granian / uvicorn: " + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in figures.items()),
                      flush=True)
                for name, ratio in figures.items():
                    granian_ratios[name].append(ratio)
        print(summary("2 workers / 1 worker", ratios))
        for name, figures in granian_ratios.items():
            if figures:
                print(summary(f"granian / uvicorn, {name}", figures))
        print(f"load average at the end {load_average():.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min)")
        return 0
    finally:
        vendors_process.terminate()
        vendors_process.join(10)
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per server and run")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds the measured seconds are split into")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds of load before the first round")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--query", choices=["cached", "executed"], default="executed",
                        help="cached: answered from the response cache; executed: run every time")
    parser.add_argument("--granian", action="store_true", help="also measure granian (pip install granian)")
    args = parser.parse_args(argv)
    # SIGTERM ends the bench as Ctrl-C does: through the `finally`s that stop what it started
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.granian and shutil.which("granian", path=str(Path(sys.executable).parent)) is None:
        parser.error("--granian: granian is not installed in this environment (pip install granian)")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
