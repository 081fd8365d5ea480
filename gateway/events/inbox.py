"""The webhook inbox: where an inbound event is durably accepted before the vendor hears 202.

`accept` does two things at once (atomically: one lock in memory, one Lua script in Redis):
it checks the event against what this system already sent under the same vendor event id,
and, unless it is a duplicate, appends it to the inbox for the processor. Dedupe compares a
hash of the event's content (type, facility, zone, payload; not its time):
    new id                          -> revision 1, queued       ("accepted")
    same id, same content           -> nothing queued           ("duplicate")
    same id, different content      -> revision n + 1, queued   ("corrected")
`claim` is the same check without queueing, for events only known after expansion (ids-only
webhooks). Memory by default; a Redis Stream (consumer group, acked after processing) when
the store is Redis, so an accepted event survives a restart.

Keys in Redis: `<prefix>{webhooks}:inbox` (the stream) and `<prefix>{webhooks}:seen:<system>:<id
hash>` (what a vendor event id last carried, 7 days). The accepting script touches a `seen` key and
the stream at once, so they share the hash tag `{webhooks}`: one slot of a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from redis.exceptions import ResponseError

from adapters.models import EventType, VendorEvent
from gateway.redis_connect import confirmed, connect, replicas_to_confirm

SEEN_LIMIT = 200_000  # ids remembered in memory
SEEN_TTL_S = 7 * 24 * 3600  # and in Redis: vendors re-send within hours, not weeks
STREAM_MAXLEN = 100_000
#: how often a Redis inbox looks again for items taken and never acked
PENDING_CHECK_S = 30.0
#: the hash tag of the inbox's keys (one script dedupes and appends)
TAG = "{webhooks}"


class InboxOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CORRECTED = "corrected"


@dataclass(frozen=True)
class InboxItem:
    system_id: str
    event: VendorEvent  # revision set by dedupe
    received_at: datetime
    ref: str = ""  # the backend's handle, for `ack`


def content_hash(event: VendorEvent) -> str:
    content = {"type": event.type.value, "facility": event.vendor_facility_id, "zone": event.zone_id,
               "payload": event.payload}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def encode(item: InboxItem) -> bytes:
    e = item.event
    return orjson.dumps({
        "system_id": item.system_id, "received_at": item.received_at.isoformat(), "type": e.type.value,
        "vendor_event_id": e.vendor_event_id, "vendor_facility_id": e.vendor_facility_id,
        "occurred_at": e.occurred_at.isoformat() if e.occurred_at else None, "payload": e.payload,
        "zone_id": e.zone_id, "revision": e.revision,
    })


def decode(raw: bytes | str, ref: str) -> InboxItem:
    d: dict[str, Any] = orjson.loads(raw)
    event = VendorEvent(EventType(d["type"]), d["vendor_event_id"], d["vendor_facility_id"],
                        datetime.fromisoformat(d["occurred_at"]) if d["occurred_at"] else None,
                        d["payload"], d["zone_id"], d["revision"])
    return InboxItem(d["system_id"], event, datetime.fromisoformat(d["received_at"]), ref)


class Inbox:
    async def accept(self, item: InboxItem, *, dedupe: bool = True) -> tuple[InboxOutcome, int]:
        """Dedupe and queue, at once; `dedupe=False` queues as is (ids-only webhooks dedupe once expanded)."""
        raise NotImplementedError

    async def claim(self, system_id: str, event: VendorEvent) -> tuple[InboxOutcome, int]:
        raise NotImplementedError

    async def take(self) -> list[InboxItem]:
        """The next items (waits up to a second); each is acked once processed."""
        raise NotImplementedError

    async def ack(self, item: InboxItem) -> None:
        pass

    def redeliver(self) -> None:
        """The next `take` hands out again what was taken and not acked (the store failed meanwhile)."""

    async def aclose(self) -> None:
        pass


class MemoryInbox(Inbox):
    def __init__(self) -> None:
        self.seen: OrderedDict[tuple[str, str], tuple[str, int]] = OrderedDict()
        self.queue: asyncio.Queue[InboxItem] = asyncio.Queue()
        self.accepted = 0  # items ever queued (tests)

    def _check(self, system_id: str, event: VendorEvent) -> tuple[InboxOutcome, int]:
        key, digest = (system_id, event.vendor_event_id), content_hash(event)
        previous = self.seen.get(key)
        if previous is not None and previous[0] == digest:
            return InboxOutcome.DUPLICATE, previous[1]
        revision = 1 if previous is None else previous[1] + 1
        self.seen[key] = (digest, revision)
        self.seen.move_to_end(key)
        if len(self.seen) > SEEN_LIMIT:
            self.seen.popitem(last=False)
        return (InboxOutcome.ACCEPTED if revision == 1 else InboxOutcome.CORRECTED), revision

    async def accept(self, item: InboxItem, *, dedupe: bool = True) -> tuple[InboxOutcome, int]:
        outcome, revision = self._check(item.system_id, item.event) if dedupe else (InboxOutcome.ACCEPTED, 1)
        if outcome is not InboxOutcome.DUPLICATE:
            self.queue.put_nowait(replace(item, event=replace(item.event, revision=revision)))
            self.accepted += 1
        return outcome, revision

    async def claim(self, system_id: str, event: VendorEvent) -> tuple[InboxOutcome, int]:
        return self._check(system_id, event)

    async def take(self) -> list[InboxItem]:
        try:
            first = await asyncio.wait_for(self.queue.get(), timeout=1.0)
        except TimeoutError:
            return []
        items = [first]
        while not self.queue.empty() and len(items) < 100:
            items.append(self.queue.get_nowait())
        return items


# KEYS: seen key, stream; ARGV: content hash, ttl, encoded item ('' = claim only)
_ACCEPT = """
local current = redis.call('GET', KEYS[1])
local revision = 1
if current then
  local digest, seen = string.match(current, '^(%w+):(%d+)$')
  if digest == ARGV[1] then return {0, tonumber(seen)} end
  revision = tonumber(seen) + 1
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. revision, 'EX', tonumber(ARGV[2]))
if ARGV[3] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[4]), '*', 'item', ARGV[3], 'revision', revision)
end
return {1, revision}
"""


class RedisInbox(Inbox):
    GROUP = "processors"

    def __init__(self, redis: Any, prefix: str, replicas: int = 0) -> None:
        self.redis = redis
        self.prefix = prefix
        #: replicas that hold an accepted event before the vendor hears 202 (Sentinel: gateway/redis_connect.py)
        self.replicas = replicas
        self._pending_checked = time.monotonic()
        self.stream = f"{prefix}{TAG}:inbox"
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._script = redis.register_script(_ACCEPT)
        self._group_ready = False
        self._pending_first = True

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisInbox:
        # the blocking read waits up to a second (`take`): replies are awaited longer than that
        return cls(connect(url, timeout_s=3.0, connect_timeout_s=1.0), prefix, replicas_to_confirm(url))

    def _seen_key(self, system_id: str, event: VendorEvent) -> str:
        vid = hashlib.sha256(event.vendor_event_id.encode()).hexdigest()[:32]
        return f"{self.prefix}{TAG}:seen:{system_id}:{vid}"

    async def _run(self, system_id: str, event: VendorEvent, item: bytes) -> tuple[InboxOutcome, int]:
        fresh, revision = await confirmed(self.redis, self.replicas, lambda pipe: self._script(
            keys=[self._seen_key(system_id, event), self.stream],
            args=[content_hash(event), SEEN_TTL_S, item, STREAM_MAXLEN], client=pipe))
        if not fresh:
            return InboxOutcome.DUPLICATE, int(revision)
        return (InboxOutcome.ACCEPTED if int(revision) == 1 else InboxOutcome.CORRECTED), int(revision)

    async def accept(self, item: InboxItem, *, dedupe: bool = True) -> tuple[InboxOutcome, int]:
        if not dedupe:
            await confirmed(self.redis, self.replicas, lambda pipe: pipe.xadd(
                self.stream, {"item": encode(item), "revision": 1}, maxlen=STREAM_MAXLEN, approximate=True))
            return InboxOutcome.ACCEPTED, 1
        return await self._run(item.system_id, item.event, encode(item))

    async def claim(self, system_id: str, event: VendorEvent) -> tuple[InboxOutcome, int]:
        return await self._run(system_id, event, b"")

    async def take(self) -> list[InboxItem]:
        if not self._group_ready:
            try:
                await self.redis.xgroup_create(self.stream, self.GROUP, id="0", mkstream=True)
            except ResponseError as exc:  # BUSYGROUP: it exists already
                if "BUSYGROUP" not in str(exc):
                    raise
            self._group_ready = True
        try:
            return await self._take()
        except ResponseError as exc:  # NOGROUP: the stream went (a Redis restarted empty): make it again
            if "NOGROUP" in str(exc):
                self._group_ready = False
            raise

    async def _take(self) -> list[InboxItem]:
        # First what this consumer took and never acked (a crash, a failed store), then what others
        # left idle, then new; and again every PENDING_CHECK_S (an ack that a failover took back
        # leaves its item pending on the new master).
        if time.monotonic() - self._pending_checked > PENDING_CHECK_S:
            self._pending_first = True
        if self._pending_first:
            self._pending_checked = time.monotonic()
            claimed = await self.redis.xautoclaim(self.stream, self.GROUP, self.consumer, min_idle_time=60_000,
                                                  start_id="0-0", count=100)
            entries = claimed[1] if claimed else []
            pending = await self.redis.xreadgroup(self.GROUP, self.consumer, {self.stream: "0"}, count=100)
            entries = list(entries) + [e for _, batch in pending for e in batch]
            self._pending_first = False
            if entries:
                return self._items(entries)
        answer = await self.redis.xreadgroup(self.GROUP, self.consumer, {self.stream: ">"}, count=100, block=1000)
        return self._items([e for _, batch in answer or [] for e in batch])

    def _items(self, entries: list[Any]) -> list[InboxItem]:
        items = []
        for ref, fields in entries:
            if not fields:
                continue
            fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
            item = decode(fields["item"], ref.decode() if isinstance(ref, bytes) else ref)
            items.append(replace(item, event=replace(item.event, revision=int(fields["revision"]))))
        return items

    async def ack(self, item: InboxItem) -> None:
        await self.redis.xack(self.stream, self.GROUP, item.ref)

    def redeliver(self) -> None:
        self._pending_first = True

    async def aclose(self) -> None:
        await self.redis.aclose()


def build_inbox(config: Any) -> Inbox:
    store = config.store
    if store.backend == "redis" and store.redis_url:
        return RedisInbox.from_url(store.redis_url, store.prefix)
    return MemoryInbox()
