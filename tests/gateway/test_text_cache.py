"""The caches of client-sent text (parsed documents, analyses, screened documents) stay bounded
by size, and keep nothing from a stream of texts each sent once."""

from __future__ import annotations

from gateway.execution import Executor
from resolvers.schema import schema
from gateway.text_cache import TextCache


def test_a_text_is_kept_from_its_second_use_and_the_total_size_is_bounded() -> None:
    cache: TextCache[int] = TextCache(max_entries=100, max_size=1000)
    cache.put("a" * 10, 1)
    assert cache.get("a" * 10) is None  # first sighting: only its hash is remembered
    cache.put("a" * 10, 1)
    assert cache.get("a" * 10) == 1
    for i in range(200):  # twice each: all admitted, the oldest evicted by size
        for _ in range(2):
            cache.put(f"{i:05d}" + "x" * 95, i)
    assert cache.size <= 1000 and len(cache) == 10
    assert cache.get("00199" + "x" * 95) == 199 and cache.get("a" * 10) is None


def test_an_entry_too_large_for_its_share_is_never_kept() -> None:
    cache: TextCache[int] = TextCache(max_entries=100, max_size=800)
    for _ in range(3):
        cache.put("y" * 101, 1)
    assert cache.get("y" * 101) is None and cache.size == 0


def test_a_flood_of_distinct_documents_leaves_the_executor_nothing_to_keep() -> None:
    executor = Executor(schema)
    for i in range(300):
        executor.prepare("{ facilities { edges { node { id name levels { name } } } } }" + f"# {i}", None)
    assert len(executor._documents) == 0
    hot = "{ facilities { totalCount } }"
    for _ in range(2):
        executor.prepare(hot, None)
    assert len(executor._documents) == 1
