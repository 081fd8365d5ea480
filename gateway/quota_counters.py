"""The quotas' fixed-window counters: in this process or in Redis.

`run` charges, refunds and reads counters in one go and answers each as (count, seconds until
the key expires). On Redis that one go is one round trip, and an admission (a client's requests
and cost counters charged together) is one script: `CHARGE_LUA` does for every key what the
`limits` library's fixed-window script (`incr_expire.lua`) does for one (INCRBY, and EXPIRE when
the key was created), and answers the TTLs too, so the keys are compatible with limits' own and
with replicas still running its script. In memory (and as the fallback while Redis is down) the
same rules run on a dict. Admissions that reach Redis in the same moment under one hash tag (a
busy client's burst) go as one script (gateway/quota_batches.py): one round trip for all of them,
each answered the counts after its own charge; its settlements' refunds go together likewise
(`REFUNDS_LUA`). Every key charged together shares the client's hash tag (gateway/quotas.py `_key`):
on a Redis Cluster a script's keys sit in one slot.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from gateway.quota_batches import AdmissionBatches
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
    """In this process: a dict of [count, expiry (epoch s)], with limits' MemoryStorage's rules (a
    charge that creates a counter, or finds it at 0, starts its window; an expired counter is
    gone; a refund stops at 0 and keeps the expiry), without its per-call locks and tasks: nothing
    here suspends, so each `run` is atomic for the event loop."""

    #: expired counters are swept when the dict has grown by this many since the last sweep
    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self._counters: dict[str, list[float]] = {}
        self._swept_at_size = 0

    def _live(self, key: str, now: float) -> list[float] | None:
        counter = self._counters.get(key)
        if counter is not None and counter[1] <= now:
            del self._counters[key]
            return None
        return counter

    async def run(self, charges: Sequence[CounterCharge] = (), refunds: Sequence[CounterRefund] = (),
                  reads: Sequence[str] = ()) -> CounterResults:
        now = time.time()
        charged = []
        for key, amount, window_s in charges:
            counter = self._live(key, now)
            if counter is None:
                counter = self._counters[key] = [0, now + window_s]
            counter[0] += amount
            if counter[0] == amount:
                counter[1] = now + window_s
            charged.append(_left(counter, now))
        refunded = []
        for key, amount, not_after in refunds:
            counter = self._live(key, now)
            if counter is None:
                refunded.append((0, 0.0))
                continue
            if counter[0] > 0 and amount > 0 and (not not_after or counter[1] <= not_after):
                counter[0] = max(0, counter[0] - amount)
            refunded.append(_left(counter, now))
        read = [_left(c, now) if (c := self._live(k, now)) is not None else (0, 0.0) for k in reads]
        if len(self._counters) > self._swept_at_size + self.SWEEP_EVERY:
            self._sweep(now)
        return charged, refunded, read

    def _sweep(self, now: float) -> None:
        for key in [k for k, (_, expiry) in self._counters.items() if expiry <= now]:
            del self._counters[key]
        self._swept_at_size = len(self._counters)


def _left(counter: list[float], now: float) -> Counted:
    return int(counter[0]), max(0.0, counter[1] - now)


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

#: Take back up to its amount from each counter in turn, never below zero, never creating the key, and
#: only when the key expires by its not_after (epoch ms; 0 = any); DECRBY keeps the key's TTL. ARGV:
#: amount, not_after per key; answers {count, pttl} per key, flat. A settlement's refund, or the refunds
#: of one moment and one client together (gateway/quota_batches.py), each as if it ran alone.
REFUNDS_LUA = """
local out = {}
local now_ms = nil
for i, key in ipairs(KEYS) do
  local amount, not_after = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local v = tonumber(redis.call('get', key))
  local pttl = redis.call('pttl', key)
  if v then
    local late = false
    if not_after > 0 and pttl > 0 then
      if not now_ms then
        local t = redis.call('time')
        now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      late = now_ms + pttl > not_after
    end
    if not late then
      local n = math.min(amount, v)
      if n > 0 then v = redis.call('decrby', key, n) end
    end
  else
    v = 0
  end
  out[2 * i - 1] = v
  out[2 * i] = pttl
end
return out
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
        self.refunds = self.client.register_script(REFUNDS_LUA)
        self._admissions: AdmissionBatches[CounterCharge, Counted] = AdmissionBatches(self._charge_now)
        self._settlements: AdmissionBatches[CounterRefund, Counted] = AdmissionBatches(self._refund_now)

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}"  # the way limits prefixes its keys

    async def run(self, charges: Sequence[CounterCharge] = (), refunds: Sequence[CounterRefund] = (),
                  reads: Sequence[str] = ()) -> CounterResults:
        if charges and not refunds and not reads:  # an admission: sent with the others of this moment
            return await self._admissions.charge(charges), [], []
        if refunds and not charges and not reads:  # a settlement's refund: likewise
            return [], await self._settlements.charge(refunds), []
        key = self.key
        ops: list[_Op] = []
        if charges:
            ops.append((self._charge_command(charges),))
        if refunds:
            ops.append((self._refund_command(refunds),))
        for k in reads:
            ops.append((("get", key(k)), ("pttl", key(k))))
        counted: list[Counted] = []
        for commands, replies in zip(ops, await self._execute(ops), strict=True):
            flat = replies[0] if len(commands) == 1 else replies  # a script answers a flat list
            counted.extend(_counted_pairs(flat))
        c, r = len(charges), len(refunds)
        return counted[:c], counted[c:c + r], counted[c + r:]

    async def _charge_now(self, charges: Sequence[CounterCharge]) -> list[Counted]:
        """Every charge in one script (their keys share one hash tag), in order: one round trip."""
        return _counted_pairs(await self._one(self._charge_command(charges)))

    async def _refund_now(self, refunds: Sequence[CounterRefund]) -> list[Counted]:
        """Every refund in one script (their keys share one hash tag), in order: one round trip."""
        return _counted_pairs(await self._one(self._refund_command(refunds)))

    def _refund_command(self, refunds: Sequence[CounterRefund]) -> tuple[Any, ...]:
        """REFUNDS_LUA over the refunds' keys, each with its amount and not_after (epoch ms)."""
        args = [arg for _, n, not_after in refunds for arg in (n, int(not_after * 1000))]
        return ("evalsha", self.refunds.sha, len(refunds), *(self.key(k) for k, _, _ in refunds), *args)

    def _charge_command(self, charges: Sequence[CounterCharge]) -> tuple[Any, ...]:
        """CHARGE_LUA over the charges' keys, each with its amount and window."""
        windows = [arg for _, n, w in charges for arg in (n, w)]
        return ("evalsha", self.charge.sha, len(charges), *(self.key(k) for k, _, _ in charges), *windows)

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
            await self._load_scripts()
            todo = missing
        for result in results:
            for item in result:
                if isinstance(item, Exception):
                    raise item
        return results

    async def _one(self, command: tuple[Any, ...]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await self.client.execute_command(*command)
        except NoScriptError:
            await self._load_scripts()
            return await self.client.execute_command(*command)

    async def _load_scripts(self) -> None:
        await self.client.script_load(self.charge.script)
        await self.client.script_load(self.refunds.script)

    async def ping(self) -> None:
        await self.client.ping()

    async def aclose(self) -> None:
        await self.client.aclose()


def _counted(count: Any, pttl: Any) -> Counted:
    ms = int(pttl)
    return int(count or 0), ms / 1000 if ms > 0 else 0.0


def _counted_pairs(flat: Sequence[Any]) -> list[Counted]:
    """A reply of [count, pttl, count, pttl, ...] as one `Counted` per key."""
    return [_counted(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _no_script(item: Any) -> bool:
    from redis.exceptions import NoScriptError

    return isinstance(item, NoScriptError)
