"""Occupancy over time: every facility-level figure a system reported, kept for a while, bounded.

    await history.record(facility_id, sample)              # the event path, per OCCUPANCY_CHANGED
    samples, before = await history.read(facility_id, start, end)

Fed by the bus (gateway/events/occupancy_recorder.py), so webhooks and polls feed it alike, and read
by `Facility.occupancyHistory` (resolvers/occupancy_history.py), which buckets it for charts. Each
facility keeps at most `max_samples` samples and none older than `retention_s`: a noisy sensor cannot
grow it without bound. In memory by default (one process); in Redis when the store is Redis, one
sorted set per facility scored by the time of the figure. Every replica records every event it
sees on the Redis bus: a sample's member is its event id and figure, so the same event recorded
twice is one member.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from gateway.errors import ErrorCode, GatewayError

DEFAULT_RETENTION_S = 48 * 3600  # a day's curve in every time zone, and yesterday's beside it
DEFAULT_MAX_SAMPLES = 20_000  # per facility: a figure every 10 s for two days, a little more


@dataclass(frozen=True, order=True)
class Sample:
    """One system's figure for a facility at one moment."""

    at: datetime  # the vendor's time of the figure (the gateway's receipt when the vendor gave none)
    event_id: str
    source: str  # the system that reported it
    occupied: int | None
    free: int | None
    capacity: int | None

    def to_json(self) -> bytes:
        return orjson.dumps({"at": self.at.isoformat(), "id": self.event_id, "source": self.source,
                             "occupied": self.occupied, "free": self.free, "capacity": self.capacity})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Sample:
        data = orjson.loads(raw)
        return cls(at=datetime.fromisoformat(data["at"]), event_id=data["id"], source=data["source"],
                   occupied=data["occupied"], free=data["free"], capacity=data["capacity"])


class OccupancyHistory(Protocol):
    async def record(self, facility_id: str, sample: Sample) -> None: ...

    async def read(self, facility_id: str, start: datetime, end: datetime) -> tuple[list[Sample], list[Sample]]:
        """(samples from `start` to `end`, in time order; the latest sample of each source before `start`)."""
        ...

    async def aclose(self) -> None: ...


def latest_per_source(samples: list[Sample]) -> list[Sample]:
    last: dict[str, Sample] = {}
    for sample in samples:
        last[sample.source] = sample
    return list(last.values())


class MemoryHistory:
    def __init__(self, retention_s: float = DEFAULT_RETENTION_S, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        self.retention = timedelta(seconds=retention_s)
        self.max_samples = max_samples
        self._samples: dict[str, list[Sample]] = defaultdict(list)

    async def record(self, facility_id: str, sample: Sample) -> None:
        samples = self._samples[facility_id]
        if sample in samples[-8:]:  # the same event seen again (a redelivery)
            return
        bisect.insort(samples, sample)  # figures arrive nearly in order: this is an append, mostly
        horizon = datetime.now(UTC) - self.retention
        cut = max(bisect.bisect_left(samples, horizon, key=lambda s: s.at), len(samples) - self.max_samples)
        if cut > 0:
            del samples[:cut]

    async def read(self, facility_id: str, start: datetime, end: datetime) -> tuple[list[Sample], list[Sample]]:
        samples = self._samples.get(facility_id, [])
        first = bisect.bisect_left(samples, start, key=lambda s: s.at)
        last = bisect.bisect_right(samples, end, key=lambda s: s.at)
        return samples[first:last], latest_per_source(samples[:first])

    async def aclose(self) -> None:
        pass


class RedisHistory:
    """One sorted set per facility under `<prefix>occupancy:history:<facility id>`, each written and
    read alone (no hash tag needed: on a cluster the facilities spread over the nodes)."""

    def __init__(self, client: Any, prefix: str, retention_s: float = DEFAULT_RETENTION_S,
                 max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        self.client = client
        self.prefix = prefix
        self.retention_s = retention_s
        self.max_samples = max_samples

    @classmethod
    def from_url(cls, url: str, prefix: str, retention_s: float, max_samples: int) -> RedisHistory:
        from gateway.redis_connect import connect

        return cls(connect(url, timeout_s=2.0, connect_timeout_s=1.0), prefix, retention_s, max_samples)

    def _key(self, facility_id: str) -> str:
        return f"{self.prefix}occupancy:history:{facility_id}"

    async def record(self, facility_id: str, sample: Sample) -> None:
        key = self._key(facility_id)
        horizon = datetime.now(UTC).timestamp() - self.retention_s
        async with self.client.pipeline(transaction=False) as pipe:  # one key; no atomicity needed (cluster-safe)
            pipe.zadd(key, {sample.to_json(): sample.at.timestamp()})
            pipe.zremrangebyscore(key, "-inf", horizon)
            pipe.zremrangebyrank(key, 0, -(self.max_samples + 1))  # the oldest beyond the bound
            pipe.expire(key, int(self.retention_s))
            await pipe.execute()

    async def read(self, facility_id: str, start: datetime, end: datetime) -> tuple[list[Sample], list[Sample]]:
        key = self._key(facility_id)
        try:
            inside = await self.client.zrangebyscore(key, start.timestamp(), end.timestamp())
            # the figure each source showed when the range began: the latest few before it suffice
            before = await self.client.zrevrangebyscore(key, f"({start.timestamp()}", "-inf", start=0, num=32)
        except Exception as exc:
            raise GatewayError(ErrorCode.GATEWAY_UNAVAILABLE, "The occupancy history cannot be read right now; "
                                                              "retry later.") from exc
        return [Sample.from_json(raw) for raw in inside], latest_per_source(sorted(Sample.from_json(raw) for raw in before))

    async def aclose(self) -> None:
        await self.client.aclose()
