"""Our own small cache interface, and its two backends.

The rest of the gateway sees only `Cache`: bytes in, bytes out, a TTL on every write, and an
atomic "set if absent with a TTL in milliseconds" (Redis `SET NX PX`) for short locks. What
goes in is the caller's business (the upstream cache's entries: gateway/upstream_store.py).

    MemoryCache   aiocache SimpleMemoryCache: per process, the default
    RedisCache    redis-py, through gateway/redis_connect.py: shared by every replica, on one
                  server, a Redis Cluster or behind Sentinel alike

Every Redis operation is one key (GET, PSETEX, DEL, SET NX PX; the upstream cache's hashes and
scripts, gateway/upstream_store.py, too), so on a cluster the entries spread
over the nodes with no hash tag. `clear()` deletes this cache's namespace with SCAN + DEL (on a
cluster, SCAN walks every master), never FLUSHDB: the client store shares the database. Redis
goes through redis-py rather than aiocache: aiocache 0.12's Redis backend builds its own
single-server client from a host and port, and can reach neither a cluster nor a Sentinel's
master. Each operation waits for one of the process's `MAX_CONNECTIONS` slots and is abandoned
after `timeout_s`, the wait included (the caller then asks the vendor).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiocache
from aiocache.serializers import NullSerializer

from gateway.config import ConfigError, GatewayConfig

log = logging.getLogger("parkgate.cache")

T = TypeVar("T")

#: every key of the upstream cache in Redis starts with `<store.prefix>cache:`
NAMESPACE = "cache"
#: a cache operation that takes longer than this is abandoned (the caller falls back to the vendor)
OPERATION_TIMEOUT_S = 1.0
#: Redis connections per process for the cache
MAX_CONNECTIONS = 64


class Cache(ABC):
    """Bytes by key, each with a TTL. Implementations raise on backend failure; callers decide."""

    name: str = "cache"
    #: shared by every replica (Redis): entries may come from another process
    shared: bool = False
    #: how many times `clear()` ran in this process: copies kept beside the cache are dropped when it moves
    generation: int = 0

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    async def get_with_ttl(self, key: str) -> tuple[bytes, float] | None:
        """The value and the seconds it has left (0 when unknown: keep no copy of it)."""
        value = await self.get(key)
        return None if value is None else (value, 0.0)

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    async def add(self, key: str, value: bytes, ttl_ms: int) -> bool:
        """Set `key` only if it is absent, expiring after `ttl_ms` (SET NX PX); True if it was set."""

    @abstractmethod
    async def clear(self) -> None:
        """Forget every key of this cache (its namespace only, never the whole database)."""

    async def aclose(self) -> None:  # optional: nothing to release by default
        return None


class _AiocacheCache(Cache):
    def __init__(self, backend: Any) -> None:
        self.backend = backend

    async def get(self, key: str) -> bytes | None:
        value = await self.backend.get(key)
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        # aiocache: float TTLs are milliseconds-precise (PSETEX on Redis), ints whole seconds
        await self.backend.set(key, value, ttl=max(0.001, float(ttl_s)))

    async def delete(self, key: str) -> None:
        await self.backend.delete(key)

    async def add(self, key: str, value: bytes, ttl_ms: int) -> bool:
        try:
            return bool(await self.backend.add(key, value, ttl=max(1, int(ttl_ms)) / 1000))
        except ValueError:  # aiocache's way of saying "already exists"
            return False

    async def aclose(self) -> None:
        await self.backend.close()


class MemoryCache(_AiocacheCache):
    """In this process only (aiocache SimpleMemoryCache). Values are stored as given."""

    name = "memory"

    def __init__(self) -> None:
        super().__init__(aiocache.Cache(aiocache.Cache.MEMORY, serializer=NullSerializer(encoding=None), timeout=None))

    async def clear(self) -> None:
        # safe here: this SimpleMemoryCache is ours alone
        self.generation += 1
        await self.backend.clear()


class RedisCache(Cache):
    """In Redis, under `<prefix>cache:`; shared by every replica."""

    name = "redis"
    shared = True

    def __init__(self, url: str, prefix: str = "parkgate:", *, timeout_s: float = OPERATION_TIMEOUT_S,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        from gateway.redis_connect import connect

        self.namespace = f"{prefix}{NAMESPACE}"
        self.timeout_s = timeout_s
        # A burst waits for one of `max_connections` slots, within the operation's timeout, instead
        # of failing past the pool's size: redis-py's pools raise MaxConnectionsError then (its
        # blocking pool serves one server only; Sentinel's and the cluster's nodes' pools do not
        # wait), and a cache write lost that way is a second vendor call on another replica.
        # No retries: a failed read is a miss, and the vendor is there.
        self._slots = asyncio.Semaphore(max_connections)
        self.client = connect(url, timeout_s=timeout_s, connect_timeout_s=timeout_s, retries=0,
                              max_connections=max_connections)

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def timed(self, operation: Awaitable[T]) -> T:
        """An operation of this cache's client, in one of its connection slots, abandoned after
        `timeout_s` (waiting for the slot included). Every command of the cache comes through here
        (gateway/upstream_store.py's too; only clear()'s SCAN does not)."""
        async with asyncio.timeout(self.timeout_s):
            try:
                await self._slots.acquire()
            except BaseException:
                if inspect.iscoroutine(operation):
                    operation.close()  # never started: not "never awaited"
                raise
            try:
                return await operation
            finally:
                self._slots.release()

    async def get(self, key: str) -> bytes | None:
        value = await self.timed(self.client.get(self._key(key)))
        return None if value is None else value if isinstance(value, bytes) else value.encode()

    async def get_with_ttl(self, key: str) -> tuple[bytes, float] | None:
        """PTTL then GET, in one round trip: a value written in between is newer than the TTL says,
        never older, so a copy kept for that TTL never outlives what it copies."""
        full = self._key(key)
        pttl, value = await self.timed(self._pttl_and_get(full))
        if value is None:
            return None
        return (value if isinstance(value, bytes) else value.encode()), max(0, int(pttl)) / 1000

    async def _pttl_and_get(self, full_key: str) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.pttl(full_key)
            pipe.get(full_key)
            return list(await pipe.execute())

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self.timed(self.client.psetex(self._key(key), max(1, int(ttl_s * 1000)), value))

    async def delete(self, key: str) -> None:
        await self.timed(self.client.delete(self._key(key)))

    async def add(self, key: str, value: bytes, ttl_ms: int) -> bool:
        return bool(await self.timed(self.client.set(self._key(key), value, nx=True, px=max(1, int(ttl_ms)))))

    async def clear(self) -> None:
        """SCAN + DEL over this namespace (never FLUSHDB, never KEYS)."""
        self.generation += 1
        client: Any = self.client
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{self.namespace}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self.timed(client.delete(*batch))  # on a cluster redis-py splits a DEL by slot
                batch = []
        if batch:
            await self.timed(client.delete(*batch))

    async def aclose(self) -> None:
        await self.client.aclose()


def build_cache(config: GatewayConfig) -> Cache | None:
    """The configured upstream cache: `cache.backend`, else Redis with the Redis store, else memory.

    `none` turns caching off (every request then reaches the vendors).
    """
    backend = config.cache.backend
    if backend is None:
        backend = "redis" if config.store.backend == "redis" else "memory"
    if backend == "none":
        return None
    if backend == "memory":
        return MemoryCache()
    if not config.store.redis_url:
        raise ConfigError("cache.backend: redis needs `store.redis_url` (the cache shares the store's Redis)")
    return RedisCache(config.store.redis_url, config.store.prefix)
