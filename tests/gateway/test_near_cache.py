"""The near cache (gateway/near_cache.py): entries until their own deadline, bounded by count and bytes."""

from __future__ import annotations

import time

from gateway.near_cache import NearCache


def test_an_entry_is_kept_until_its_deadline_and_not_after() -> None:
    cache: NearCache[str, bytes] = NearCache()
    cache.put("a", b"answer", 0.05, 6)
    assert cache.get("a") == b"answer"
    time.sleep(0.06)
    assert cache.get("a") is None and len(cache) == 0 and cache.size == 0
    cache.put("b", b"answer", 0, 6)  # no time left: not kept at all
    assert cache.get("b") is None


def test_least_recently_used_entries_go_first_past_the_count() -> None:
    cache: NearCache[str, int] = NearCache(max_entries=3, max_bytes=800)
    for name in "abc":
        cache.put(name, ord(name), 30, 10)
    assert cache.get("a") == ord("a")  # now b is the least recently used
    cache.put("d", ord("d"), 30, 10)
    assert [cache.get(n) is not None for n in "abcd"] == [True, False, True, True]


def test_the_oldest_entries_go_past_the_bytes() -> None:
    cache: NearCache[int, int] = NearCache(max_entries=100, max_bytes=800)
    for n in range(9):
        cache.put(n, n, 30, 100)  # 100 bytes each: the ninth is one too many
    assert cache.get(0) is None and all(cache.get(n) == n for n in range(1, 9))
    assert cache.size == 800 and len(cache) == 8


def test_an_entry_too_large_for_its_share_is_not_kept_and_a_put_replaces() -> None:
    cache: NearCache[str, str] = NearCache(max_entries=10, max_bytes=800)
    cache.put("big", "x", 30, 101)  # over max_bytes // 8
    assert cache.get("big") is None and cache.size == 0
    cache.put("k", "old", 30, 50)
    cache.put("k", "new", 30, 60)
    assert cache.get("k") == "new" and cache.size == 60 and len(cache) == 1
    cache.clear()
    assert cache.get("k") is None and cache.size == 0
