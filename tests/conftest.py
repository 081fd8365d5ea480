"""Fixtures shared by every test folder: the sandbox test bed, and a throwaway Redis.

Session-scoped fixtures here are made once per run, whichever folders run. Tests talk to the bed
over real HTTP. Every test starts with every system healthy and request counts at zero, whatever
the previous test did to them. Plain helpers (the `Bed` class among them) are in tests/support/.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pytest_redis import factories as redis_factories

from adapters.simulated.harness import FaultMode
from gateway.sandbox import build_sandbox
from tests.support.bed import TEST_BREAKER_RESET_S, TEST_OCCUPANCY_TTL_S, TEST_TIMEOUT_S, Bed
from tests.support.processes import REDIS_CLI_MISSING, REDIS_MISSING, OwnCluster, OwnRedis, OwnSentinel
from tests.support.servers import bound_socket, serve


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def bed() -> AsyncIterator[Bed]:
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, timeout_s=TEST_TIMEOUT_S, breaker_reset_s=TEST_BREAKER_RESET_S,
                                 cache_ttl_s={"occupancy": TEST_OCCUPANCY_TTL_S}, polling=False)
    async with serve(app, sock), httpx.AsyncClient(timeout=30) as http:
        assert sandbox.clients, "the sandbox seeds its demo clients at startup"
        subscriptions = app.state.events.vendor_subscriptions  # made in the background once the server listens
        for _ in range(500):
            if set(subscriptions.subscribed) >= set(subscriptions.adapters):
                break
            await asyncio.sleep(0.02)
        assert set(subscriptions.subscribed) >= set(subscriptions.adapters), "the vendors were not subscribed to"
        headers = {"authorization": f"Bearer {sandbox.clients['admin']['key']}"}
        async with httpx.AsyncClient(timeout=30, headers=headers) as api:
            yield Bed(url, sandbox, http, api, app)


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def healthy_systems(request: pytest.FixtureRequest) -> None:
    """Every test starts with healthy systems, zero request counts and an empty cache."""
    if "bed" not in request.fixturenames:
        return
    bed: Bed = request.getfixturevalue("bed")
    for sim in bed.sandbox.simulators.values():
        sim.control.set_fault(FaultMode.OK)
        sim.control.reset_stats()
    for adapter in bed.sandbox.runtime.systems.adapters.values():
        adapter.http.breaker.success()  # a breaker a previous test opened: the system answers again
    await bed.clear_cache()


# --- Redis: a throwaway redis-server of the tests' own, never the machine's -------------

#: pytest-redis's process factory on a random free port (its own `redis_proc` fixture is
#: left alone and unused); reach it through `redis_server`, which checks for the binary first
_parkgate_redis_proc = redis_factories.redis_proc(port=None)


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> Any:
    """A redis-server started for this test session on a free port; stopped at the end."""
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    return request.getfixturevalue("_parkgate_redis_proc")


@pytest.fixture(scope="session")
def redis_url(redis_server: Any) -> str:
    return f"redis://{redis_server.host}:{redis_server.port}/0"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A running redis-server of this test's own, which the test may stop and start (an outage)."""
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    redis = OwnRedis(tmp_path / "own-redis")
    redis.start()
    try:
        yield redis
    finally:
        if redis.running:
            redis.stop()


def _redis_tools() -> None:
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    if shutil.which("redis-cli") is None:
        pytest.fail(REDIS_CLI_MISSING, pytrace=False)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnCluster]:
    """A Redis Cluster of three masters of the session's own (`redis_cluster.url`: redis+cluster://…)."""
    _redis_tools()
    cluster = OwnCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _sentinel(directory: Path) -> Iterator[OwnSentinel]:
    _redis_tools()
    sentinel = OwnSentinel(directory)
    try:
        sentinel.start()
        yield sentinel
    finally:
        sentinel.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnSentinel]:
    """A master, its replica and three Sentinels of the session's own (`redis_sentinel.url`:
    redis+sentinel://…/parkgate). Left as it is: a test that fails it over uses `own_sentinel`."""
    yield from _sentinel(tmp_path_factory.mktemp("redis-sentinel"))


@pytest.fixture
def own_sentinel(tmp_path: Path) -> Iterator[OwnSentinel]:
    """A Sentinel deployment of this test's own, which the test may fail over."""
    yield from _sentinel(tmp_path / "own-sentinel")
