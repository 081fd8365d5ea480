"""What clients used, minute by minute, and when they were throttled: the admin console's charts.

    log.note(client_id, requests=1, cost=12)          # the meter, as it charges (and refunds)
    log.throttled(client_id, "requests", 41)           # the meter, as it answers 429
    await log.minutes(client_id, 60)                   # admin API: the last hour, one entry a minute
    await log.throttles(50)                            # admin API: the latest 429s, newest first

Quotas (gateway/quotas.py) keep only the current window, which is what enforcement needs; this log
keeps the history an admin wants to look at. Noting is synchronous and does no I/O: the request
path never waits for it. In memory (one process) it is the whole log. With a Redis store each
process adds up what it saw and writes it every `flush_s` seconds (HINCRBY on one hash per client
and minute, expiring after `retention_minutes`; throttles on one capped list), so the console sees
every replica's traffic within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.errors import ErrorCode, GatewayError

log = logging.getLogger("parkgate.usage_log")

RETENTION_MINUTES = 24 * 60
MAX_THROTTLES = 1000
FLUSH_S = 2.0


@dataclass(frozen=True)
class Minute:
    at: datetime  # the minute's start
    requests: int
    cost: int


@dataclass(frozen=True)
class Throttle:
    at: datetime
    client_id: str
    refused_by: str  # "requests" or "cost"
    retry_after_s: int

    def to_json(self) -> bytes:
        return orjson.dumps({"at": self.at.isoformat(), "client": self.client_id, "by": self.refused_by,
                             "retry": self.retry_after_s})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Throttle:
        d = orjson.loads(raw)
        return cls(datetime.fromisoformat(d["at"]), d["client"], d["by"], d["retry"])


def unreadable() -> GatewayError:
    return GatewayError(ErrorCode.GATEWAY_UNAVAILABLE, "Usage history cannot be read right now; retry later.")


def minute_of(epoch_s: float) -> int:
    return int(epoch_s // 60) * 60


class UsageLog:
    def __init__(self, redis: Any = None, prefix: str = "", *, retention_minutes: int = RETENTION_MINUTES,
                 max_throttles: int = MAX_THROTTLES, flush_s: float = FLUSH_S) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention_minutes = retention_minutes
        self.max_throttles = max_throttles
        self.flush_s = flush_s
        # in memory: the log itself; with Redis: what this process saw since its last flush
        self._minutes: dict[str, dict[int, list[int]]] = defaultdict(dict)
        self._throttles: deque[Throttle] = deque(maxlen=max_throttles)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, prefix: str) -> UsageLog:
        from gateway.redis_connect import connect

        return cls(connect(url, timeout_s=2.0, connect_timeout_s=1.0), prefix)

    # ---- the request path: synchronous, no I/O --------------------------------------------------
    def note(self, client_id: str, *, requests: int, cost: int) -> None:
        minutes = self._minutes[client_id]
        minute = minute_of(time.time())
        bucket = minutes.get(minute)
        if bucket is None:  # the client's first request this minute: the only time old minutes can go
            bucket = minutes[minute] = [0, 0]
            if self.redis is None and len(minutes) > self.retention_minutes:
                for old in sorted(minutes)[:len(minutes) - self.retention_minutes]:
                    del minutes[old]
        bucket[0] += requests
        bucket[1] += cost

    def throttled(self, client_id: str, refused_by: str, retry_after_s: int) -> None:
        self._throttles.append(Throttle(datetime.now(UTC), client_id, refused_by, retry_after_s))

    # ---- Redis: writing what this process saw --------------------------------------------------
    def _key(self, client_id: str, minute: int) -> str:
        return f"{self.prefix}usage:{{{client_id}}}:{minute}"  # a client's minutes share a slot

    async def flush(self) -> None:
        if self.redis is None or not (self._minutes or self._throttles):
            return
        minutes, self._minutes = self._minutes, defaultdict(dict)
        throttles = list(self._throttles)
        self._throttles.clear()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for client_id, buckets in minutes.items():
                    for minute, (requests, cost) in buckets.items():
                        key = self._key(client_id, minute)
                        pipe.hincrby(key, "requests", requests)
                        pipe.hincrby(key, "cost", cost)
                        pipe.expire(key, self.retention_minutes * 60)
                if throttles:
                    pipe.lpush(f"{self.prefix}usage:throttles", *(t.to_json() for t in throttles))
                    pipe.ltrim(f"{self.prefix}usage:throttles", 0, self.max_throttles - 1)
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the store is down: this history is lost, requests are not
            log.warning("usage history not written (%s: %s)", type(exc).__name__, exc)

    def start(self) -> None:
        if self.redis is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            await self.flush()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self.redis is not None:
            await self.redis.aclose()

    # ---- the admin API ---------------------------------------------------------------------------
    async def minutes(self, client_id: str, count: int) -> list[Minute]:
        """The last `count` minutes, the current one last; minutes without traffic count zero."""
        now = minute_of(time.time())
        starts = [now - 60 * i for i in range(count - 1, -1, -1)]
        if self.redis is None:
            buckets = self._minutes.get(client_id, {})
            values = [buckets.get(start, [0, 0]) for start in starts]
        else:
            await self.flush()
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for start in starts:
                        pipe.hmget(self._key(client_id, start), "requests", "cost")
                    replies = await pipe.execute()
            except Exception as exc:  # any driver error means the same: the store is unreachable
                raise unreadable() from exc
            values = [[int(r or 0), int(c or 0)] for r, c in replies]
        return [Minute(datetime.fromtimestamp(start, UTC), requests, cost) for start, (requests, cost) in zip(starts, values, strict=True)]

    async def throttles(self, first: int, client_id: str | None = None) -> list[Throttle]:
        """The latest 429s, newest first; only `client_id`'s when given."""
        if self.redis is None:
            found = list(reversed(self._throttles))
        else:
            await self.flush()
            try:
                raws = await self.redis.lrange(f"{self.prefix}usage:throttles", 0, -1)
            except Exception as exc:  # any driver error means the same: the store is unreachable
                raise unreadable() from exc
            found = [Throttle.from_json(raw) for raw in raws]
        return [t for t in found if client_id is None or t.client_id == client_id][:first]
