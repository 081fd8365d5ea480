"""Servers a test starts as processes of their own: a redis-server it can stop and start, and gateway
processes (`parkgate serve`) on a configuration like a deployment's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import yaml

from tests.support.bed import Bed
from tests.support.servers import free_port
from tests.support.waiting import wait_until

#: the environment variable the deployment's key pepper is read from
PEPPER_VAR = "PARKGATE_KEY_PEPPER"
#: a deployment polls its poll-only systems this often, and holds a poller lease this long
POLL_INTERVAL_S = 0.5
POLL_LEASE_S = 2.0


class OwnRedis:
    """A redis-server of a test's own on a free port, to stop and start again while the session's
    Redis keeps running. It keeps its data in an append-only file in `directory`, so it comes back
    with it, as a production Redis does; `start(empty=True)` brings it back empty instead, as after
    the restart of a Redis that keeps nothing."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, empty: bool = False) -> None:
        assert not self.running, "this redis-server is running already"
        if empty:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers_ping():
            assert self.process.poll() is None, f"redis-server exited at start ({self.process.returncode})"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None and self.running, "this redis-server is not running"
        self.process.terminate()
        self.process.wait(timeout=10)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")  # not while it loads its data (-LOADING)
        except OSError:
            return False


def deployment_config(bed: Bed, redis_url: str, tmp: Path) -> tuple[Path, dict[str, str]]:
    """The sandbox's vendor systems, served by a deployment that keeps its clients in Redis: the
    configuration file (credentials as ${VARIABLES}) and the environment that sets them."""
    env = {"PATH": os.environ.get("PATH", ""), PEPPER_VAR: uuid.uuid4().hex}
    systems = {}
    for system_id, system in bed.sandbox.config.systems.items():
        credentials = {}
        for name, value in system.credentials.items():
            variable = f"{system_id}_{name}".upper().replace("-", "_")
            env[variable] = value
            credentials[name] = f"${{{variable}}}"
        systems[system_id] = {"dialect": system.dialect, "base_url": system.base_url, "credentials": credentials}
    document = {
        "environment": "test",
        "systems": systems,
        "facilities": {fid: f.model_dump(exclude_none=True) for fid, f in bed.sandbox.config.facilities.items()},
        "auth": {"key_pepper": f"${{{PEPPER_VAR}}}"},
        "store": {"backend": "redis", "redis_url": redis_url, "prefix": f"replicas-{uuid.uuid4().hex[:8]}:"},
        # poll-only systems read every half second (the lease outlives a few cycles), so tests can watch polling
        "events": {"poll_interval_s": POLL_INTERVAL_S, "lease_s": POLL_LEASE_S},
    }
    path = tmp / "parkgate.yaml"
    path.write_text(yaml.safe_dump(document))
    return path, env


def start_gateway(config: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`parkgate serve` in a process of its own on a free port: the process and its base URL (see wait_ready)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return process, f"http://127.0.0.1:{port}"


async def wait_ready(url: str, process: subprocess.Popen[str], timeout_s: float = 10.0) -> None:
    """Until the gateway process at `url` answers /healthz; fails at once, with its stderr, if it exits."""
    async with httpx.AsyncClient() as http:
        async def healthy() -> bool:
            assert process.poll() is None, f"the gateway exited: {process.stderr.read() if process.stderr else ''}"
            try:
                return (await http.get(f"{url}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(healthy, timeout_s, every_s=0.05, message=f"the gateway at {url} did not start")
