"""The upstream cache's entries (gateway/upstream_store.py, gateway/upstream_codec.py): decoded in memory,
record by record in Redis, read by slice, never unpickled; staleness the same for a slice as for the whole."""

from __future__ import annotations

import asyncio
import pickle
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.errors import UpstreamUnavailable
from adapters.models import Batch, OccupancyMethod, OccupancyReading, OccupancyStatus, RecordError, Trend
from gateway.cache import Cache, MemoryCache, RedisCache
from gateway.systems import OCCUPANCY
from gateway.upstream import Named, UpstreamCache, UpstreamPolicy, cache_key
from gateway.upstream_codec import Undecodable, Unencodable, dumps, loads
from gateway.upstream_store import RedisEntries, Want
from tests.support.caches import cache_maker
from tests.support.waiting import wait_until

SYSTEM = "guidance"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
KEY_OF = OCCUPANCY.key


def reading(site: int, level: int | None = None, occupied: int = 40) -> OccupancyReading:
    return OccupancyReading(f"site-{site}", None if level is None else f"site-{site}-{level}", OccupancyMethod.SENSED,
                            100, occupied, 100 - occupied, NOW, NOW, OccupancyStatus.OPEN, Trend.FILLING)


@dataclass
class Vendor:
    """A guidance system with `sites` sites of two levels each; one unreadable record; fails when told."""

    sites: int = 500
    down: bool = False
    calls: int = 0
    occupied: int = 40
    delay_s: float = 0.0
    seen: list[Any] = field(default_factory=list)

    async def __call__(self, system_id: str, resource: Named, *args: Any) -> Batch[OccupancyReading]:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.down:
            raise UpstreamUnavailable(system_id, "HTTP 503")
        items = [r for site in range(self.sites) for r in (reading(site, None, self.occupied),
                                                            reading(site, 1, self.occupied // 2))]
        return Batch(items=items, errors=[RecordError(system_id, "site-broken", "belegt is not a number")])


def policy(ttl_s: float = 60, max_stale_s: float = 3600) -> UpstreamPolicy:
    return UpstreamPolicy(ttl_s={"occupancy": ttl_s}, max_stale_s={SYSTEM: max_stale_s})


@pytest.fixture(params=["memory", "redis"])
async def make_cache(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Cache]]:
    async with cache_maker(request.param, request) as make:
        yield make


WANT = Want(keys=(("site-7", None), ("site-7", "site-7-1"), ("site-9", None), ("site-nowhere", None)),
            refs=("site-7", "site-broken", "site-nowhere"))


# --- slices -----------------------------------------------------------------------------------------


async def test_a_slice_holds_what_it_names_and_nothing_else(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor()
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    for _ in range(2):  # the miss (cut from the vendor's answer), then the hit (read from the store)
        fetched = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
        assert set(fetched.value.items) == {("site-7", None), ("site-7", "site-7-1"), ("site-9", None)}
        assert fetched.value.items[("site-7", "site-7-1")] == reading(7, 1, 20)
        assert set(fetched.value.errors) == {"site-broken"}
        assert fetched.value.errors["site-broken"].message == "belegt is not a number"
        assert not fetched.stale
    assert vendor.calls == 1 and upstream.metrics_dict()[SYSTEM]["hits"] == 1
    whole = await upstream.get(SYSTEM, OCCUPANCY)  # the whole answer, as the vendor gave it, order and all
    assert whole.value == await Vendor()(SYSTEM, OCCUPANCY) and vendor.calls == 1


async def test_memory_keeps_the_records_themselves() -> None:
    vendor = Vendor()
    upstream = UpstreamCache(MemoryCache(), policy(), vendor)
    first = await upstream.get(SYSTEM, OCCUPANCY)
    sliced = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
    # no encoding on the way in or out: the very objects the vendor's answer held
    assert sliced.value.items[("site-7", None)] is first.value.items[14]
    assert (await upstream.get(SYSTEM, OCCUPANCY)).value is first.value


async def test_redis_reads_a_slice_without_decoding_the_rest(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    cache = RedisCache(redis_url, prefix)
    client = aioredis.Redis.from_url(redis_url)
    upstream = UpstreamCache(cache, policy(), Vendor())
    try:
        await upstream.get(SYSTEM, OCCUPANCY)
        key = f"{prefix}cache:{cache_key(SYSTEM, 'occupancy')}"
        assert await client.type(key) == b"hash" and await client.hlen(key) == 2 + 1000 + 1  # meta, version, records, error
        # another record made unreadable: a slice that does not name it never decodes it
        await client.hset(key, 'i:{"$tuple":["site-400",null]}', b"\x80\x04not json")
        sliced = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
        assert set(sliced.value.items) == {("site-7", None), ("site-7", "site-7-1"), ("site-9", None)}
        assert upstream.metrics_dict()[SYSTEM]["hits"] == 1
        # the whole answer does decode it: unreadable, so a miss that asks the vendor again
        await upstream.get(SYSTEM, OCCUPANCY)
        assert upstream.metrics_dict()[SYSTEM]["upstream_calls"] == 2
    finally:
        await cache.clear()
        await cache.aclose()
        await client.aclose()


async def test_redis_decodes_a_slice_again_only_when_its_bytes_change(redis_url: str) -> None:
    """A page's slice read again with the same bytes is the entry decoded before; a new answer, a
    mark or an invalidation changes the bytes, and the read shows it at once (a replica's own
    decoded slice never hides a change another replica made)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    caches = [RedisCache(redis_url, prefix), RedisCache(redis_url, prefix)]
    vendor = Vendor(sites=20)
    mine, other = (UpstreamCache(cache, policy(), vendor) for cache in caches)
    try:
        await mine.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)  # a miss: the vendor's answer, written to Redis
        first = await mine.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)  # read and decoded
        again = await mine.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
        assert again.value is first.value  # the same bytes: not decoded a second time
        assert again.value.items[("site-7", None)].occupied == 40
        await other.invalidate(SYSTEM, OCCUPANCY)  # an event, on the other replica
        vendor.occupied = 70
        fresh = await mine.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)  # invalidated: fetched anew
        assert fresh.value is not first.value and fresh.value.items[("site-7", None)].occupied == 70
        assert vendor.calls == 2
        other_view = await other.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
        assert other_view.value.items[("site-7", None)].occupied == 70
    finally:
        await caches[0].clear()
        for cache in caches:
            await cache.aclose()


# --- no pickle --------------------------------------------------------------------------------------


class Planted:
    """What an attacker with write access to Redis would plant: unpickling it runs a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {self.marker}",))


async def test_a_pickle_planted_in_redis_is_a_miss_and_never_runs(redis_url: str, tmp_path: Path) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Planted(marker))
    cache = RedisCache(redis_url, prefix)
    client = aioredis.Redis.from_url(redis_url)
    vendor = Vendor(sites=3)
    upstream = UpstreamCache(cache, policy(), vendor)
    key = f"{prefix}cache:{cache_key(SYSTEM, 'occupancy')}"
    try:
        # the old layout: the whole entry one pickled string
        await client.set(key, payload)
        assert (await upstream.get(SYSTEM, OCCUPANCY)).value.items[0] == reading(0)
        assert vendor.calls == 1 and upstream.backend_errors == 0  # a miss, not a broken backend
        # today's layout with a pickle in each of its fields
        for planted in ({"m": payload}, {"m": orjson.dumps({"f": 2, "t": 9e12, "e": None, "i": False, "k": "value"}),
                                         "t": b"9e12", "v": payload}):
            await client.delete(key)
            await client.hset(key, mapping=planted)
            await upstream.get(SYSTEM, OCCUPANCY)
            await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
        await client.hset(key, 'i:{"$tuple":["site-1",null]}', payload)
        fetched = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, Want(keys=(("site-1", None),)))
        assert fetched.value.items == {("site-1", None): reading(1)}  # refetched, not the planted record
        assert not marker.exists()
        # what the cache writes is JSON, field by field
        fields = await client.hgetall(key)
        for value in fields.values():
            orjson.loads(value)
        assert not any(value.startswith(b"\x80") for value in fields.values())
    finally:
        await cache.clear()
        await cache.aclose()
        await client.aclose()
    assert not marker.exists()


def test_the_codec_refuses_pickles_and_types_it_does_not_name(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(Undecodable):
        loads(pickle.dumps(Planted(marker)))
    with pytest.raises(Undecodable):
        loads(orjson.dumps({"$": "Planted", "f": {"marker": "x"}}))  # only the adapters' records
    with pytest.raises(Undecodable):
        loads(orjson.dumps({"$": "OccupancyReading", "f": {"command": "rm -rf /"}}))  # only their fields
    with pytest.raises(Unencodable):
        dumps(Planted(marker))
    assert not marker.exists()


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(),
                    st.decimals(allow_nan=False, allow_infinity=False),
                    st.datetimes(timezones=st.just(UTC)), st.timedeltas(max_value=timedelta(days=9999)),
                    st.sampled_from(list(Trend)), st.sampled_from(list(OccupancyStatus)))
readings = st.builds(OccupancyReading, st.text(), st.none() | st.text(), st.sampled_from(list(OccupancyMethod)),
                     st.none() | st.integers(), st.none() | st.integers(), st.none() | st.integers(),
                     st.none() | st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)),
                     st.none() | st.sampled_from(list(OccupancyStatus)), st.sampled_from(list(Trend)))
values = st.recursive(scalars | readings, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(st.text() | st.integers(), inner, max_size=4),
    st.builds(Batch, st.lists(inner, max_size=4), st.lists(st.builds(RecordError, st.text(), st.text(), st.text()), max_size=2)),
), max_leaves=12)


@given(values)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_the_codec_gives_back_what_it_was_given(value: Any) -> None:
    back = loads(dumps(value))
    assert back == value and type(back) is type(value)


@given(st.binary(max_size=200))
def test_any_bytes_decode_to_a_value_or_undecodable(raw: bytes) -> None:
    try:
        loads(raw)
    except Undecodable:
        pass


def test_decimals_keep_their_digits() -> None:
    assert loads(dumps(Decimal("3.10"))) == Decimal("3.10") and str(loads(dumps(Decimal("3.10")))) == "3.10"


# --- staleness: the same for a slice as for the whole ------------------------------------------------


async def test_a_stale_slice_revalidates_once_then_serves_the_new_answer(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(sites=20)
    upstream = UpstreamCache(make_cache(), policy(ttl_s=0.2), vendor)
    await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
    await asyncio.sleep(0.3)
    vendor.occupied, vendor.delay_s = 70, 0.3  # the refresh lands after the burst
    stale = await asyncio.gather(*(upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT) for _ in range(20)))
    assert all(s.stale and s.error is None and s.value.items[("site-7", None)].occupied == 40 for s in stale)
    await wait_until(lambda: vendor.calls == 2 and not upstream._refreshing, timeout_s=3)
    fresh = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
    assert not fresh.stale and fresh.value.items[("site-7", None)].occupied == 70 and vendor.calls == 2


async def test_a_failing_vendor_leaves_the_slice_stale_with_its_error(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(sites=20)
    upstream = UpstreamCache(make_cache(), policy(ttl_s=0.2, max_stale_s=60), vendor)
    await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
    await asyncio.sleep(0.3)
    vendor.down = True
    await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)  # stale; its refresh fails in the background
    await wait_until(lambda: not upstream._refreshing, timeout_s=3)
    later = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
    assert later.stale and isinstance(later.error, UpstreamUnavailable)
    assert later.value.items[("site-9", None)] == reading(9)
    # an event invalidates it: once the failed refresh's marker is gone (1 s) the next read asks the
    # vendor, which fails: the slice, stale, with the error
    await asyncio.sleep(1.1)
    await upstream.invalidate(SYSTEM, OCCUPANCY)
    calls = vendor.calls
    fallback = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
    assert vendor.calls == calls + 1 and fallback.stale and isinstance(fallback.error, UpstreamUnavailable)
    assert set(fallback.value.items) == {("site-7", None), ("site-7", "site-7-1"), ("site-9", None)}


async def test_past_the_staleness_bound_a_failing_vendor_fails_the_slice(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(sites=5)
    upstream = UpstreamCache(make_cache(), policy(ttl_s=0.1, max_stale_s=0.1), vendor)
    await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)
    await asyncio.sleep(0.3)
    vendor.down = True
    with pytest.raises(UpstreamUnavailable):
        await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, WANT)


async def test_concurrent_slices_of_one_miss_make_one_call_and_each_gets_its_own(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor(sites=50, delay_s=0.05)
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    wants = [Want(keys=((f"site-{n}", None),)) for n in range(40)]
    results = await asyncio.gather(*(upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, want) for want in wants))
    assert vendor.calls == 1
    assert [list(r.value.items) for r in results] == [[(f"site-{n}", None)] for n in range(40)]


async def test_two_redis_replicas_read_one_slice_of_one_fetch(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    vendor = Vendor(sites=50, delay_s=0.2)
    caches = [RedisCache(redis_url, prefix), RedisCache(redis_url, prefix)]
    replicas = [UpstreamCache(cache, policy(), vendor) for cache in caches]
    try:
        results = await asyncio.gather(*(replicas[n % 2].get_slice(SYSTEM, OCCUPANCY, KEY_OF, Want(keys=((f"site-{n}", None),)))
                                         for n in range(40)))
        assert vendor.calls == 1  # the other replica waited for the holder's entry, then read its own slice
        assert [list(r.value.items) for r in results] == [[(f"site-{n}", None)] for n in range(40)]
        assert isinstance(replicas[0].store, RedisEntries)
    finally:
        await caches[0].clear()
        for cache in caches:
            await cache.aclose()
