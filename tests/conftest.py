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

from adapters.simulation import FaultMode
from gateway.sandbox import Sandbox, build_sandbox
from tests.support import bound_socket, serve

#: short vendor timeouts so that a `slow` system times out quickly in tests
TEST_TIMEOUT_S = 1.0


@dataclass
class Bed:
    url: str
    sandbox: Sandbox
    http: httpx.AsyncClient

    async def graphql(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = await self.http.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                                        headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

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
    app, sandbox = build_sandbox(url, timeout_s=TEST_TIMEOUT_S)
    async with serve(app, sock), httpx.AsyncClient(timeout=30) as http:
        yield Bed(url, sandbox, http)


@pytest.fixture(autouse=True)
def healthy_systems(request: pytest.FixtureRequest) -> None:
    if "bed" not in request.fixturenames:
        return
    bed: Bed = request.getfixturevalue("bed")
    for sim in bed.sandbox.simulators.values():
        sim.control.set_fault(FaultMode.OK)
        sim.control.reset_stats()
