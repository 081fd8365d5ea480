"""A Redis restart of a second or two under a running gateway (`parkgate serve`, its own redis-server
really stopped and started on the same port): writes are answered once, vendors are not asked again
for every request, and vendors' webhooks get in (issue 14, the soak's findings)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest_asyncio
import yaml

from adapters.simulated.webhook_sender import WebhookSender
from tests.support.bed import Bed
from tests.support.processes import OwnCluster, OwnRedis, deployment_config, start_gateway, wait_ready
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


async def test_a_reservation_made_while_redis_restarts_is_answered_and_booked_once(deployment: Deployment,
                                                                                   bed: Bed) -> None:
    assert (await deployment.graphql("{ facilities { totalCount } }")).status_code == 200  # the client is known
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    variables = {"key": str(uuid.uuid4()), "input": {"plate": "B-RS 101", "facilityId": "berlin-hbf",
                                                     "start": start.isoformat(),
                                                     "end": (start + timedelta(hours=2)).isoformat()}}
    parcs = bed.sandbox.simulators["parcs-central"].control
    restarting = asyncio.create_task(restart_later(deployment.redis, 1.5))
    await asyncio.sleep(0.2)  # Redis is away now
    answer = await deployment.graphql(RESERVE, variables)
    await restarting
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    booked = answer.json()["data"]["createReservation"]
    again = await deployment.graphql(RESERVE, variables)  # the client's retry: the first answer, nothing booked twice
    assert again.status_code == 200 and again.json()["data"]["createReservation"] == booked, again.text
    assert parcs.requests["POST /apds/v1/rights/assigned"] == 1


async def test_while_redis_restarts_each_vendor_answer_is_fetched_once_not_once_per_request(
        deployment: Deployment, bed: Bed) -> None:
    assert (await deployment.graphql(OCCUPANCY_EVERYWHERE)).status_code == 200  # cached in Redis
    deployment.redis.stop()
    try:
        calls = []
        for _ in range(5):
            before = sum(sum(sim.control.requests.values()) for sim in bed.sandbox.simulators.values())
            answer = await deployment.graphql(OCCUPANCY_EVERYWHERE)
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
            calls.append(sum(sum(sim.control.requests.values()) for sim in bed.sandbox.simulators.values()) - before)
    finally:
        deployment.redis.start()
    # the first read without the cache asks the vendors; the process holds their answers until Redis is back
    assert calls[0] > 0 and calls[1:] == [0, 0, 0, 0], calls


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


async def test_a_known_client_is_served_while_every_cluster_node_restarts(bed: Bed, tmp_path: Path) -> None:
    """On a Redis Cluster whose nodes are all away, the cluster client raises
    RedisClusterUnreachableError, which is no RedisError: quotas did not fall back to their local
    limiter and every request answered 503."""
    cluster = OwnCluster(tmp_path / "cluster", persistent=True)
    cluster.start()
    try:
        config, env = deployment_config(bed, cluster.url, tmp_path)
        document = yaml.safe_load(config.read_text())
        document["events"]["polling"] = False
        config.write_text(yaml.safe_dump(document))
        created = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "gateway", "clients", "create", "--config", str(config), "--name",
                             "steady", "--scope", "facilities:read"], capture_output=True, text=True, env=env, check=False)
        assert created.returncode == 0, created.stderr
        key = yaml.safe_load(created.stdout)["key"]
        process, url = start_gateway(config, env)
        try:
            await wait_ready(url, process)
            async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {key}"}) as http:
                query = {"query": "{ facilities { totalCount } }"}
                assert (await http.post(f"{url}/graphql", json=query)).status_code == 200
                restarting = asyncio.create_task(asyncio.to_thread(cluster.restart, 3.0))
                await asyncio.sleep(1.5)  # every node has been away a while: the client finds none to ask
                statuses = Counter([(await http.post(f"{url}/graphql", json=query)).status_code for _ in range(5)])
                await restarting
                assert set(statuses) == {200}, statuses
        finally:
            process.terminate()
            process.wait(timeout=10)
    finally:
        cluster.stop()
