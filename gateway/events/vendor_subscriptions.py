"""Webhook subscriptions at vendors that deliver to whoever subscribed (APDS: `POST /webhooks`),
made when the event path starts.

For each system whose adapter `subscribes_webhooks`, in the background (a vendor that is down
must not stop the gateway from starting, and the gateway's own endpoint has to be listening
before a vendor can reach it): `adapter.subscribe_webhooks(known)` with the subscription made
before, which the adapter keeps, updates or replaces; the id it answers is recorded, so a restart
does not subscribe twice. A failure is retried with backoff (0.2 s doubling to a minute) until it
succeeds or the gateway stops.

Where the ids are kept: in memory, or with the Redis store in Redis (`{prefix}vendor-subscriptions`),
so that replicas share them; a short lock there keeps two replicas starting at once from both
subscribing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from adapters.base import Adapter
from adapters.errors import UpstreamError
from gateway.redis_connect import connect
from gateway.runtime import Runtime

log = logging.getLogger("parkgate.events.vendor_subscriptions")

FIRST_RETRY_S = 0.2
MAX_RETRY_S = 60.0
LOCK_MS = 30_000


class SubscriptionIds(Protocol):
    async def get(self, system_id: str) -> str | None: ...

    async def put(self, system_id: str, subscription_id: str) -> None: ...

    async def lock(self, system_id: str) -> bool:
        """True when this replica may subscribe now (no other is doing it)."""
        ...

    async def unlock(self, system_id: str) -> None: ...

    async def aclose(self) -> None: ...


class MemorySubscriptionIds:
    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    async def get(self, system_id: str) -> str | None:
        return self.ids.get(system_id)

    async def put(self, system_id: str, subscription_id: str) -> None:
        self.ids[system_id] = subscription_id

    async def lock(self, system_id: str) -> bool:
        return True

    async def unlock(self, system_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


class RedisSubscriptionIds:
    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}vendor-subscriptions"

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisSubscriptionIds:
        """One key at a time (the ids' hash, each lock on its own): any deployment `url` names."""
        return cls(connect(url, timeout_s=2.0), prefix)

    async def get(self, system_id: str) -> str | None:
        value = await self.redis.hget(self.key, system_id)
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, system_id: str, subscription_id: str) -> None:
        await self.redis.hset(self.key, system_id, subscription_id)

    async def lock(self, system_id: str) -> bool:
        return bool(await self.redis.set(f"{self.key}:lock:{system_id}", "1", nx=True, px=LOCK_MS))

    async def unlock(self, system_id: str) -> None:
        await self.redis.delete(f"{self.key}:lock:{system_id}")

    async def aclose(self) -> None:
        await self.redis.aclose()


class VendorSubscriptions:
    def __init__(self, runtime: Runtime, ids: SubscriptionIds) -> None:
        self.adapters = {system_id: adapter for system_id, adapter in runtime.systems.adapters.items()
                         if adapter.subscribes_webhooks}
        self.ids = ids
        #: system id -> its subscription, once made (None: its configuration subscribes to nothing)
        self.subscribed: dict[str, str | None] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def build(cls, runtime: Runtime) -> VendorSubscriptions:
        store = runtime.config.store
        if store.backend == "redis" and store.redis_url is not None:
            return cls(runtime, RedisSubscriptionIds.from_url(store.redis_url, store.prefix))
        return cls(runtime, MemorySubscriptionIds())

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._keep(system_id, adapter), name=f"subscribe-{system_id}")
                       for system_id, adapter in self.adapters.items()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.ids.aclose()

    async def _keep(self, system_id: str, adapter: Adapter) -> None:
        delay = FIRST_RETRY_S
        while True:
            try:
                if await self.ids.lock(system_id):
                    try:
                        made = await adapter.subscribe_webhooks(await self.ids.get(system_id))
                        if made is not None:
                            await self.ids.put(system_id, made)
                            log.info("subscribed to %s's webhooks (subscription %s)", system_id, made)
                        self.subscribed[system_id] = made
                        return
                    finally:
                        await self.ids.unlock(system_id)
            except (UpstreamError, OSError, ConnectionError) as exc:
                log.info("subscribing to %s's webhooks failed, retrying in %.1f s: %s", system_id, delay, exc)
            except Exception as exc:  # noqa: BLE001 - the store (Redis) or anything else: retried, never fatal
                log.warning("subscribing to %s's webhooks failed, retrying in %.1f s: %r", system_id, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)
