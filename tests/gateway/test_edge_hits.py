"""A response-cache hit at the edge, on the Redis store: what it costs Redis, and what it keeps.

Two gateways (`create_app` over two runtimes of one deployment, as two replicas are) share a
redis-server of the test's own, whose own counters (INFO stats and commandstats) say what a hit
cost: one round trip, the quota's admission script, and nothing for the answer itself once this
process holds a copy of it. The copy is never served after the shared entry has expired.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis

from gateway.app import create_app
from gateway.auth.authenticate import Principal
from gateway.auth.keys import Environment
from gateway.cache import MemoryCache, RedisCache
from gateway.config import load_config
from gateway.response_cache import CachedAnswer, ResponseCache
from gateway.runtime import Runtime
from resolvers.schema import schema
from tests.support.bed import Bed
from tests.support.processes import OwnRedis, deployment_config

QUERY = "query Tiles { facilities(first: 10) { totalCount edges { node { id name occupancy { free } } } } }"
PRINCIPAL = Principal("client-a", "a", frozenset({"facilities:read"}), None, "key")


@dataclass
class Replica:
    runtime: Runtime
    app: Any
    http: httpx.AsyncClient

    @property
    def responses(self) -> ResponseCache:
        return self.app.state.graphql.responses

    async def ask(self, key: str) -> httpx.Response:
        response = await self.http.post("/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.text
        return response


@dataclass
class Deployment:
    replicas: list[Replica]
    key: str
    redis: redis.Redis


@pytest_asyncio.fixture
async def deployment(bed: Bed, own_redis: OwnRedis, tmp_path: Path) -> AsyncIterator[Deployment]:
    config, env = deployment_config(bed, own_redis.url, tmp_path)
    replicas = []
    for _ in range(2):
        runtime = Runtime.from_config(load_config(config, environ=env))
        app = create_app(runtime, schema)
        replicas.append(Replica(runtime, app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                base_url="http://replica")))
    issued = await replicas[0].runtime.admin.create_client(
        "test", name="edge-hits", environment=Environment.TEST, scopes=["facilities:read", "occupancy:read"])
    server = redis.Redis.from_url(own_redis.url)
    try:
        yield Deployment(replicas, issued.key, server)
    finally:
        server.close()
        for replica in replicas:
            await replica.http.aclose()
            await replica.runtime.aclose()


def redis_counts(server: redis.Redis) -> tuple[int, dict[str, int]]:
    """Round trips redis-server has read from clients (this INFO's own excluded) and calls per command."""
    reads = int(server.info("stats")["total_reads_processed"]) - 1
    commands = {name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in server.info("commandstats").items()}
    return reads, commands


async def test_a_hit_costs_one_round_trip_the_admission_script(deployment: Deployment) -> None:
    replica = deployment.replicas[0]
    await replica.ask(deployment.key)  # executes, keeps the answer in Redis and a copy here
    deployment.redis.config_resetstat()
    reads_before, _ = redis_counts(deployment.redis)
    local_before = replica.responses.local_hits
    hits = 50
    answers = [await replica.ask(deployment.key) for _ in range(hits)]
    reads, commands = redis_counts(deployment.redis)
    reads -= reads_before + 1  # less the INFO that read the first count
    # still metered: each hit is charged, its RateLimit headers and extensions.cost answered
    assert all(a.headers["ratelimit"] and a.json()["extensions"]["cost"]["actualQueryCost"] > 0 for a in answers)
    assert replica.responses.local_hits == local_before + hits
    # one EVALSHA per hit; every other round trip is the authenticator reading the client store (a GET
    # each, cached for half a second) or a connection's own events (redis-server counts a closed
    # socket's last read too), never the response cache: two round trips a hit would be 2 x hits
    assert commands["evalsha"] == hits
    auth_reads = commands.get("get", 0)
    assert reads <= hits + auth_reads + 2, (reads, sorted(commands.items()))
    assert set(commands) <= {"evalsha", "incrby", "expire", "pttl", "get", "info", "config|resetstat"}, commands


async def test_a_second_replica_answers_the_same_from_redis_then_from_its_copy(deployment: Deployment) -> None:
    a, b = deployment.replicas
    first = await a.ask(deployment.key)
    hits, local = b.responses.hits, b.responses.local_hits
    from_redis = await b.ask(deployment.key)
    assert from_redis.json()["data"] == first.json()["data"]
    assert (b.responses.hits, b.responses.local_hits) == (hits + 1, local)  # read from Redis: no copy yet
    again = await b.ask(deployment.key)
    assert again.json()["data"] == first.json()["data"]
    assert (b.responses.hits, b.responses.local_hits) == (hits + 2, local + 1)
    # one quota across both: each answer was charged in the same shared window
    remaining = [int(r.headers["ratelimit"].split(";r=")[1].split(";")[0]) for r in (first, from_redis, again)]
    assert remaining[0] - 1 == remaining[1] and remaining[1] - 1 == remaining[2], remaining


async def test_a_copy_is_never_served_after_the_shared_entry_expired(own_redis: OwnRedis) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    writer, reader = RedisCache(own_redis.url, prefix), RedisCache(own_redis.url, prefix)
    try:
        here, there = ResponseCache(writer), ResponseCache(reader)
        key = here.key(QUERY, None, {"first": 10}, PRINCIPAL)
        await here.put(key, PRINCIPAL, CachedAnswer(b'{"facilities":null}', 7), 1)
        assert await there.get(key, PRINCIPAL) == CachedAnswer(b'{"facilities":null}', 7)  # from Redis, copied
        assert await there.get(key, PRINCIPAL) is not None and there.local_hits == 1
        server = redis.Redis.from_url(own_redis.url)
        try:
            left_ms = server.pttl(f"{prefix}cache:" + next(k.decode().removeprefix(f"{prefix}cache:")
                                                           for k in server.scan_iter(f"{prefix}cache:response:*")))
        finally:
            server.close()
        assert 0 < left_ms <= 1000
        await asyncio.sleep(left_ms / 1000 + 0.05)  # the Redis entry is gone now
        misses = there.misses
        assert await there.get(key, PRINCIPAL) is None and there.misses == misses + 1
        assert await here.get(key, PRINCIPAL) is None  # the writer's own copy died with it too
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_clearing_the_cache_drops_this_processs_copies(own_redis: OwnRedis) -> None:
    shared = RedisCache(own_redis.url, f"test-{uuid.uuid4().hex[:8]}:")
    try:
        for cache in (MemoryCache(), shared):
            responses = ResponseCache(cache)
            key = responses.key(QUERY, "Tiles", None, PRINCIPAL)
            await responses.put(key, PRINCIPAL, CachedAnswer(b"{}", 1), 30)
            assert await responses.get(key, PRINCIPAL) is not None
            await cache.clear()
            assert await responses.get(key, PRINCIPAL) is None, cache.name
    finally:
        await shared.aclose()


async def test_answers_are_kept_per_permission_signature_not_per_client() -> None:
    responses = ResponseCache(MemoryCache())
    same_access = Principal("client-b", "b", frozenset({"facilities:read"}), None, "token")
    less_access = Principal("client-c", "c", frozenset({"facilities:read"}), frozenset({"berlin-hbf"}), "key")
    key = responses.key(QUERY, None, None, PRINCIPAL)
    await responses.put(key, PRINCIPAL, CachedAnswer(b"{}", 1), 30)
    assert await responses.get(responses.key(QUERY, None, None, same_access), same_access) is not None
    assert await responses.get(responses.key(QUERY, None, None, less_access), less_access) is None
    assert await responses.get(responses.key(QUERY, None, {"first": 1}, PRINCIPAL), PRINCIPAL) is None


async def test_on_a_cluster_replicas_share_answers_and_copy_them(redis_cluster: Any) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    writer, reader = RedisCache(redis_cluster.url, prefix), RedisCache(redis_cluster.url, prefix)
    try:
        here, there = ResponseCache(writer), ResponseCache(reader)
        for n in range(6):  # keys over several slots, hence several masters
            key = here.key(QUERY, None, {"first": n}, PRINCIPAL)
            await here.put(key, PRINCIPAL, CachedAnswer(b'{"n":%d}' % n, n), 30)
            assert await there.get(key, PRINCIPAL) == CachedAnswer(b'{"n":%d}' % n, n)
            assert await there.get(key, PRINCIPAL) is not None
        assert (there.hits, there.local_hits) == (12, 6)
    finally:
        await writer.aclose()
        await reader.aclose()
