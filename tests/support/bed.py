"""The test bed that tests/conftest.py's `bed` fixture hands out: one sandbox (gateway and five
simulated vendors) on a real loopback port, and what tests do with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from gateway.sandbox import Sandbox

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
