"""The event bus: every replica sees every event.

`publish` puts a DomainEvent on the bus; `subscribe()` yields every event published after it
was called, until the iterator is closed. In memory by default (one process); Redis Streams
when configured (gateway/events/redis_bus.py), so that every replica sees every event and a
restarted replica resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from adapters.models import DomainEvent

log = logging.getLogger("parkgate.events")

SUBSCRIBER_QUEUE = 1000  # events buffered per subscriber before the slowest is dropped from


class EventBus(ABC):
    @abstractmethod
    async def publish(self, event: DomainEvent) -> None: ...

    @abstractmethod
    def subscribe(self) -> AsyncIterator[DomainEvent]:
        """Every event published from now on, in order, until the iterator is closed."""

    async def start(self) -> None:
        """Begin consuming (Redis); nothing to do in memory."""

    async def aclose(self) -> None:
        pass


class LocalFanout:
    """Hands each event to every local subscriber's queue; a subscriber too slow to keep up loses
    its oldest events (logged) rather than holding everyone else back."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[DomainEvent]] = set()

    def deliver(self, event: DomainEvent) -> None:
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
                log.warning("a subscriber is too slow: dropped its oldest event")
            queue.put_nowait(event)

    @asynccontextmanager
    async def _queue(self) -> AsyncIterator[asyncio.Queue[DomainEvent]]:
        queue: asyncio.Queue[DomainEvent] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    async def stream(self) -> AsyncIterator[DomainEvent]:
        async with self._queue() as queue:
            while True:
                yield await queue.get()

    @property
    def subscribers(self) -> int:
        return len(self._queues)


class MemoryBus(EventBus):
    def __init__(self) -> None:
        self.fanout = LocalFanout()

    async def publish(self, event: DomainEvent) -> None:
        self.fanout.deliver(event)

    def subscribe(self) -> AsyncIterator[DomainEvent]:
        return self.fanout.stream()
