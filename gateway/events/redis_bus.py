"""The event bus on Redis Streams: every replica sees every event, a restarted one resumes.

    publish     XADD <prefix>events (MAXLEN ~ 100k) one field `e`: the DomainEvent as JSON; while
                Redis does not answer (a restart, a failover), events wait in the process's outbox
                and are added in order once it does (gateway/events/outbox.py)
    read        one task per replica: XREAD BLOCK from the last id it handed out, then the
                local fanout (the same `subscribe()` as the memory bus)
    resume      that last id is kept under <prefix>events:cursor:<replica id>; a replica that
                starts again under the same id carries on from there (what was published while it
                was away included, as far as MAXLEN kept it); a new replica starts at the end

Each command touches one key (the stream, or one cursor), so on a Redis Cluster the stream lives on
its slot's node and the blocking XREAD goes there; cursors spread over the nodes.

The replica id is `events.replica_id`, else the host name (plus PARKGATE_PORT / PORT when set):
stable across a restart of the same replica, different between replicas.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import datetime
from typing import Any

import orjson

from adapters.models import DomainEvent, EventType
from gateway.events.bus import BusSubscription, EventBus, LocalFanout
from gateway.events.outbox import Outbox
from gateway.redis_connect import REDIS_FAILURES, confirmed, connect, replicas_to_confirm
from gateway.redis_replies import text

log = logging.getLogger("parkgate.events.redis")

STREAM_MAXLEN = 100_000
#: a replica id not seen for this long is forgotten (its cursor would point into trimmed history anyway)
CURSOR_TTL_S = 7 * 86_400
BLOCK_MS = 1_000
READ_COUNT = 200


def replica_id_of(config: Any) -> str:
    """`events.replica_id`, else host name[:port]: the same after a restart, unique per replica."""
    events = getattr(config, "events", None)
    if events is not None and events.replica_id:
        return str(events.replica_id)
    port = os.environ.get("PARKGATE_PORT") or os.environ.get("PORT")
    host = socket.gethostname()
    return f"{host}:{port}" if port else host


def encode_event(event: DomainEvent) -> bytes:
    return orjson.dumps({
        "id": event.id,
        "type": event.type.value,
        "system_id": event.system_id,
        "facility_id": event.facility_id,
        "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
        "received_at": event.received_at.isoformat(),
        "vendor_event_id": event.vendor_event_id,
        "payload": event.payload,  # orjson: datetimes as ISO strings, enums by value
        "zone_id": event.zone_id,
        "revision": event.revision,
        "traceparent": event.traceparent,
    })


def decode_event(raw: bytes | str) -> DomainEvent:
    data = orjson.loads(raw)
    return DomainEvent(
        id=data["id"],
        type=EventType(data["type"]),
        system_id=data["system_id"],
        facility_id=data.get("facility_id"),
        occurred_at=datetime.fromisoformat(data["occurred_at"]) if data.get("occurred_at") else None,
        received_at=datetime.fromisoformat(data["received_at"]),
        vendor_event_id=data["vendor_event_id"],
        payload=data.get("payload") or {},
        zone_id=data.get("zone_id"),
        revision=int(data.get("revision", 1)),
        traceparent=data.get("traceparent"),
    )


class RedisStreamBus(EventBus):
    def __init__(self, redis_url: str, *, prefix: str = "parkgate:", replica_id: str,
                 maxlen: int = STREAM_MAXLEN, block_ms: int = BLOCK_MS) -> None:
        self.stream = f"{prefix}events"
        self.cursor_key = f"{prefix}events:cursor:{replica_id}"
        self.replica_id = replica_id
        self.maxlen = maxlen
        self.block_ms = block_ms
        self.fanout = LocalFanout()
        # publishing must fail fast when Redis is gone; the reader waits up to block_ms on purpose
        self._writer = connect(redis_url, timeout_s=2.0, connect_timeout_s=2.0)
        #: replicas that hold an event before `publish` returns (Sentinel: it survives a failover)
        self.replicas = replicas_to_confirm(redis_url)
        self._reader = connect(redis_url, timeout_s=block_ms / 1000 + 5, connect_timeout_s=2.0)
        self.outbox = Outbox(self._add)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: the id of the last event handed to local subscribers
        self.last_id: str | None = None

    @classmethod
    def from_config(cls, config: Any) -> RedisStreamBus:
        return cls(config.store.redis_url, prefix=config.store.prefix, replica_id=replica_id_of(config))

    async def publish(self, event: DomainEvent) -> None:
        await self.outbox.publish(event)

    async def _add(self, event: DomainEvent) -> None:
        await confirmed(self._writer, self.replicas, lambda pipe: pipe.xadd(
            self.stream, {"e": encode_event(event)}, maxlen=self.maxlen, approximate=True))

    def subscribe(self) -> BusSubscription:
        return self.fanout.stream()

    async def start(self) -> None:
        if self._task is not None:
            return
        saved = await self._reader.get(self.cursor_key)
        if saved is not None:
            self.last_id = text(saved)
        else:
            # A new replica starts at the end: the concrete id of the newest entry rather than `$`,
            # so nothing published between now and the first XREAD is missed.
            newest = await self._reader.xrevrange(self.stream, count=1)
            newest_id = newest[0][0] if newest else None
            self.last_id = text(newest_id) if newest_id is not None else "0-0"
            await self._save_cursor()
        self._task = asyncio.create_task(self._run(self.last_id), name=f"redis-bus-reader:{self.replica_id}")

    async def _run(self, last_id: str) -> None:
        failures = 0
        while not self._stopping:
            try:
                answer = await self._reader.xread({self.stream: last_id}, count=READ_COUNT, block=self.block_ms)
                failures = 0
            except REDIS_FAILURES as exc:  # Redis away: keep trying; the cursor says where to carry on
                failures += 1
                log.warning("event bus: reading the stream failed (%s); retrying", exc)
                await asyncio.sleep(min(0.2 * 2 ** min(failures, 5), 5.0))
                continue
            # RESP2, the protocol of this client: [[stream, [(id, {field: value}), …]]], None when nothing came
            for _stream, entries in answer if isinstance(answer, list) else []:
                for entry_id, fields in entries:
                    raw = fields.get(b"e")
                    if raw is not None:
                        try:
                            await self.fanout.paced(decode_event(raw))
                        except Exception:  # one unreadable entry must not stop the bus
                            log.exception("event bus: entry %s cannot be read; skipped", entry_id)
                    last_id = self.last_id = entry_id.decode()
            if answer:
                try:
                    await self._save_cursor()
                except REDIS_FAILURES as exc:  # saved again after the next read
                    log.warning("event bus: saving the cursor failed (%s)", exc)

    async def _save_cursor(self) -> None:
        if self.last_id is not None:
            await self._reader.set(self.cursor_key, self.last_id, ex=CURSOR_TTL_S)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            # redis-py may swallow one cancellation of a blocked XREAD: cancel until the task ends
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            try:
                await self._save_cursor()
            except REDIS_FAILURES as exc:  # a restart resumes from the last cursor saved
                log.warning("event bus: saving the cursor at close failed (%s)", exc)
        await self.outbox.aclose()
        await self._reader.aclose()
        await self._writer.aclose()
