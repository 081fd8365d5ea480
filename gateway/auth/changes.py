"""Notices that a client changed — revoked, a key rotated, its scopes, facilities or plan edited —
heard by every replica at once, so that whatever holds the client's credentials open (subscriptions:
gateway/events/credential_watch.py) can check them again now rather than at its next timer tick.

    publish    the admin path (gateway/admin.py, GraphQL admin operations and the CLI alike), once
               the store holds the change
    listen     `listen(callback)`: `callback(client_id)` for every notice, in this process

In memory (one process) the notice is a call of the listeners. With the Redis store, a PUBLISH on
`<prefix>clients:changed` and, in each process that listens, one SUBSCRIBE connection. Pub/sub keeps
nothing: a notice sent while a replica is not listening (its connection dropped that moment) is lost.
A notice is therefore only ever a shortcut; whoever relies on one also checks again on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("parkgate.auth.changes")

#: how long the listener waits for a notice before it checks its connection is still alive
LISTEN_POLL_S = 5.0


class ClientChanges:
    """In one process: `publish` calls every listener."""

    def __init__(self) -> None:
        self._listeners: set[Callable[[str], None]] = set()

    def listen(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(client_id)` for every notice from now on; returns the way to stop."""
        self._listeners.add(callback)
        return lambda: self._listeners.discard(callback)

    async def publish(self, client_id: str) -> None:
        self._hear(client_id)

    def _hear(self, client_id: str) -> None:
        for callback in list(self._listeners):
            try:
                callback(client_id)
            except Exception:  # one broken listener must not keep the notice from the others
                log.exception("client changes: a listener failed on %s", client_id)

    async def aclose(self) -> None:
        pass


class RedisClientChanges(ClientChanges):
    """Every replica's listeners hear every notice (Redis pub/sub); started by the first `listen`."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        super().__init__()
        import redis.asyncio as aioredis

        self.channel = f"{prefix}clients:changed"
        # publishing must fail fast when Redis is gone; the listener's reads wait on purpose, and
        # ping an idle connection so that a dead one is found and replaced
        self._writer = aioredis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._reader = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2.0, health_check_interval=LISTEN_POLL_S)
        self._task: asyncio.Task[None] | None = None

    def listen(self, callback: Callable[[str], None]) -> Callable[[], None]:
        stop = super().listen(callback)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="client-changes-listener")
        return stop

    async def publish(self, client_id: str) -> None:
        try:
            await self._writer.publish(self.channel, client_id)
        except Exception as exc:  # noqa: BLE001 - the change is stored; replicas see it at their next re-check
            log.warning("client changes: could not announce a change of %s (%s)", client_id, exc)

    async def _run(self) -> None:
        failures = 0
        while True:
            pubsub: Any = self._reader.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                failures = 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_POLL_S)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self._hear(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: listen again once it is back
                failures += 1
                log.warning("client changes: listening failed (%s); retrying", exc)
                await asyncio.sleep(min(0.2 * 2 ** min(failures, 5), 5.0))
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._reader.aclose()
        await self._writer.aclose()


def build_client_changes(config: Any) -> ClientChanges:
    """Over Redis when the store is Redis (every replica, and the CLI, share it); in memory otherwise."""
    if config.store.backend == "redis":
        return RedisClientChanges(config.store.redis_url, config.store.prefix)
    return ClientChanges()
