"""Our own small cache interface, and its two backends over aiocache.

The rest of the gateway sees only `Cache`: bytes in, bytes out, a TTL on every write, and an
atomic "set if absent with a TTL in milliseconds" (Redis `SET NX PX`) for short locks. What
goes in is the caller's business (the upstream cache pickles its entries).

    MemoryCache   aiocache SimpleMemoryCache: per process, the default
    RedisCache    aiocache RedisCache (redis-py underneath): shared by every replica

Both go through aiocache for get/set/delete/add (aiocache's `add` with a float TTL is
`SET key value NX PX ms` on Redis). Only `clear()` on Redis talks to redis-py directly: it
deletes this cache's namespace with SCAN + DEL (and `aclose` closes the redis-py client). aiocache's own `clear()` is never called: without
a namespace it is FLUSHDB, which would wipe the client store sharing the database, and with
one it uses KEYS. aiocache's serializers are bypassed (NullSerializer, no decoding: its
MsgPack serializer is broken and its JSON one cannot carry our dataclasses).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

import aiocache
from aiocache.serializers import NullSerializer

from gateway.config import ConfigError, GatewayConfig

log = logging.getLogger("parkgate.cache")

#: every key of the upstream cache in Redis starts with `<store.prefix>cache:`
NAMESPACE = "cache"
#: a cache operation that takes longer than this is abandoned (the caller falls back to the vendor)
OPERATION_TIMEOUT_S = 1.0
#: Redis connections per process for the cache
MAX_CONNECTIONS = 64


class Cache(ABC):
    """Bytes by key, each with a TTL. Implementations raise on backend failure; callers decide."""

    name: str = "cache"

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

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
        await self.backend.clear()


class RedisCache(_AiocacheCache):
    """In Redis (aiocache RedisCache over redis-py), under `<prefix>cache:`; shared by every replica."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "parkgate:", *, timeout_s: float = OPERATION_TIMEOUT_S,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        from redis.asyncio import BlockingConnectionPool
        from redis.asyncio.connection import parse_url

        options = parse_url(url)
        # a blocking pool: a burst waits for a free connection (within the operation timeout)
        # instead of failing at once as redis-py's default pool does past 100 connections
        pool_kwargs: dict[str, Any] = {"socket_timeout": timeout_s, "timeout": timeout_s}
        if options.get("username"):
            pool_kwargs["username"] = options["username"]
        if "connection_class" in options:
            pool_kwargs["connection_class"] = options["connection_class"]
        self.namespace = f"{prefix}{NAMESPACE}"
        super().__init__(aiocache.Cache(
            aiocache.Cache.REDIS,
            endpoint=options.get("host", "127.0.0.1"),
            port=options.get("port", 6379),
            db=options.get("db", 0),
            password=options.get("password"),
            create_connection_timeout=timeout_s,
            pool_max_size=max_connections,
            connection_pool_class=BlockingConnectionPool,
            connection_pool_kwargs=pool_kwargs,
            namespace=self.namespace,
            serializer=NullSerializer(encoding=None),  # raw bytes back, never decoded
            timeout=timeout_s,
        ))

    async def clear(self) -> None:
        """SCAN + DEL over this namespace with redis-py (aiocache's clear would be FLUSHDB or KEYS)."""
        client = self.backend.client
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{self.namespace}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await client.delete(*batch)
                batch = []
        if batch:
            await client.delete(*batch)

    async def aclose(self) -> None:
        await self.backend.client.aclose()  # aiocache's close() calls redis-py's deprecated close()


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
