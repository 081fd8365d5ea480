"""The upstream cache: one vendor call per key however many ask, fresh hits, stale while
revalidating, stale if the vendor fails, nothing past the staleness bound; over memory and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.base import GuidanceAdapter
from adapters.errors import UpstreamError, UpstreamUnavailable
from adapters.models import Batch, QuoteRequest
from gateway.cache import Cache, MemoryCache, RedisCache, build_cache
from gateway.config import CacheConfig
from gateway.loaders import Loaders
from gateway.systems import OCCUPANCY, SourceStatus, Systems
from gateway.upstream import Named, UpstreamCache, UpstreamPolicy, cache_key
from tests.support.bed import Bed
from tests.support.caches import cache_maker
from tests.support.waiting import wait_until

SYSTEM = "parcs-central"


@dataclass
class Vendor:
    """An adapter-like callable: counts calls, answers after `delay_s`, or fails when told."""

    delay_s: float = 0.05
    down: bool = False
    calls: int = 0
    version: int = 0
    seen: list[tuple[Any, ...]] = field(default_factory=list)

    async def __call__(self, system_id: str, resource: Named, *args: Any) -> dict[str, Any]:
        self.calls += 1
        self.seen.append((system_id, resource.name, *args))
        await asyncio.sleep(self.delay_s)
        if self.down:
            raise UpstreamUnavailable(system_id, "HTTP 503")
        self.version += 1
        return {"resource": resource.name, "args": args, "version": self.version}


def policy(ttl_s: float = 60, max_stale_s: float = 3600, lock_ms: int = 3000) -> UpstreamPolicy:
    return UpstreamPolicy(ttl_s={"occupancy": ttl_s, "quotes": ttl_s}, max_stale_s={SYSTEM: max_stale_s},
                          lock_ms=lock_ms)


@pytest.fixture(params=["memory", "redis"])
async def make_cache(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Cache]]:
    async with cache_maker(request.param, request) as make:
        yield make


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


# --- single flight -------------------------------------------------------------------------------


async def test_a_burst_of_500_cold_misses_makes_one_vendor_call(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor()
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    results = await asyncio.gather(*(upstream.get(SYSTEM, OCCUPANCY) for _ in range(500)))
    assert vendor.calls == 1
    assert {r.value["version"] for r in results} == {1} and not any(r.stale for r in results)
    metrics = upstream.metrics_dict()[SYSTEM]
    assert metrics["misses"] == 500 and metrics["coalesced_waits"] == 499 and metrics["upstream_calls"] == 1


async def test_two_replicas_on_one_redis_make_one_vendor_call(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    vendor = Vendor(delay_s=0.2)  # both replicas' misses overlap the one call
    caches = [RedisCache(redis_url, prefix), RedisCache(redis_url, prefix)]
    replicas = [UpstreamCache(cache, policy(), vendor) for cache in caches]
    try:
        results = await asyncio.gather(*(replicas[i % 2].get(SYSTEM, OCCUPANCY) for i in range(500)))
        assert vendor.calls == 1
        assert {r.value["version"] for r in results} == {1}
        assert replicas[1].metrics_dict()[SYSTEM]["upstream_calls"] + replicas[0].metrics_dict()[SYSTEM]["upstream_calls"] == 1
        # the replica that did not call waited for the other one's entry
        assert sum(r.metrics_dict()[SYSTEM]["coalesced_waits"] for r in replicas) == 499
    finally:
        await caches[0].clear()
        for cache in caches:
            await cache.aclose()


@pytest.mark.parametrize("shape", ["redis_url", "redis_cluster", "redis_sentinel"])
async def test_a_burst_wider_than_the_connection_pool_waits_for_connections_on_every_shape(
        shape: str, request: pytest.FixtureRequest) -> None:
    """Past its connections a replica's cache operations wait for one, on one server, a cluster and
    behind Sentinel alike: none fails (a lost write is a second vendor call on the other replica)."""
    found = request.getfixturevalue(shape)
    url = found if isinstance(found, str) else found.url
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    vendor = Vendor(delay_s=0.05)
    caches = [RedisCache(url, prefix, max_connections=3), RedisCache(url, prefix, max_connections=3)]
    replicas = [UpstreamCache(cache, policy(), vendor) for cache in caches]
    try:
        await asyncio.gather(*(replica.get(SYSTEM, OCCUPANCY, (n,)) for n in range(60) for replica in replicas))
        assert [replica.backend_errors for replica in replicas] == [0, 0]
        assert vendor.calls == 60  # one per key across both replicas
    finally:
        await caches[0].clear()
        for cache in caches:
            await cache.aclose()


async def test_a_replica_waiting_on_a_failed_holder_reports_its_error_without_calling(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    vendor = Vendor(delay_s=0.2, down=True)
    caches = [RedisCache(redis_url, prefix), RedisCache(redis_url, prefix)]
    replicas = [UpstreamCache(cache, policy(), vendor) for cache in caches]
    try:
        results = await asyncio.gather(*(replicas[i % 2].get(SYSTEM, OCCUPANCY) for i in range(20)),
                                       return_exceptions=True)
        assert vendor.calls == 1
        assert all(isinstance(r, UpstreamUnavailable) for r in results)
    finally:
        await caches[0].clear()
        for cache in caches:
            await cache.aclose()


# --- TTLs ------------------------------------------------------------------------------------------


async def test_fresh_entries_make_no_vendor_calls(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(delay_s=0)
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    first = await upstream.get(SYSTEM, OCCUPANCY)
    for _ in range(10):
        again = await upstream.get(SYSTEM, OCCUPANCY)
        assert again.value == first.value and not again.stale and again.error is None
        assert again.fetched_at == first.fetched_at
    assert vendor.calls == 1
    assert upstream.metrics_dict()[SYSTEM]["hits"] == 10


async def test_per_system_ttl_overrides_the_resource_default(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(delay_s=0)
    rules = UpstreamPolicy(ttl_s={"occupancy": 60}, system_ttl_s={"other": {"occupancy": 0}})
    upstream = UpstreamCache(make_cache(), rules, vendor)
    for _ in range(3):
        await upstream.get(SYSTEM, OCCUPANCY)
        await upstream.get("other", OCCUPANCY)  # TTL 0: not cached
    assert vendor.seen.count((SYSTEM, "occupancy")) == 1
    assert vendor.seen.count(("other", "occupancy")) == 3
    assert rules.fresh_s(SYSTEM, "rates") == 0  # a resource without a TTL is not cached


async def test_past_ttl_the_stale_entry_is_served_at_once_and_refreshed_once(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(delay_s=0)
    upstream = UpstreamCache(make_cache(), policy(ttl_s=0.2), vendor)
    await upstream.get(SYSTEM, OCCUPANCY)
    await asyncio.sleep(0.3)
    vendor.delay_s = 0.5  # a slow vendor: nobody may wait for it
    served, elapsed = await timed(asyncio.gather(*(upstream.get(SYSTEM, OCCUPANCY) for _ in range(50))))
    assert elapsed < 0.25
    assert all(f.stale and f.error is None and f.value["version"] == 1 for f in served)
    assert served[0].age_s() >= 0.3
    await wait_until(lambda: vendor.calls == 2 and not upstream._refreshing, timeout_s=3)
    await asyncio.sleep(0.1)
    assert vendor.calls == 2  # exactly one background refresh
    fresh = await upstream.get(SYSTEM, OCCUPANCY)
    assert not fresh.stale and fresh.value["version"] == 2
    metrics = upstream.metrics_dict()[SYSTEM]
    assert metrics["stale_serves"] == 50 and metrics["refreshes"] == 1 and metrics["hits"] == 1


async def test_vendor_down_serves_the_stale_entry_with_the_error(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(delay_s=0)
    upstream = UpstreamCache(make_cache(), policy(ttl_s=0.1, lock_ms=200), vendor)
    await upstream.get(SYSTEM, OCCUPANCY)
    await asyncio.sleep(0.2)
    vendor.down = True
    first = await upstream.get(SYSTEM, OCCUPANCY)  # revalidating: the failure is not known yet
    assert first.stale and first.value["version"] == 1
    await wait_until(lambda: not upstream._refreshing, timeout_s=3)
    for _ in range(20):  # every replica now says why it is stale; none retries the vendor for a moment
        later = await upstream.get(SYSTEM, OCCUPANCY)
        assert later.stale and later.value["version"] == 1
        assert isinstance(later.error, UpstreamUnavailable) and later.error.system_id == SYSTEM
    assert later.age_s() >= 0.2
    await wait_until(lambda: not upstream._refreshing, timeout_s=3)
    assert vendor.calls == 2 and upstream.metrics_dict()[SYSTEM]["upstream_errors"] == 1
    # back up: once the failure marker is gone (min(1 s, lock_ms)), the next refresh clears the error
    vendor.down = False
    await asyncio.sleep(0.25)
    assert (await upstream.get(SYSTEM, OCCUPANCY)).stale  # starts the refresh that succeeds
    await wait_until(lambda: not upstream._refreshing, timeout_s=3)
    recovered = await upstream.get(SYSTEM, OCCUPANCY)
    assert not recovered.stale and recovered.error is None and recovered.value["version"] == 2


async def test_invalidated_entry_is_refetched_and_is_the_fallback_when_the_vendor_fails(
        make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(delay_s=0)
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    await upstream.get(SYSTEM, OCCUPANCY)
    await upstream.invalidate(SYSTEM, OCCUPANCY)
    again = await upstream.get(SYSTEM, OCCUPANCY)  # an event said it changed: fetched, not served stale
    assert vendor.calls == 2 and again.value["version"] == 2 and not again.stale
    await upstream.invalidate(SYSTEM, OCCUPANCY)
    vendor.down = True
    fallback = await upstream.get(SYSTEM, OCCUPANCY)  # stale-if-error, synchronously
    assert fallback.stale and fallback.value["version"] == 2 and isinstance(fallback.error, UpstreamUnavailable)
    await upstream.put(SYSTEM, OCCUPANCY, (), {"version": 99})
    assert (await upstream.get(SYSTEM, OCCUPANCY)).value == {"version": 99}


async def test_past_max_stale_the_entry_is_gone_and_the_error_raised(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(delay_s=0)
    upstream = UpstreamCache(make_cache(), policy(ttl_s=0.1, max_stale_s=0.2), vendor)
    await upstream.get(SYSTEM, OCCUPANCY)
    await asyncio.sleep(0.4)
    vendor.down = True
    with pytest.raises(UpstreamUnavailable):
        await upstream.get(SYSTEM, OCCUPANCY)


# --- keys ------------------------------------------------------------------------------------------


def test_keys_depend_on_system_resource_and_arguments_only() -> None:
    start = datetime(2025, 1, 1, 10, tzinfo=UTC)
    quote = QuoteRequest("g1", start, start.replace(hour=12))
    key = cache_key(SYSTEM, "quotes", ([quote],))
    assert key == cache_key(SYSTEM, "quotes", ([QuoteRequest("g1", start, start.replace(hour=12))],))
    assert key.startswith(f"up:{SYSTEM}:quotes:")
    assert key != cache_key(SYSTEM, "quotes", ([QuoteRequest("g2", start, start.replace(hour=12))],))
    assert key != cache_key("parcs-london", "quotes", ([quote],))
    assert cache_key(SYSTEM, "occupancy") == cache_key(SYSTEM, "occupancy", ())
    # the same instant in another zone is the same argument
    from zoneinfo import ZoneInfo
    berlin = start.astimezone(ZoneInfo("Europe/Berlin"))
    assert cache_key(SYSTEM, "citations", (start,)) == cache_key(SYSTEM, "citations", (berlin,))


async def test_two_requests_share_the_answer_whoever_asks(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(delay_s=0)
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    # Loaders are per request (per client): what they ask the cache carries no caller at all
    results = [await upstream.get(SYSTEM, OCCUPANCY) for _request in ("dashboard", "driver-app")]
    assert vendor.calls == 1 and results[0].value == results[1].value


# --- the backend's failures are misses, never the request's failure ----------------------------


async def test_an_unreachable_redis_means_asking_the_vendor() -> None:
    vendor = Vendor(delay_s=0)
    cache = RedisCache("redis://127.0.0.1:1/0", "test:", timeout_s=0.2)
    upstream = UpstreamCache(cache, policy(), vendor)
    try:
        result = await upstream.get(SYSTEM, OCCUPANCY)
        assert result.value["version"] == 1 and vendor.calls == 1
        assert upstream.backend_errors >= 1
    finally:
        await cache.aclose()


def test_build_cache_follows_the_configuration(bed: Bed) -> None:
    config = bed.sandbox.config
    assert isinstance(build_cache(config), MemoryCache)  # memory store: memory cache
    assert build_cache(config.model_copy(update={"cache": CacheConfig(backend="none")})) is None


# --- Systems: health records real calls only; against the sandbox --------------------------------


class FakeAdapter(GuidanceAdapter):
    """A guidance system whose answers come from `vendor` (no spec, no HTTP)."""

    dialect = "fake"

    def __init__(self, vendor: Vendor) -> None:
        self.vendor = vendor

    async def occupancy(self) -> Batch[Any]:
        await self.vendor(SYSTEM, OCCUPANCY)
        return Batch(items=[])

    async def aclose(self) -> None:
        return None


async def test_a_stale_serve_after_a_failure_leaves_the_source_down(bed: Bed) -> None:
    vendor = Vendor(delay_s=0)
    systems = Systems(bed.sandbox.config, {SYSTEM: FakeAdapter(vendor)}, cache=MemoryCache())
    assert systems.upstream is not None
    systems.upstream.policy = policy(ttl_s=0.1)  # the configuration's TTLs are whole seconds
    try:
        loaders = Loaders(systems)
        first = await loaders.resource(SYSTEM, OCCUPANCY)
        assert systems.health[SYSTEM].status is SourceStatus.UP and first.fetched_at and not first.stale
        await asyncio.sleep(0.2)
        vendor.down = True
        await Loaders(systems).resource(SYSTEM, OCCUPANCY)  # stale; its refresh fails in the background
        await wait_until(lambda: not systems.upstream._refreshing, timeout_s=3)  # type: ignore[union-attr]
        assert systems.health[SYSTEM].status is SourceStatus.DOWN
        stale = await Loaders(systems).resource(SYSTEM, OCCUPANCY)
        assert stale.stale and isinstance(stale.error, UpstreamError)
        assert systems.health[SYSTEM].status is SourceStatus.DOWN  # the stale serve did not mark it UP
        assert await systems.fetch(SYSTEM, OCCUPANCY) == Batch(items=[])
    finally:
        await systems.aclose()


def occupancy_calls(bed: Bed) -> dict[str, int]:
    # APDS keeps occupancy on its places (GET /places?expand=occupancy); ParkLine has an occupancy endpoint
    return {system_id: sum(n for endpoint, n in sim.control.requests.items()
                           if "occupancy" in endpoint or endpoint.endswith("/apds/v1/places"))
            for system_id, sim in bed.sandbox.simulators.items() if system_id.startswith("parcs-")}


FACILITIES = "{ facilities(first: 20) { edges { node { id occupancy { occupied counted { occupied } } } } } }"


async def test_a_second_facilities_query_within_the_ttl_makes_no_occupancy_calls(bed: Bed) -> None:
    runtime = bed.sandbox.runtime
    wired = runtime.systems.upstream is not None
    own: Systems | None = None
    if not wired:  # until the runtime builds the cache itself: the sandbox's systems with one
        own = Systems.from_config(runtime.config, cache=MemoryCache())
        runtime.systems, live = own, runtime.systems
    try:
        assert runtime.systems.upstream is not None
        await runtime.systems.upstream.clear()
        first = await bed.graphql(FACILITIES, client="dashboard")
        assert "errors" not in first, first
        assert all(n > 0 for n in occupancy_calls(bed).values()), occupancy_calls(bed)
        for sim in bed.sandbox.simulators.values():
            sim.control.reset_stats()
        second = await bed.graphql(FACILITIES, client="admin")  # another client: the same cached answers
        assert "errors" not in second, second
        assert second["data"] == first["data"]
        assert occupancy_calls(bed) == {"parcs-central": 0, "parcs-london": 0}
        metrics = runtime.systems.upstream.metrics_dict()
        assert metrics["parcs-central"]["hits"] >= 1
    finally:
        if own is not None:
            runtime.systems = live
            await own.aclose()


async def test_clearing_the_redis_cache_leaves_the_rest_of_the_database_alone(redis_url: str) -> None:
    import redis.asyncio as aioredis

    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    client = aioredis.Redis.from_url(redis_url)
    cache = RedisCache(redis_url, prefix)
    try:
        await client.set(f"{prefix}client:c1", b"a client record")
        await cache.set("up:x:occupancy:1", b"entry", 60)
        assert await client.get(f"{prefix}cache:up:x:occupancy:1") == b"entry"  # the key layout
        assert await cache.add("lock", b"t1", 500) and not await cache.add("lock", b"t2", 500)
        await cache.clear()
        assert await cache.get("up:x:occupancy:1") is None and await cache.get("lock") is None
        assert await client.get(f"{prefix}client:c1") == b"a client record"
    finally:
        await client.delete(f"{prefix}client:c1")
        await client.aclose()
        await cache.aclose()


async def test_a_replica_that_missed_just_before_another_stored_uses_that_answer(redis_url: str) -> None:
    """The interleaving a burst hits now and then: replica B misses, replica A fetches, stores and
    releases the lock, then B takes the lock. B must serve A's entry, not call the vendor again."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    vendor = Vendor(delay_s=0.01)
    caches = [RedisCache(redis_url, prefix), RedisCache(redis_url, prefix)]
    a, b = (UpstreamCache(cache, policy(), vendor) for cache in caches)
    try:
        await a.get(SYSTEM, OCCUPANCY)
        # B's fill, as it runs after its miss (read before A's write) — the step after the read
        outcome = await b._load(SYSTEM, OCCUPANCY, (), cache_key(SYSTEM, "occupancy", ()), float("-inf"))
        assert vendor.calls == 1 and outcome.landed and outcome.entry is not None  # A's entry, not a call
        assert outcome.entry.value["version"] == 1
    finally:
        await caches[0].clear()
        for cache in caches:
            await cache.aclose()
