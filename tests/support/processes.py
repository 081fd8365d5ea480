"""Servers a test starts as processes of their own: a redis-server it can stop and start, a local
Redis Cluster and a Sentinel deployment (throwaway processes on loopback ports, in temporary folders),
and gateway processes (`parkgate serve`) on a configuration like a deployment's."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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
        return self._answers(self.port)

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")  # not while it loads its data (-LOADING)
        except OSError:
            return False


REDIS_MISSING = ("redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server; "
                 "macOS: brew install redis) — the tests start their own throwaway Redis, cluster and Sentinels")
REDIS_CLI_MISSING = ("redis-cli not found on PATH: install it (Debian/Ubuntu: apt-get install redis-tools, which "
                     "redis-server brings along; macOS: brew install redis) — it creates the test cluster")


def _redis_command(*args: str) -> str:
    """`redis-cli ARGS…` (a test's own servers only), its output; fails the test on an error."""
    result = subprocess.run(["redis-cli", *args], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"redis-cli {' '.join(args)}: {result.stderr or result.stdout}"
    return result.stdout


def _info(port: int, *args: str) -> dict[str, str]:
    """A server's INFO (or SENTINEL MASTER's pairs) as a dict; empty while it cannot answer."""
    try:
        out = subprocess.run(["redis-cli", "-p", str(port), *args], check=False, capture_output=True, text=True, timeout=5).stdout
    except subprocess.TimeoutExpired:
        return {}
    if args and args[0].upper() == "SENTINEL":
        lines = out.splitlines()
        return dict(zip(lines[::2], lines[1::2], strict=False))
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("#"))


def _wait(condition: Any, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s"
        time.sleep(0.1)


class _Servers:
    """redis-server processes of one test deployment, each in a folder of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        #: each server's own arguments, to start it again as it was (`restart`)
        self.arguments: dict[int, tuple[tuple[str, ...], bool]] = {}

    def spawn(self, port: int, *args: str, sentinel: bool = False) -> None:
        self.arguments[port] = (args, sentinel)
        folder = self.directory / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        if sentinel:  # a Sentinel rewrites its own configuration file: it needs one it may write
            (folder / "sentinel.conf").write_text("\n".join(args) + "\n")
            command = ["redis-server", str(folder / "sentinel.conf"), "--sentinel"]
        else:
            command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--dir", str(folder), *args]
        self.processes[port] = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
        _wait(lambda: self._answers(port), f"redis-server on port {port} answers PING", 10)

    def _answers(self, port: int) -> bool:
        process = self.processes[port]
        assert process.poll() is None, f"redis-server on port {port} exited at start ({process.returncode})"
        return OwnRedis._answers(port)

    def restart(self, ports: list[int], pause_s: float) -> None:
        """Stopped (a clean shutdown: what it keeps on disk it keeps), away `pause_s`, then started
        on the same port with the same arguments: an operator's restart."""
        for port in ports:
            self.processes[port].terminate()
        for port in ports:
            self.processes[port].wait(timeout=10)
        time.sleep(pause_s)
        for port in ports:
            args, sentinel = self.arguments[port]
            self.spawn(port, *args, sentinel=sentinel)

    def kill(self, port: int) -> None:
        """Gone at once, as a machine that died: no shutdown, no last save."""
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            process.wait(timeout=10)


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free as well."""
    while True:
        port = free_port()
        if port + 10_000 < 65_536:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10_000))
                except OSError:
                    continue
            return port


class OwnCluster:
    """A Redis Cluster of three masters (no replicas) on loopback ports, slots spread by
    `redis-cli --cluster create`; `url` is the gateway's `redis+cluster://` form. `persistent`: each
    node keeps an append-only file, so `restart()` brings the cluster back with its data."""

    def __init__(self, directory: Path, masters: int = 3, *, persistent: bool = False) -> None:
        self.servers = _Servers(directory)
        self.ports = [_cluster_port() for _ in range(masters)]
        self.persistent = persistent

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        for port in self.ports:
            self.servers.spawn(port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                               "--cluster-node-timeout", "2000", *(("--appendonly", "yes") if self.persistent else ()))
        _redis_command("--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-replicas", "0",
                       "--cluster-yes")
        self._wait_ok()

    def _wait_ok(self) -> None:
        _wait(lambda: all(_info(p, "CLUSTER", "INFO").get("cluster_state") == "ok" for p in self.ports),
              "the cluster is ready (every slot served, every node agreeing)")

    def restart(self, pause_s: float) -> None:
        """Every node stopped, away `pause_s`, started again (from its nodes file: the same slots)."""
        self.servers.restart(self.ports, pause_s)
        self._wait_ok()

    def stop(self) -> None:
        self.servers.stop()


class OwnSentinel:
    """One master, one replica and three Sentinels watching them (quorum 2) on loopback ports; `url`
    is the gateway's `redis+sentinel://` form. `failover()` has the Sentinels promote the replica."""

    SERVICE = "parkgate"

    def __init__(self, directory: Path) -> None:
        self.servers = _Servers(directory)
        self.master, self.replica = free_port(), free_port()
        self.sentinels = [free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{port}" for port in self.sentinels) + f"/{self.SERVICE}"

    def start(self) -> None:
        self.servers.spawn(self.master)
        self.servers.spawn(self.replica, "--replicaof", "127.0.0.1", str(self.master))
        _wait(lambda: _info(self.replica, "INFO", "replication").get("master_link_status") == "up",
              "the replica is in sync with the master")
        for port in self.sentinels:
            self.servers.spawn(port, f"port {port}", "bind 127.0.0.1", f"dir {self.servers.directory / str(port)}",
                               f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master} 2",
                               f"sentinel down-after-milliseconds {self.SERVICE} 1000",
                               f"sentinel failover-timeout {self.SERVICE} 10000", sentinel=True)
        self._wait_watched()

    def _wait_watched(self) -> None:
        """Every Sentinel knows the master and its replica: SENTINEL FAILOVER can promote it."""
        def watched() -> bool:
            states = [_info(port, "SENTINEL", "MASTER", self.SERVICE) for port in self.sentinels]
            return all(s.get("num-slaves") == "1" and s.get("flags") == "master" for s in states)
        _wait(watched, "the Sentinels watch the master and its replica", 30)

    def _named_master(self, sentinel: int) -> int | None:
        out = _redis_command("-p", str(sentinel), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE).split()
        return int(out[1]) if len(out) == 2 else None

    def failover(self) -> tuple[int, int]:
        """The Sentinels promote the replica (SENTINEL FAILOVER); (old, new) master ports once the new
        master takes writes and every Sentinel names it."""
        old = self._named_master(self.sentinels[0])
        assert old is not None
        new = self.replica if old == self.master else self.master
        _redis_command("-p", str(self.sentinels[0]), "SENTINEL", "FAILOVER", self.SERVICE)
        _wait(lambda: _info(new, "INFO", "replication").get("role") == "master", "the Sentinels promoted the replica")
        _wait(lambda: all(self._named_master(port) == new for port in self.sentinels), "every Sentinel names the new master")
        return old, new  # the old master is turned into a replica a moment later, as the Sentinels find it

    def stop(self) -> None:
        self.servers.stop()


def systems_by_variables(systems: Iterable[tuple[str, str, str, Mapping[str, str]]],
                         prefix: str = "") -> tuple[dict[str, Any], dict[str, str]]:
    """Systems given as (id, dialect, base URL, credentials), as a deployment's configuration names
    them: each credential a ${VARIABLE}; and the environment that sets those variables."""
    env: dict[str, str] = {}
    document: dict[str, Any] = {}
    for system_id, dialect, base_url, given in systems:
        credentials = {}
        for name, value in given.items():
            variable = f"{prefix}{system_id}_{name}".upper().replace("-", "_")
            env[variable] = value
            credentials[name] = f"${{{variable}}}"
        document[system_id] = {"dialect": dialect, "base_url": base_url, "credentials": credentials}
    return document, env


def deployment_config(bed: Bed, redis_url: str, tmp: Path) -> tuple[Path, dict[str, str]]:
    """The sandbox's vendor systems, served by a deployment that keeps its clients in Redis: the
    configuration file (credentials as ${VARIABLES}) and the environment that sets them."""
    systems, variables = systems_by_variables(
        (sid, s.dialect, s.base_url, s.credentials) for sid, s in bed.sandbox.config.systems.items())
    env = {"PATH": os.environ.get("PATH", ""), PEPPER_VAR: uuid.uuid4().hex, **variables}
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


def start_gateway(config: Path, env: dict[str, str], *args: str, port: int | None = None,
                  log_level: str = "WARNING") -> tuple[subprocess.Popen[str], str]:
    """`parkgate serve [ARGS…]` in a process of its own on `port` (a free one by default): the process and its
    base URL (see wait_ready). Its stderr is a pipe read only once it exits: at INFO its line per request would
    fill the pipe and stall it."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port),
                                "--log-level", log_level, *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    return process, f"http://127.0.0.1:{port}"


async def wait_ready(url: str, process: subprocess.Popen[str], timeout_s: float = 30.0) -> None:
    """Until the gateway process at `url` answers /healthz; fails at once, with its stderr, if it exits.
    The bound is generous: a process starting on a busy 2-core machine took over 10 s (the exit is what fails fast)."""
    async with httpx.AsyncClient() as http:
        async def healthy() -> bool:
            assert process.poll() is None, f"the gateway exited: {process.stderr.read() if process.stderr else ''}"
            try:
                return (await http.get(f"{url}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(healthy, timeout_s, every_s=0.05, message=f"the gateway at {url} did not start")
