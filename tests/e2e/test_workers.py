"""`parkgate serve --workers 2`: a real supervisor and its two worker processes on one port, on a
throwaway Redis, over the sandbox's simulated vendors (gateway/workers.py).

Fresh connections reach both workers; a worker killed is replaced; a subscription held by one worker
hears a webhook the other accepted; SIGTERM stops them all and leaves nothing behind, and workers
whose supervisor was killed stop by themselves; a count or a
store that cannot work is refused at once with exit status 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
import yaml

from tests.support.bed import Bed
from tests.support.processes import deployment_config, start_gateway
from tests.support.vendors import apds_entry
from tests.support.waiting import wait_until

WORKER = "x-parkgate-worker"
#: two workers start side by side on a machine that may be busy: each imports the whole gateway
START_S = 60.0


@dataclass
class Workers:
    process: subprocess.Popen[str]
    url: str
    config: Path
    env: dict[str, str]

    def pids(self) -> set[int]:
        """The supervisor's child processes: its workers (Linux: /proc)."""
        pid = self.process.pid
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


async def worker_of_fresh_connection(url: str) -> str | None:
    """Which worker answers /healthz on a new connection (None while none answers)."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"{url}/healthz")
    except httpx.TransportError:
        return None
    assert response.status_code == 200, response.text
    return response.headers[WORKER]


async def workers_seen(url: str, connections: int = 200) -> set[str]:
    """The workers that answered up to `connections` fresh connections (stops once both are seen)."""
    seen: set[str] = set()
    for _ in range(connections):
        worker = await worker_of_fresh_connection(url)
        if worker is not None:
            seen.add(worker)
        if len(seen) == 2:
            break
    return seen


async def start_workers(config: Path, env: dict[str, str]) -> Workers:
    process, url = start_gateway(config, env, "--workers", "2")
    workers = Workers(process, url, config, env)

    async def both_answer() -> bool:
        assert process.poll() is None, f"the supervisor exited: {process.stderr.read() if process.stderr else ''}"
        return await workers_seen(url, 20) == {"0", "1"}

    await wait_until(both_answer, START_S, every_s=0.2, message=f"two workers did not answer at {url}")
    return workers


def stop(workers: Workers) -> int:
    if workers.process.poll() is None:
        workers.process.send_signal(signal.SIGTERM)
    return workers.process.wait(timeout=60)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def workers(bed: Bed, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Workers]:
    config, env = deployment_config(bed, redis_url, tmp_path_factory.mktemp("workers"))
    started = await start_workers(config, env)
    try:
        yield started
    finally:
        stop(started)


async def test_fresh_connections_reach_both_workers_and_none_is_lost(workers: Workers) -> None:
    answered = [await worker_of_fresh_connection(workers.url) for _ in range(60)]
    # every connection answered: the supervisor's socket holds the port but never takes a connection
    assert None not in answered
    assert set(answered) == {"0", "1"}, answered
    assert len(workers.pids()) == 2


async def test_a_killed_worker_is_replaced(workers: Workers) -> None:
    before = workers.pids()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        pids = workers.pids()
        return len(pids) == 2 and victim not in pids and await workers_seen(workers.url, 20) == {"0", "1"}

    await wait_until(replaced, START_S, every_s=0.2, message="the killed worker was not replaced")
    assert workers.process.poll() is None
    assert workers.pids() - before, "a new worker process"


VEHICLES_AT_HBF = 'subscription { vehicleEvents(facilityId: "berlin-hbf") { type facilityId source plate } }'


async def _post_entry(bed: Bed, url: str, plate: str) -> str:
    """An APDS entry webhook on a fresh connection: the worker that accepted it."""
    path, raw, headers = apds_entry(bed, plate)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{url}{path}", content=raw, headers=headers)
    assert response.status_code == 202, response.text
    return response.headers[WORKER]


async def _plates(ws: Any, timeout_s: float) -> AsyncIterator[str]:
    """Plates of the vehicle events arriving on a graphql-transport-ws subscription (id 1)."""
    deadline = time.monotonic() + timeout_s
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), max(0.0, deadline - time.monotonic())))
        if message["type"] in ("ping", "pong"):
            continue
        assert message["type"] == "next", message
        yield message["payload"]["data"]["vehicleEvents"]["plate"]


async def test_a_subscription_on_one_worker_hears_a_webhook_the_other_accepted(bed: Bed, workers: Workers) -> None:
    created = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gateway", "clients", "create", "--name", "worker-watch",
                              "--scope", "enforcement:read", "--scope", "pii:read", "--config", str(workers.config)],
                             capture_output=True, text=True, env=workers.env, timeout=60, check=True)
    key = json.loads(created.stdout)["key"]
    async with websockets.connect(workers.url.replace("http", "ws") + "/graphql",
                                  subprotocols=["graphql-transport-ws"]) as ws:
        holder = ws.response.headers[WORKER]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": VEHICLES_AT_HBF}}))
        # The subscription goes live asynchronously: one webhook that arrives proves it is.
        await _post_entry(bed, workers.url, "B-WK 0")
        async for plate in _plates(ws, 10):
            if plate == "B-WK 0":
                break
        # Webhooks on fresh connections until the other worker accepts one; the kernel picks.
        accepted_by_other = None
        for n in range(1, 100):
            if await _post_entry(bed, workers.url, f"B-WK {n}") != holder:
                accepted_by_other = f"B-WK {n}"
                break
        assert accepted_by_other is not None, f"100 fresh connections all reached worker {holder}"
        heard = [plate async for plate in _until(_plates(ws, 10), accepted_by_other)]
    assert heard[-1] == accepted_by_other and set(heard) <= {f"B-WK {n}" for n in range(1, 100)}


async def _until(plates: AsyncIterator[str], last: str) -> AsyncIterator[str]:
    async for plate in plates:
        yield plate
        if plate == last:
            return


async def test_sigterm_stops_every_worker_and_leaves_nothing_behind(bed: Bed, redis_url: str, tmp_path: Path) -> None:
    config, env = deployment_config(bed, redis_url, tmp_path)
    workers = await start_workers(config, env)
    pids = workers.pids()
    metrics_dirs = {Path(dict(line.split("=", 1) for line in Path(f"/proc/{pid}/environ").read_text().split("\0")
                                if "=" in line)["PROMETHEUS_MULTIPROC_DIR"]) for pid in pids}
    assert len(metrics_dirs) == 1, "the workers share one directory for prometheus-client's multi-process files"
    metrics_dir = metrics_dirs.pop()
    assert metrics_dir.is_dir()
    status = stop(workers)
    assert status == 0, workers.process.stderr.read() if workers.process.stderr else ""
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a worker outlived its supervisor"
    assert not metrics_dir.exists(), "the metrics directory outlived the supervisor"
    port = int(workers.url.rsplit(":", 1)[1])
    with httpx.Client() as http, pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{port}/healthz")


async def test_workers_of_a_killed_supervisor_stop_by_themselves(bed: Bed, redis_url: str, tmp_path: Path) -> None:
    """A supervisor killed outright (no chance to stop its workers) leaves no orphan serving the port."""
    config, env = deployment_config(bed, redis_url, tmp_path)
    workers = await start_workers(config, env)
    pids = workers.pids()
    workers.process.send_signal(signal.SIGKILL)
    workers.process.wait(timeout=10)

    def all_gone() -> bool:
        # an orphan is reaped by init: until then it may linger as a zombie, which serves nothing
        return all(not Path(f"/proc/{pid}").exists() or _state(pid) == "Z" for pid in pids)

    await wait_until(all_gone, 30, every_s=0.2, message="a worker outlived its killed supervisor")
    assert await worker_of_fresh_connection(workers.url) is None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], check=False, capture_output=True, text=True, timeout=60,
                          env=env)


def test_a_worker_count_or_store_that_cannot_work_is_refused(bed: Bed, redis_url: str, tmp_path: Path) -> None:
    config, env = deployment_config(bed, redis_url, tmp_path)
    none = _cli("serve", "--config", str(config), "--workers", "0", env=env)
    assert none.returncode == 2, none.stderr
    assert "Invalid value for '--workers'" in none.stderr and "greater than or equal to 1" in none.stderr
    document = yaml.safe_load(config.read_text())
    document["store"] = {"backend": "memory"}
    memory = tmp_path / "memory.yaml"
    memory.write_text(yaml.safe_dump(document))
    diverging = _cli("serve", "--config", str(memory), "--workers", "2", env=env)
    assert diverging.returncode == 2, diverging.stderr
    assert "--workers 2 needs `store.backend: redis`" in diverging.stderr
    sandbox = _cli("sandbox", "--port", "0", "--workers", "2")
    assert sandbox.returncode == 2 and "the sandbox runs in one process" in sandbox.stderr
    for result in (none, diverging, sandbox):
        assert "Traceback" not in result.stderr
