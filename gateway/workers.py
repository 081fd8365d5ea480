"""Every core: `parkgate serve --workers N`, N gateway processes on one port.

Follow a start forward:

    supervisor   binds the port with SO_REUSEPORT and never listens on it: it keeps the port taken
                 (and learns which one when asked for 0); makes a fresh PROMETHEUS_MULTIPROC_DIR;
                 starts N workers, starts another when one dies, stops them all on SIGTERM/SIGINT
    worker i     `parkgate serve --worker-index i`: binds a socket of its own on the same port with
                 SO_REUSEPORT and listens on it; it answers with `X-Parkgate-Worker: i`
    kernel       Linux spreads new connections over the listening sockets of the group by a hash of
                 each connection's addresses and ports

Why a listening socket per worker: with one socket shared by every worker (`uvicorn --workers`),
whichever worker wakes first accepts, and under keep-alive clients one worker often took every
connection while the other idled. With a socket each, the kernel chooses, not a race.

The workers share the gateway's state through its Redis store, exactly as replicas on several
machines do (docs/deployment.md): `serve` refuses more than one worker on the in-memory store.
Each worker is a replica of its own on the event bus (`events.replica_id` + `/worker-i`), so it
reads every event and keeps its own place in the stream.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("parkgate.workers")

#: the response header that names the worker that answered (an index, 0 … N-1: nothing about the host)
WORKER_HEADER = "x-parkgate-worker"
#: where the workers' prometheus-client keeps its per-process files (its multi-process mode)
METRICS_DIR_VAR = "PROMETHEUS_MULTIPROC_DIR"
#: how long workers have to finish what they are doing after SIGTERM before they are killed
STOP_GRACE_S = 20.0
#: a worker that dies sooner than this after its start is started again only after a pause, which
#: doubles each time (up to RESTART_PAUSE_MAX_S): a worker that cannot start does not spin the CPU
QUICK_DEATH_S = 10.0
RESTART_PAUSE_MAX_S = 30.0


def reuse_port_supported() -> bool:
    """Only Linux spreads connections over SO_REUSEPORT sockets (the BSDs and macOS let the last
    socket bound take them all)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    started: float
    quick_deaths: int = 0


@dataclass
class Supervisor:
    """Runs `command(i)` for i in 0 … workers-1 until told to stop; see the module's docstring."""

    workers: int
    command: Sequence[str]  # the worker's command line; `--worker-index i` is added
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    grace_s: float = STOP_GRACE_S
    _running: dict[int, _Worker] = field(default_factory=dict)
    _stopping: bool = False
    _signals: int = 0

    def run(self) -> int:
        """Until SIGTERM or SIGINT; the exit status (0 after a clean stop)."""
        metrics_dir = tempfile.mkdtemp(prefix="parkgate-metrics-")  # fresh: no figures of dead processes
        self.env = {**self.env, METRICS_DIR_VAR: metrics_dir}
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            pending: dict[int, tuple[float, int]] = {}  # index: (start after, quick deaths so far)
            for index in range(self.workers):
                self._start(index, quick_deaths=0)
            while not self._stopping:
                time.sleep(0.1)
                for index, worker in list(self._running.items()):
                    code = worker.process.poll()
                    if code is None or self._stopping:
                        continue
                    del self._running[index]
                    self._forget(worker.process.pid)
                    quick = time.monotonic() - worker.started < QUICK_DEATH_S
                    deaths = worker.quick_deaths + 1 if quick else 0
                    pause = min(2.0 ** (deaths - 1), RESTART_PAUSE_MAX_S) if deaths else 0.0
                    log.warning("worker %d (pid %d) exited with status %s; another starts%s", index,
                                worker.process.pid, code, f" in {pause:.0f} s" if pause else "")
                    pending[index] = (time.monotonic() + pause, deaths)
                for index, (at, deaths) in list(pending.items()):
                    if time.monotonic() >= at and not self._stopping:
                        del pending[index]
                        self._start(index, quick_deaths=deaths)
            self._stop_all()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def _start(self, index: int, *, quick_deaths: int) -> None:
        # Each worker in a session of its own. A terminal's Ctrl-C then reaches the supervisor alone, which
        # stops every worker once (uvicorn takes a second signal as "exit now, drop connections"). And
        # where the kernel shares the CPU between sessions first (autogroup: desktop distributions, shared
        # build machines), N workers get N sessions' shares, not one session's share split N ways.
        process = subprocess.Popen([*self.command, "--worker-index", str(index)], env=self.env,
                                   start_new_session=True)
        self._running[index] = _Worker(index, process, time.monotonic(), quick_deaths)
        log.info("worker %d started (pid %d)", index, process.pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._stopping = True
        if self._signals > 1:  # asked twice: no more waiting
            for worker in self._running.values():
                _send(worker.process, signal.SIGKILL)

    def _stop_all(self) -> None:
        for worker in self._running.values():
            _send(worker.process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for worker in self._running.values():
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d (pid %d) still running %.0f s after SIGTERM: killed",
                            worker.index, worker.process.pid, self.grace_s)
                _send(worker.process, signal.SIGKILL)
                worker.process.wait()
            self._forget(worker.process.pid)
        self._running.clear()

    def _forget(self, pid: int) -> None:
        """prometheus-client's multi-process mode: a dead worker's live gauges stop counting. The folder is
        the workers' (set in their environment, not in the supervisor's own)."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.env[METRICS_DIR_VAR])


def _send(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def exit_with_parent() -> None:
    """In a worker: stop (SIGTERM to itself) if the supervisor is gone, killed without a chance to
    stop its workers, so no orphan keeps serving on the port. A daemon thread: a look a second."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("the supervisor (pid %d) is gone: this worker stops", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parkgate-parent-watch", daemon=True).start()


class WorkerHeader:
    """Names the worker on every answer (`X-Parkgate-Worker: i`, on HTTP responses and WebSocket
    handshakes): which worker took a connection is otherwise invisible to a client or a test."""

    def __init__(self, app: ASGIApp, index: int) -> None:
        self.app = app
        self.header = (WORKER_HEADER.encode(), str(index).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        await self.app(scope, receive, named)
