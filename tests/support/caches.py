"""Caches for the upstream cache's tests (gateway/upstream.py): one backend per test, each `make()`
another client of it, as replicas are; with Redis, a prefix of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from gateway.cache import Cache, MemoryCache, RedisCache


class PlainBytes(Cache):
    """A cache that is neither of parkgate's own: bytes in a dict (the upstream store keeps whole entries in it)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.values[key] = value

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)

    async def add(self, key: str, value: bytes, ttl_ms: int) -> bool:
        return self.values.setdefault(key, value) is value

    async def clear(self) -> None:
        self.values.clear()


@asynccontextmanager
async def cache_maker(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Cache]]:
    """`make()` for caches of one `kind`: "memory" (a process's own), "redis" (the test session's
    Redis) or "bytes" (`PlainBytes`, one dict every `make()` shares); cleared and closed afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    made: list[Cache] = []
    shared = PlainBytes()

    def make() -> Cache:
        cache: Cache
        if kind == "memory":
            cache = MemoryCache()
        elif kind == "redis":
            cache = RedisCache(request.getfixturevalue("redis_url"), prefix)
        else:
            cache = shared
        made.append(cache)
        return cache

    yield make
    if made:
        await made[0].clear()
    for cache in made:
        await cache.aclose()
