"""The test bed that tests/conftest.py's `bed` fixture hands out: one sandbox (gateway and six
simulated vendors) on a real loopback port, and what tests do with it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
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

    async def simulate(self, system_id: str, **body: Any) -> dict[str, Any]:
        """Have a simulated vendor system act (a car enters, a guest checks in…), as its sandbox control does."""
        response = await self.http.post(f"{self.url}/sandbox/systems/{system_id}/simulate", json=body)
        if response.status_code == 409 and body.get("event") == "entry" and "is full" in response.text:
            # The simulated garages follow the local hour: some fill up on a weekday evening. A test that
            # needs a car to enter should not depend on the time CI runs, so one anonymous car leaves first.
            leave = {"event": "exit", "facility_id": body["facility_id"]}
            left = await self.http.post(f"{self.url}/sandbox/systems/{system_id}/simulate", json=leave)
            assert left.status_code == 202, left.text
            response = await self.http.post(f"{self.url}/sandbox/systems/{system_id}/simulate", json=body)
        assert response.status_code == 202, response.text
        return response.json()

    async def new_client(self, scopes: Iterable[str], *, name: str | None = None, plan: str | None = None,
                         overrides: dict[str, int] | None = None) -> tuple[str, str]:
        """A client of the test's own at every facility, made by the admin demo client, and its quota
        overrides set if given (its windows are its own, unlike the shared demo clients'): (its id, its key)."""
        client: dict[str, Any] = {"name": name or f"test-{uuid.uuid4().hex[:8]}", "environment": "TEST",
                                  "scopes": list(scopes)}
        if plan is not None:
            client["plan"] = plan
        created = await self.graphql("mutation($client: CreateClientInput!) { createClient(input: $client) "
                                     "{ key client { id } } }", {"client": client})
        assert "errors" not in created, created
        client_id, key = created["data"]["createClient"]["client"]["id"], created["data"]["createClient"]["key"]
        if overrides:
            updated = await self.graphql("mutation($id: ID!, $overrides: QuotaOverridesInput!) { updateClient(id: $id, "
                                         "input: {quotaOverrides: $overrides}) { id } }",
                                         {"id": client_id, "overrides": overrides})
            assert "errors" not in updated, updated
        return client_id, key
