"""The quotas' fixed-window counters: in this process (limits' MemoryStorage) or in Redis.

`run` charges, refunds and reads counters in one go and answers each as (count, seconds until
the key expires). On Redis that one go is one round trip, and an admission (a client's requests
and cost counters charged together) is one script: `CHARGE_LUA` does for every key what the
`limits` library's fixed-window script (`incr_expire.lua`) does for one (INCRBY, and EXPIRE when
the key was created), and answers the TTLs too, so the keys are compatible with limits' own and
with replicas still running its script. Every key charged together shares the client's hash tag
(gateway/quotas.py `_key`): on a Redis Cluster a script's keys sit in one slot.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from limits.aio.storage import MemoryStorage

from gateway.redis_connect import connect

#: (count after the operation, seconds until the key expires; 0 when there is no key)
Counted = tuple[int, float]
#: (key, amount, window_s)
CounterCharge = tuple[str, int, int]
#: (key, amount, only into a window expiring by: epoch s; 0 = any)
CounterRefund = tuple[str, int, float]
#: what `run` returns: the charges', the refunds' and the reads' results, each in order
CounterResults = tuple[list[Counted], list[Counted], list[Counted]]


class Counters(ABC):
    """Fixed-window counters. `run` does charges, refunds and reads in one go (one Redis
    round trip) and returns their results in the same order."""

    @abstractmethod
    async def run(self, charges: Sequence[CounterCharge] = (), refunds: Sequence[CounterRefund] = (),
                  reads: Sequence[str] = ()) -> CounterResults: ...

    async def ping(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class MemoryCounters(Counters):
    """limits' MemoryStorage. Nothing here suspends between a read and its write, so each
    step is atomic for the event loop."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()

    async def _counted(self, key: str, count: int) -> Counted:
        return count, max(0.0, await self.storage.get_expiry(key) - time.time())

    async def run(self, charges: Sequence[CounterCharge] = (), refunds: Sequence[CounterRefund] = (),
                  reads: Sequence[str] = ()) -> CounterResults:
        s = self.storage
        charged = [await self._counted(k, await s.incr(k, w, amount=n)) for k, n, w in charges]
        refunded = []
        for key, amount, not_after in refunds:
            count = await s.get(key)
            if count > 0 and amount > 0 and (not not_after or await s.get_expiry(key) <= not_after):
                count = await s.decr(key, min(amount, count))  # limits clamps at 0 and keeps the expiry
            refunded.append(await self._counted(key, count))
        read = [await self._counted(k, await s.get(k)) for k in reads]
        return charged, refunded, read


#: Charge KEYS[i] with ARGV[2i-1] in a window of ARGV[2i] seconds, each as limits' incr_expire
#: does (INCRBY; EXPIRE when this charge created the key); answers {count, pttl} per key, flat.
CHARGE_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[2 * i - 1])
  local current = redis.call('incrby', key, amount)
  if current == amount then redis.call('expire', key, ARGV[2 * i]) end
  out[2 * i - 1] = current
  out[2 * i] = redis.call('pttl', key)
end
return out
"""

#: Take back up to ARGV[1] from a counter, never below zero, never creating the key, and only
#: when the key expires by ARGV[2] (epoch ms; 0 = any). DECRBY keeps the key's TTL.
REFUND_LUA = """
local v = tonumber(redis.call('get', KEYS[1]))
local pttl = redis.call('pttl', KEYS[1])
if not v then return {0, pttl} end
local not_after = tonumber(ARGV[2])
if not_after > 0 and pttl > 0 then
  local t = redis.call('time')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + pttl > not_after then
    return {v, pttl}
  end
end
local n = math.min(tonumber(ARGV[1]), v)
if n > 0 then v = redis.call('decrby', KEYS[1], n) end
return {v, pttl}
"""

#: one group of commands sent together (a script, or a GET and its PTTL)
_Op = tuple[tuple[Any, ...], ...]


class RedisCounters(Counters):
    """The counters in Redis: every charge in one script, each refund a script, each read GET +
    PTTL, all pipelined, so that `run` is one round trip."""

    #: attempts after the first on a connection error (not on a timeout): a Sentinel failover's switch
    #: is ridden out (an INCRBY retried after it landed over-counts by one, never under-counts); a
    #: Redis that is gone or silent still hands over to the local fallback at once
    RETRIES = 2

    def __init__(self, uri: str, prefix: str, timeout_s: float) -> None:
        self.prefix = prefix
        self.client = connect(uri, timeout_s=timeout_s, connect_timeout_s=timeout_s, retries=self.RETRIES,
                              retry_timeouts=False)
        self.charge = self.client.register_script(CHARGE_LUA)
        self.refund = self.client.register_script(REFUND_LUA)

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}"  # the way limits prefixes its keys

    async def run(self, charges: Sequence[CounterCharge] = (), refunds: Sequence[CounterRefund] = (),
                  reads: Sequence[str] = ()) -> CounterResults:
        key = self.key
        ops: list[_Op] = []
        if charges:
            windows = [arg for _, n, w in charges for arg in (n, w)]
            ops.append((("evalsha", self.charge.sha, len(charges), *(key(k) for k, _, _ in charges), *windows),))
        for k, n, not_after in refunds:
            ops.append((("evalsha", self.refund.sha, 1, key(k), n, int(not_after * 1000)),))
        for k in reads:
            ops.append((("get", key(k)), ("pttl", key(k))))
        counted: list[Counted] = []
        for commands, replies in zip(ops, await self._execute(ops), strict=True):
            flat = replies[0] if len(commands) == 1 else replies  # a script answers a flat list
            counted.extend(_counted(flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
        c, r = len(charges), len(refunds)
        return counted[:c], counted[c:c + r], counted[c + r:]

    async def _execute(self, ops: list[_Op]) -> list[list[Any]]:
        results: list[list[Any]] = [[] for _ in ops]  # each filled by the first attempt
        todo = list(range(len(ops)))
        for _attempt in range(2):
            async with self.client.pipeline(transaction=False) as pipe:
                for i in todo:
                    for command in ops[i]:
                        pipe.execute_command(*command)
                flat = await pipe.execute(raise_on_error=False)
            it = iter(flat)
            missing = []
            for i in todo:
                results[i] = [next(it) for _ in ops[i]]
                if any(_no_script(x) for x in results[i]):
                    missing.append(i)
            if not missing:
                break
            # A Redis that restarted or was flushed has forgotten the scripts: load them and run
            # again only what did not run (a NOSCRIPT command changed nothing).
            await self.client.script_load(self.charge.script)
            await self.client.script_load(self.refund.script)
            todo = missing
        for result in results:
            for item in result:
                if isinstance(item, Exception):
                    raise item
        return results

    async def ping(self) -> None:
        await self.client.ping()

    async def aclose(self) -> None:
        await self.client.aclose()


def _counted(count: Any, pttl: Any) -> Counted:
    ms = int(pttl)
    return int(count or 0), ms / 1000 if ms > 0 else 0.0


def _no_script(item: Any) -> bool:
    from redis.exceptions import NoScriptError

    return isinstance(item, NoScriptError)
