"""The test bed: one sandbox (gateway + five simulated vendors) on a real loopback port.

Tests talk to it over real HTTP. Every test starts with every system healthy and request
counts at zero, whatever the previous test did to them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from adapters.simulated.harness import FaultMode
from gateway.sandbox import Sandbox, build_sandbox
from tests.support import bound_socket, serve

#: short vendor timeouts so that a `slow` system times out quickly in tests
TEST_TIMEOUT_S = 1.0
#: a breaker that opens in tests closes again quickly
TEST_BREAKER_RESET_S = 1.0
#: occupancy stays fresh this long in the test sandbox, so expiry can be watched
TEST_OCCUPANCY_TTL_S = 2


@dataclass
class Bed:
    url: str
    sandbox: Sandbox
    http: httpx.AsyncClient  # sends no credentials
    api: httpx.AsyncClient  # sends the admin demo client's key
    app: Any = None

    def key(self, client: str = "admin") -> str:
        return self.sandbox.clients[client]["key"]

    def auth(self, client: str = "admin") -> dict[str, str]:
        return {"authorization": f"Bearer {self.key(client)}"}

    async def graphql(self, query: str, variables: dict[str, Any] | None = None, *, client: str = "admin") -> dict[str, Any]:
        """Run a query as one of the sandbox's demo clients (admin by default: it reads everything)."""
        response = await self.http.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                                        headers=self.auth(client))
        assert response.status_code == 200, response.text
        return response.json()

    def endpoint(self) -> Any:
        return self.app.state.graphql

    async def clear_cache(self) -> None:
        """Forget every cached vendor answer and response (as after a TTL), so the next query asks the vendors."""
        if self.sandbox.runtime.cache is not None:
            await self.sandbox.runtime.cache.clear()

    async def sandbox_clients(self) -> list[Any]:
        return await self.sandbox.runtime.store.clients()

    async def fault(self, system_id: str, mode: str, delay_ms: int = 0) -> None:
        response = await self.http.post(f"{self.url}/sandbox/systems/{system_id}/fault",
                                        json={"mode": mode, "delay_ms": delay_ms})
        assert response.status_code == 200, response.text

    async def stats(self, system_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.url}/sandbox/systems/{system_id}/stats")
        return response.json()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def bed() -> AsyncIterator[Bed]:
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, timeout_s=TEST_TIMEOUT_S, breaker_reset_s=TEST_BREAKER_RESET_S,
                                 cache_ttl_s={"occupancy": TEST_OCCUPANCY_TTL_S}, polling=False)
    async with serve(app, sock), httpx.AsyncClient(timeout=30) as http:
        assert sandbox.clients, "the sandbox seeds its demo clients at startup"
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

import shutil  # noqa: E402

from pytest_redis import factories as redis_factories  # noqa: E402

REDIS_MISSING = ("redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server; "
                 "macOS: brew install redis) — the tests start their own throwaway Redis")

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
