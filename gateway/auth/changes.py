"""Notices that a client changed — revoked, a key rotated, its scopes, facilities or plan edited —
heard by every replica at once, so that whatever holds the client's credentials open (subscriptions:
gateway/events/credential_watch.py) can check them again now rather than at its next timer tick.

    publish    the admin path (gateway/admin.py, GraphQL admin operations and the CLI alike), once
               the store holds the change
    listen     `listen(callback)`: `callback(client_id)` for every notice, in this process

In memory (one process) the notice is a call of the listeners. With the Redis store, an entry on a
short stream, `<prefix>clients:changes` (XADD, trimmed to about a thousand), and in each process that
listens one task reading it (XREAD BLOCK). A stream rather than pub/sub: it works the same on one
server, a Redis Cluster (one key: its node serves the blocking read) and behind Sentinel, and a
listener whose connection dropped for a moment (a failover) carries on from the last notice it
heard instead of losing what was said meanwhile. A notice is still only ever a shortcut (one sent
while a replica was away long enough to be trimmed, or lost with a failed-over master, is not heard):
whoever relies on one also checks again on a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gateway.redis_replies import text

log = logging.getLogger("parkgate.auth.changes")

#: how long the listener's blocking read waits for a notice before it asks again
LISTEN_POLL_S = 5.0
#: notices kept on the stream (about): a listener away for longer than that many changes misses some
STREAM_MAXLEN = 1000


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
    """Every replica's listeners hear every notice (a Redis Stream); reading starts with the first `listen`."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        super().__init__()
        from gateway.redis_connect import connect

        self.stream = f"{prefix}clients:changes"
        # publishing must fail fast when Redis is gone; the reader's XREAD waits LISTEN_POLL_S on purpose
        self._writer = connect(redis_url, timeout_s=1.0, connect_timeout_s=1.0)
        self._reader = connect(redis_url, timeout_s=LISTEN_POLL_S + 2.0, connect_timeout_s=2.0)
        self._task: asyncio.Task[None] | None = None

    def listen(self, callback: Callable[[str], None]) -> Callable[[], None]:
        stop = super().listen(callback)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="client-changes-listener")
        return stop

    async def publish(self, client_id: str) -> None:
        try:
            await self._writer.xadd(self.stream, {"client": client_id}, maxlen=STREAM_MAXLEN, approximate=True)
        except Exception as exc:  # noqa: BLE001 - the change is stored; replicas see it at their next re-check
            log.warning("client changes: could not announce a change of %s (%s)", client_id, exc)

    async def _run(self) -> None:
        failures = 0
        last_id: str | None = None
        while True:
            try:
                if last_id is None:
                    # from the newest notice on (a concrete id, not `$`: nothing said before the first
                    # XREAD is missed)
                    newest: Any = await self._reader.xrevrange(self.stream, count=1)
                    last_id = text(newest[0][0]) if newest else "0-0"
                answer: Any = await self._reader.xread({self.stream: last_id}, count=100,
                                                       block=int(LISTEN_POLL_S * 1000))
                failures = 0
                for _stream, entries in answer or []:
                    for entry_id, fields in entries:
                        last_id = text(entry_id)
                        client_id = fields.get(b"client", fields.get("client"))
                        if client_id is not None:
                            self._hear(text(client_id))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: read on from `last_id` once it is back
                failures += 1
                log.warning("client changes: listening failed (%s); retrying", exc)
                await asyncio.sleep(min(0.2 * 2 ** min(failures, 5), 5.0))

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # redis-py may swallow one cancellation of a blocked XREAD: cancel until the task ends
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
        await self._reader.aclose()
        await self._writer.aclose()


def build_client_changes(config: Any) -> ClientChanges:
    """Over Redis when the store is Redis (every replica, and the CLI, share it); in memory otherwise."""
    if config.store.backend == "redis":
        return RedisClientChanges(config.store.redis_url, config.store.prefix)
    return ClientChanges()
