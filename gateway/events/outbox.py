"""Events published while the bus's store does not answer: kept in the process, handed on in order.

A Redis restart or failover takes a second or two. An event published then (a reservation just made
at the vendor, a webhook event the processor took before Redis went away) must not turn into an
error for work already done, nor be dropped: it waits here, and one task hands the waiting events to
the store in the order they were published, as soon as it answers again. While anything waits, new
events queue behind it, so the order on the bus stays the order of publishing.

Bounded: past `limit` waiting events, `publish` raises the store's error as it did before (the
caller answers 503 or, for the webhook processor, takes the event again later). Kept in memory only:
a process that stops while its store is away loses what waits (logged at close).

An event whose id is waiting, or was handed on from here recently, is not published twice: the
webhook processor publishes an inbox item again when it could not ack it while the store was away.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable

from adapters.models import DomainEvent
from gateway.errors import STORE_ERRORS

log = logging.getLogger("parkgate.events.outbox")

#: events that may wait for the store at once
OUTBOX_LIMIT = 10_000
#: ids of events handed on from the outbox, remembered to drop a second publication of the same event
REMEMBERED_IDS = 10_000
FLUSH_RETRY_S = 0.2

Send = Callable[[DomainEvent], Awaitable[None]]


class Outbox:
    def __init__(self, send: Send, *, limit: int = OUTBOX_LIMIT) -> None:
        self.send = send
        self.limit = limit
        self.waiting: deque[DomainEvent] = deque()
        #: ids waiting or handed on from here (oldest first, bounded)
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._flusher: asyncio.Task[None] | None = None
        #: events that had to wait, since start
        self.kept = 0

    async def publish(self, event: DomainEvent) -> None:
        """Sends `event` now, or keeps it for the flusher when the store does not answer (or others wait)."""
        if event.id in self._ids:
            return  # already waiting, or handed on from here: the same event published again
        if not self.waiting:
            try:
                await self.send(event)
                return
            except STORE_ERRORS as exc:
                if self.limit <= 0:
                    raise
                log.warning("event bus: the store does not answer (%s); keeping events until it does", exc)
        if len(self.waiting) >= self.limit:
            raise ConnectionError(f"the event bus's store does not answer and {self.limit} events wait already")
        self.waiting.append(event)
        self._remember(event.id)
        self.kept += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="event-bus-outbox")

    async def _flush(self) -> None:
        while self.waiting:
            try:
                await self.send(self.waiting[0])
            except STORE_ERRORS:
                await asyncio.sleep(FLUSH_RETRY_S)
                continue
            except Exception:  # not the store being away: this event will never go; the rest still may
                log.exception("event bus: event %s could not be published; dropped", self.waiting[0].id)
            self.waiting.popleft()
        log.warning("event bus: the store answers again; the events kept meanwhile are published")

    def _remember(self, event_id: str) -> None:
        self._ids[event_id] = None
        while len(self._ids) > REMEMBERED_IDS:
            self._ids.popitem(last=False)

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self.waiting:
            log.warning("event bus: %d events kept for the store are lost at close", len(self.waiting))
