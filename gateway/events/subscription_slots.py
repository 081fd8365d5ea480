"""How many subscriptions a client holds open, against its plan's `maxSubscriptions`, on every replica.

In memory (one process) a counter. With Redis (several replicas) each gateway process keeps its
count per client in a hash, `<prefix>{subs}:<client id>` → {process id: open}, and says it is alive
with a short-lived key `<prefix>{subs}:alive:<process id>` it renews every few seconds. The script
reads every live process's key beside the client's hash, so all of them share the hash tag `{subs}`
(one slot of a Redis Cluster; the data is small: a count per client and process). Taking a
slot is one Lua script: add up the live processes' counts (dropping those of processes that died
without giving their slots back), refuse at the limit, else count one more. Giving one back is
best effort: a process that cannot reach Redis loses nothing but a slot until it is alive again.

Process ids are random per start, so a restarted replica never inherits its former self's counts.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from typing import Any

from gateway.redis_connect import REDIS_FAILURES

log = logging.getLogger("parkgate.subscriptions")

#: every key of the slots shares this hash tag: the script that takes a slot reads them together
TAG = "{subs}"
ALIVE_S = 30  # a process not heard from for this long has died: its slots are free again
RENEW_S = 10

TAKE = """
redis.call('SET', ARGV[3] .. ARGV[1], '1', 'EX', ARGV[4])
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local process, n = fields[i], tonumber(fields[i + 1])
  if process == ARGV[1] or redis.call('EXISTS', ARGV[3] .. process) == 1 then
    total = total + n
  else
    redis.call('HDEL', KEYS[1], process)
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"""
GIVE_BACK = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
"""


class SubscriptionSlots:
    """Slots of this process; `shared` (Redis) makes the limit hold across replicas."""

    def __init__(self, client: Any = None, prefix: str = "") -> None:
        self.local: Counter[str] = Counter()  # client id -> open subscriptions in this process
        self._redis = client
        self._prefix = prefix
        self.process_id = secrets.token_hex(8)
        self._alive: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_config(cls, config: Any) -> SubscriptionSlots:
        if config.store.backend != "redis":
            return cls()
        from gateway.redis_connect import connect

        return cls(connect(config.store.redis_url, timeout_s=1.0, connect_timeout_s=1.0), config.store.prefix)

    async def take(self, client_id: str, limit: int) -> bool:
        """One more open subscription for the client, if its limit allows (on every replica)."""
        if self._redis is None:
            if self.local[client_id] >= limit:
                return False
        else:
            self._keep_alive()
            try:
                # one round trip: say this process is alive, then count and take
                taken = await self._redis.eval(TAKE, 1, self._hash(client_id), self.process_id, limit,
                                               self._alive_key(""), ALIVE_S)
            except REDIS_FAILURES as exc:  # no shared count: this process's own must do
                log.warning("subscription slots: Redis unreachable (%s); counting in this process only", exc)
                if self.local[client_id] >= limit:
                    return False
            else:
                if not taken:
                    return False
        self.local[client_id] += 1
        return True

    def give_back(self, client_id: str) -> None:
        self.local[client_id] -= 1
        if self.local[client_id] <= 0:
            del self.local[client_id]
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._give_back(client_id))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _give_back(self, client_id: str) -> None:
        try:
            await self._redis.eval(GIVE_BACK, 1, self._hash(client_id), self.process_id)
        except REDIS_FAILURES as exc:  # the slot frees itself when this process is gone
            log.warning("subscription slots: could not give a slot back (%s)", exc)

    def _hash(self, client_id: str) -> str:
        return f"{self._prefix}{TAG}:{client_id}"

    def _alive_key(self, process_id: str) -> str:
        return f"{self._prefix}{TAG}:alive:{process_id}"

    def _keep_alive(self) -> None:
        if self._alive is None or self._alive.done():
            self._alive = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self._redis.set(self._alive_key(self.process_id), b"1", ex=ALIVE_S)
            except REDIS_FAILURES as exc:  # retried at the next tick
                log.warning("subscription slots: could not say this process is alive (%s)", exc)

    async def aclose(self) -> None:
        if self._alive is not None:
            self._alive.cancel()
        if self._redis is not None:
            await asyncio.gather(*self._pending, return_exceptions=True)
            try:
                await self._redis.delete(self._alive_key(self.process_id))  # our slots are free at once
            except REDIS_FAILURES as exc:  # they lapse with the key
                log.warning("subscription slots: could not free this process's slots at once (%s)", exc)
            await self._redis.aclose()
