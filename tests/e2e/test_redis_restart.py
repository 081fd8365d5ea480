"""A Redis restart of a second or two under a running gateway (`parkgate serve`, its own redis-server
really stopped and started on the same port): writes are answered once, vendors are not asked again
for every request, and vendors' webhooks get in (issue 14, the soak's findings)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio
import yaml

from adapters.simulated.webhook_sender import WebhookSender
from tests.support.bed import Bed
from tests.support.processes import OwnRedis, deployment_config, start_gateway, wait_ready
from tests.support.vendors import apds_entry

RESERVE = ("mutation($input: CreateReservationInput!, $key: String!) { createReservation(input: $input, "
           "idempotencyKey: $key) { id status } }")
#: never from the response cache (the client's own quota is in it): every request runs its resolvers
OCCUPANCY_EVERYWHERE = "{ rateLimit { remaining } facilities { edges { node { id occupancy { occupied } } } } }"


@dataclass
class Deployment:
    url: str
    key: str
    http: httpx.AsyncClient
    redis: OwnRedis

    async def graphql(self, query: str, variables: dict | None = None) -> httpx.Response:
        return await self.http.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                    headers={"authorization": f"Bearer {self.key}"})


@pytest_asyncio.fixture
async def deployment(bed: Bed, own_redis: OwnRedis, tmp_path: Path) -> AsyncIterator[Deployment]:
    """One gateway process on `own_redis`, no polling (only the test's requests reach the vendors), and
    a client that may read everything and book."""
    config, env = deployment_config(bed, own_redis.url, tmp_path)
    document = yaml.safe_load(config.read_text())
    document["events"]["polling"] = False
    config.write_text(yaml.safe_dump(document))
    scopes = ["facilities:read", "occupancy:read", "reservations:read", "reservations:write"]
    created = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gateway", "clients", "create", "--config", str(config), "--name",
                         "restart", *(arg for scope in scopes for arg in ("--scope", scope))],
        capture_output=True, text=True, env=env, check=False)
    assert created.returncode == 0, created.stderr
    process, url = start_gateway(config, env)
    try:
        await wait_ready(url, process)
        async with httpx.AsyncClient(timeout=30) as http:
            yield Deployment(url, yaml.safe_load(created.stdout)["key"], http, own_redis)
    finally:
        process.terminate()
        process.wait(timeout=10)
        stderr = process.stderr.read() if process.stderr else ""
        assert "Traceback" not in stderr, stderr


async def restart_later(redis: OwnRedis, away_s: float) -> None:
    """Redis stopped now and started again `away_s` later (in a thread: starting waits for its PONG)."""
    redis.stop()
    await asyncio.sleep(away_s)
    await asyncio.to_thread(redis.start)


async def test_a_vendor_webhook_refused_while_redis_restarts_gets_in_on_a_retry(deployment: Deployment,
                                                                               bed: Bed) -> None:
    path, raw, headers = apds_entry(bed, "B-RS 202")
    sender = WebhookSender(f"{deployment.url}{path}", backoff_s=0.1)
    try:
        deployment.redis.stop()
        sender.send(lambda: (raw, headers))
        await asyncio.sleep(3.0)  # longer than the old sender's whole retry window (1.75 s)
        assert sender.delivered == 0 and sender.retried >= 1  # refused (503): nothing was accepted
        await asyncio.to_thread(deployment.redis.start)
        for _ in range(200):
            if not sender.pending:
                break
            await asyncio.sleep(0.1)
        assert (sender.delivered, sender.failed) == (1, 0)
    finally:
        await sender.aclose()
