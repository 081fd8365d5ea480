"""Outbound webhook endpoints and their deliveries: in memory, or in Redis (durable, shared).

A delivery waiting to be sent sits in a schedule ordered by when it is next due (a Redis sorted
set). A worker *claims* due deliveries by pushing their time forward by a lease, atomically, so
that two replicas never send the same attempt at once, and a worker that dies mid-send leaves
the delivery due again once the lease runs out: a restarted gateway resumes every pending one.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from gateway.redis_replies import text

#: the delivery log keeps this many deliveries per endpoint (newest)
LOG_LIMIT = 1000
#: a finished delivery's record is kept this long in Redis
FINISHED_TTL_S = 14 * 86_400
#: the hash tag of every key of the Redis store (scripts and transactions span them)
TAG = "{wh}"


class EndpointStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Endpoint:
    id: str
    client_id: str
    url: str
    event_types: frozenset[str]
    #: `whsec_<base64>`; shown to the partner once, at registration
    secret: str
    created_at: datetime
    status: EndpointStatus = EndpointStatus.ACTIVE
    #: consecutive deliveries that failed for good; reset by a success
    failure_count: int = 0
    disabled_at: datetime | None = None
    disabled_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["event_types"] = sorted(self.event_types)
        data["created_at"] = _iso(self.created_at)
        data["disabled_at"] = _iso(self.disabled_at)
        return data

    def public(self) -> dict[str, Any]:
        """For the audit log: never the secret."""
        return {k: v for k, v in self.to_dict().items() if k != "secret"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoint:
        return cls(
            id=data["id"], client_id=data["client_id"], url=data["url"], event_types=frozenset(data["event_types"]),
            secret=data["secret"], created_at=datetime.fromisoformat(data["created_at"]),
            status=EndpointStatus(data.get("status", "ACTIVE")), failure_count=int(data.get("failure_count", 0)),
            disabled_at=_dt(data.get("disabled_at")), disabled_reason=data.get("disabled_reason"),
        )

    def with_changes(self, **changes: Any) -> Endpoint:
        return replace(self, **changes)


@dataclass(frozen=True)
class Delivery:
    #: also the `webhook-id` header: the same on every attempt, so the partner can deduplicate
    id: str
    endpoint_id: str
    client_id: str
    event_id: str
    event_type: str
    #: the exact JSON body, fixed when the delivery is made (what the client may see, masked)
    body: str
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    status: DeliveryStatus = DeliveryStatus.PENDING
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    #: the trace of the request behind the event, when traced: each attempt's `traceparent` continues it
    traceparent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("created_at", "next_attempt_at", "last_attempt_at", "delivered_at"):
            data[name] = _iso(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delivery:
        return cls(
            id=data["id"], endpoint_id=data["endpoint_id"], client_id=data["client_id"], event_id=data["event_id"],
            event_type=data["event_type"], body=data["body"], created_at=datetime.fromisoformat(data["created_at"]),
            attempts=int(data.get("attempts", 0)), next_attempt_at=_dt(data.get("next_attempt_at")),
            status=DeliveryStatus(data.get("status", "PENDING")), last_status_code=data.get("last_status_code"),
            last_error=data.get("last_error"), last_attempt_at=_dt(data.get("last_attempt_at")),
            delivered_at=_dt(data.get("delivered_at")), traceparent=data.get("traceparent"),
        )

    def with_changes(self, **changes: Any) -> Delivery:
        return replace(self, **changes)

    @property
    def finished(self) -> bool:
        return self.status is not DeliveryStatus.PENDING


class WebhookStore(ABC):
    @abstractmethod
    async def save_endpoint(self, endpoint: Endpoint) -> None: ...

    @abstractmethod
    async def endpoint(self, endpoint_id: str) -> Endpoint | None: ...

    @abstractmethod
    async def endpoints(self, client_id: str | None = None) -> list[Endpoint]:
        """Oldest first; every client's when `client_id` is None."""

    @abstractmethod
    async def create_delivery(self, delivery: Delivery, due: float) -> bool:
        """Store a new delivery and schedule it at `due` (epoch seconds); False when one with
        this id exists (another replica saw the same event first)."""

    @abstractmethod
    async def save_delivery(self, delivery: Delivery, due: float | None) -> None:
        """Update a delivery; reschedule it at `due`, or take it off the schedule when None."""

    @abstractmethod
    async def delivery(self, delivery_id: str) -> Delivery | None: ...

    @abstractmethod
    async def deliveries(self, endpoint_id: str, first: int) -> list[Delivery]:
        """The endpoint's delivery log, newest first."""

    @abstractmethod
    async def claim_due(self, now: float, lease_s: float, limit: int) -> list[str]:
        """Ids of deliveries due by `now`, each pushed to `now + lease_s` in the same step."""

    async def aclose(self) -> None:
        pass


@dataclass
class MemoryWebhookStore(WebhookStore):
    _endpoints: dict[str, Endpoint] = field(default_factory=dict)
    _deliveries: dict[str, Delivery] = field(default_factory=dict)
    _log: dict[str, list[str]] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)

    async def save_endpoint(self, endpoint: Endpoint) -> None:
        self._endpoints[endpoint.id] = endpoint

    async def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self._endpoints.get(endpoint_id)

    async def endpoints(self, client_id: str | None = None) -> list[Endpoint]:
        found = [e for e in self._endpoints.values() if client_id is None or e.client_id == client_id]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    async def create_delivery(self, delivery: Delivery, due: float) -> bool:
        if delivery.id in self._deliveries:
            return False
        self._deliveries[delivery.id] = delivery
        log = self._log.setdefault(delivery.endpoint_id, [])
        log.insert(0, delivery.id)
        for dropped in log[LOG_LIMIT:]:
            if self._deliveries.get(dropped, delivery).finished:
                self._deliveries.pop(dropped, None)
        del log[LOG_LIMIT:]
        self._due[delivery.id] = due
        return True

    async def save_delivery(self, delivery: Delivery, due: float | None) -> None:
        self._deliveries[delivery.id] = delivery
        if due is None:
            self._due.pop(delivery.id, None)
        else:
            self._due[delivery.id] = due

    async def delivery(self, delivery_id: str) -> Delivery | None:
        return self._deliveries.get(delivery_id)

    async def deliveries(self, endpoint_id: str, first: int) -> list[Delivery]:
        ids = self._log.get(endpoint_id, [])[:first]
        return [self._deliveries[i] for i in ids if i in self._deliveries]

    async def claim_due(self, now: float, lease_s: float, limit: int) -> list[str]:
        due = sorted((at, i) for i, at in self._due.items() if at <= now)[:limit]
        for _, delivery_id in due:
            self._due[delivery_id] = now + lease_s
        return [i for _, i in due]


_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""

_CREATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1
"""


class RedisWebhookStore(WebhookStore):
    """Keys under `<prefix>{wh}:`: endpoint:<id> (JSON), endpoints (set of ids), delivery:<id> (JSON),
    log:<endpoint id> (list, newest first, capped), due (sorted set: delivery id by next attempt).
    `{wh}` is a hash tag: a delivery, its endpoint's log and the schedule change in one script or
    transaction, so on a Redis Cluster they all live in one slot. (Before the tag the prefix was
    `<prefix>wh:`; gateway/redis_layout.py renames such keys once.)"""

    def __init__(self, redis: Any, prefix: str = "parkgate:") -> None:
        self.redis = redis
        self.prefix = f"{prefix}{TAG}:"
        self._claim = redis.register_script(_CLAIM)
        self._create = redis.register_script(_CREATE)

    @classmethod
    def from_url(cls, url: str, prefix: str = "parkgate:", **kwargs: Any) -> RedisWebhookStore:
        from gateway.redis_connect import connect

        kwargs.setdefault("timeout_s", 2.0)
        return cls(connect(url, **kwargs), prefix)

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def save_endpoint(self, endpoint: Endpoint) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._k("endpoint", endpoint.id), orjson.dumps(endpoint.to_dict()))
            pipe.sadd(self._k("endpoints"), endpoint.id)
            await pipe.execute()

    async def endpoint(self, endpoint_id: str) -> Endpoint | None:
        raw = await self.redis.get(self._k("endpoint", endpoint_id))
        return Endpoint.from_dict(orjson.loads(raw)) if raw else None

    async def endpoints(self, client_id: str | None = None) -> list[Endpoint]:
        ids = sorted(text(i) for i in await self.redis.smembers(self._k("endpoints")))
        if not ids:
            return []
        raws = await self.redis.mget([self._k("endpoint", i) for i in ids])
        found = [Endpoint.from_dict(orjson.loads(raw)) for raw in raws if raw]
        found = [e for e in found if client_id is None or e.client_id == client_id]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    async def create_delivery(self, delivery: Delivery, due: float) -> bool:
        created = await self._create(
            keys=[self._k("delivery", delivery.id), self._k("log", delivery.endpoint_id), self._k("due")],
            args=[orjson.dumps(delivery.to_dict()), delivery.id, due, LOG_LIMIT],
        )
        return bool(created)

    async def save_delivery(self, delivery: Delivery, due: float | None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            key = self._k("delivery", delivery.id)
            if due is None:
                pipe.set(key, orjson.dumps(delivery.to_dict()), ex=FINISHED_TTL_S)
                pipe.zrem(self._k("due"), delivery.id)
            else:
                pipe.set(key, orjson.dumps(delivery.to_dict()))
                pipe.zadd(self._k("due"), {delivery.id: due})
            await pipe.execute()

    async def delivery(self, delivery_id: str) -> Delivery | None:
        raw = await self.redis.get(self._k("delivery", delivery_id))
        return Delivery.from_dict(orjson.loads(raw)) if raw else None

    async def deliveries(self, endpoint_id: str, first: int) -> list[Delivery]:
        ids = [text(i) for i in await self.redis.lrange(self._k("log", endpoint_id), 0, first - 1)]
        if not ids:
            return []
        raws = await self.redis.mget([self._k("delivery", i) for i in ids])
        return [Delivery.from_dict(orjson.loads(raw)) for raw in raws if raw]

    async def claim_due(self, now: float, lease_s: float, limit: int) -> list[str]:
        ids = await self._claim(keys=[self._k("due")], args=[now, now + lease_s, limit])
        return [text(i) for i in ids]

    async def aclose(self) -> None:
        await self.redis.aclose()


def now_epoch() -> float:
    return time.time()


def epoch_to_dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
