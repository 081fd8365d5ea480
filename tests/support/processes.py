"""Servers a test starts as processes of their own: a redis-server it can stop and start."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.servers import free_port


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
