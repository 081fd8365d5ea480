"""An event renews the records it changed inside their cached list (gateway/upstream.py `renew`,
gateway/upstream_store.py `patch`), in memory, in Redis and in any other cache, instead of making
every replica read the operator's whole list again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.errors import UpstreamUnavailable
from adapters.models import Batch, OccupancyReading
from gateway.cache import Cache, RedisCache
from gateway.systems import OCCUPANCY, Records
from gateway.upstream import Named, UpstreamCache, UpstreamPolicy, cache_key
from gateway.upstream_store import BytesEntries, Want
from tests.gateway.test_upstream_slices import NOW, SYSTEM, reading
from tests.support.caches import PlainBytes, cache_maker

KEY_OF = OCCUPANCY.key
#: the per-facility read the cache asks for (its call is never made: the vendor below answers it)
BY_FACILITY: Records[tuple[str, ...], OccupancyReading] = Records("occupancy", lambda *_: None, key=KEY_OF)  # type: ignore[arg-type, return-value]


@dataclass
class Vendor:
    """A guidance system of `sites` sites, each a facility reading and one level's; asked for some
    facilities alone (`BY_FACILITY`), it answers theirs with `occupied` as it is now."""

    sites: int = 30
    occupied: int = 40
    down: bool = False
    list_calls: int = 0
    facility_calls: list[tuple[str, ...]] | None = None
    #: when the vendor's answers say they were received (the list's first; later reads a second apart)
    received_at: datetime = NOW

    async def __call__(self, system_id: str, resource: Named, *args: Any) -> Batch[OccupancyReading]:
        if resource is BY_FACILITY:
            (ids,) = args
            self.facility_calls = [*(self.facility_calls or []), ids]
            if self.down:
                raise UpstreamUnavailable(system_id, "HTTP 503")
            asked = [int(vendor_id.removeprefix("site-")) for vendor_id in ids]
            self.received_at += timedelta(seconds=1)
            return Batch(items=[r for site in asked if site < self.sites for r in self._site(site)])
        self.list_calls += 1
        return Batch(items=[r for site in range(self.sites) for r in self._site(site)])

    def _site(self, site: int) -> list[OccupancyReading]:
        return [replace(reading(site, None, self.occupied), received_at=self.received_at),
                replace(reading(site, 1, self.occupied // 2), received_at=self.received_at)]


@pytest.fixture(params=["memory", "redis", "bytes"])
async def make_cache(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Cache]]:
    async with cache_maker(request.param, request) as make:
        yield make


def policy() -> UpstreamPolicy:
    return UpstreamPolicy(ttl_s={"occupancy": 60})


async def renew(upstream: UpstreamCache, *vendor_ids: str) -> bool:
    return await upstream.renew(SYSTEM, OCCUPANCY, KEY_OF, BY_FACILITY, (vendor_ids,))


async def test_an_event_renews_its_records_in_place_and_leaves_the_rest_and_the_age_alone(
        make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor()
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    before = await upstream.get(SYSTEM, OCCUPANCY)
    vendor.occupied = 90  # a car in at site-7 (and, the vendor says, a few more since)
    assert await renew(upstream, "site-7")
    assert vendor.facility_calls == [("site-7",)] and vendor.list_calls == 1
    sliced = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, Want(keys=(("site-7", None), ("site-7", "site-7-1"),
                                                                           ("site-9", None))))
    later = NOW + timedelta(seconds=1)
    renewed = {("site-7", None): replace(reading(7, None, 90), received_at=later),
               ("site-7", "site-7-1"): replace(reading(7, 1, 45), received_at=later)}
    assert sliced.value.items == {**renewed, ("site-9", None): reading(9, None, 40)}
    whole = await upstream.get(SYSTEM, OCCUPANCY)
    # the whole list in the vendor's order, site-7's two records replaced where they were
    expected = [renewed.get(KEY_OF(r), r) for r in before.value.items]
    assert whole.value.items == expected
    assert whole.fetched_at == before.fetched_at and not whole.stale  # the list is as old as it was
    assert vendor.list_calls == 1 and upstream.metrics_dict()[SYSTEM]["renewals"] == 1
    entry = await upstream.store.read(cache_key(SYSTEM, "occupancy"), None)
    assert entry is not None and not entry.invalidated


async def test_nothing_cached_is_nothing_to_renew_and_asks_no_vendor(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor()
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    assert await renew(upstream, "site-7")
    assert vendor.facility_calls is None and vendor.list_calls == 0


async def test_a_renewal_that_cannot_be_put_in_place_says_so_and_changes_nothing(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor()
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    before = await upstream.get(SYSTEM, OCCUPANCY)
    vendor.down = True  # the vendor fails: the caller invalidates instead
    assert not await renew(upstream, "site-7")
    vendor.down, vendor.occupied = False, 90
    assert not await renew(upstream, "site-400")  # a facility the vendor does not know: it answers nothing
    vendor.sites = 40  # a garage opened since the list was read: nothing in the list to put its reading in place of
    assert not await renew(upstream, "site-35")
    key = cache_key(SYSTEM, "occupancy")
    # the entry replaced by a newer fetch between the read and the write: no patch over it
    assert not await upstream.store.patch(key, before.fetched_at.timestamp() - 1, {("site-7", None): reading(7, None, 90)},
                                          KEY_OF, 60)
    assert (await upstream.get(SYSTEM, OCCUPANCY)).value.items == before.value.items and vendor.list_calls == 1
    assert upstream.metrics_dict()[SYSTEM]["renewals"] == 0


async def test_a_renewal_on_one_replica_is_what_the_others_read(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    vendor = Vendor()
    replicas = [UpstreamCache(RedisCache(redis_url, prefix), policy(), vendor) for _ in range(2)]
    want = Want(keys=(("site-7", None), ("site-9", None)))
    try:
        await replicas[0].get(SYSTEM, OCCUPANCY)
        first = await replicas[1].get_slice(SYSTEM, OCCUPANCY, KEY_OF, want)  # decoded, and kept by its bytes
        vendor.occupied = 90
        assert await renew(replicas[0], "site-7")
        later = await replicas[1].get_slice(SYSTEM, OCCUPANCY, KEY_OF, want)
        assert later.value.items == {**first.value.items,
                                     ("site-7", None): replace(reading(7, None, 90), received_at=vendor.received_at)}
        assert vendor.list_calls == 1
    finally:
        await replicas[0].cache.clear()
        for replica in replicas:
            await replica.cache.aclose()


async def test_the_plain_bytes_store_keeps_whole_entries() -> None:
    upstream = UpstreamCache(PlainBytes(), policy(), Vendor())
    assert isinstance(upstream.store, BytesEntries)  # what the "bytes" case above exercises


async def test_an_earlier_reading_never_replaces_a_later_one(make_cache: Callable[[], Cache]) -> None:
    """Two replicas renewing one garage may finish in either order: the later reading stays."""
    vendor = Vendor()
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    await upstream.get(SYSTEM, OCCUPANCY)
    earlier = (await vendor(SYSTEM, BY_FACILITY, ("site-7",))).items[0]  # read first, written last
    vendor.occupied = 90
    assert await renew(upstream, "site-7")
    key = cache_key(SYSTEM, "occupancy")
    entry = await upstream.store.read(key, Want())
    assert entry is not None
    assert await upstream.store.patch(key, entry.fetched_at, {KEY_OF(earlier): earlier}, KEY_OF, 60)
    kept = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, Want(keys=(("site-7", None),)))
    assert kept.value.items[("site-7", None)].occupied == 90


async def test_an_invalidated_list_is_not_renewed(make_cache: Callable[[], Cache]) -> None:
    vendor = Vendor()
    upstream = UpstreamCache(make_cache(), policy(), vendor)
    await upstream.get(SYSTEM, OCCUPANCY)
    await upstream.invalidate(SYSTEM, OCCUPANCY)
    assert await renew(upstream, "site-7")  # the next read fetches the whole list anyway: no vendor call now
    assert vendor.facility_calls is None


async def test_with_the_backend_away_the_entry_this_process_holds_is_renewed() -> None:
    vendor = Vendor()
    cache = RedisCache("redis://127.0.0.1:1/0", "test:", timeout_s=0.2)
    upstream = UpstreamCache(cache, policy(), vendor)
    try:
        await upstream.get(SYSTEM, OCCUPANCY)  # held in the process: Redis cannot take it
        vendor.occupied = 90
        assert await renew(upstream, "site-7")
        held = await upstream.get_slice(SYSTEM, OCCUPANCY, KEY_OF, Want(keys=(("site-7", None), ("site-9", None))))
        assert held.value.items[("site-7", None)].occupied == 90 and held.value.items[("site-9", None)].occupied == 40
        assert vendor.list_calls == 1
    finally:
        await cache.aclose()
