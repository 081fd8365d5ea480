"""The event bus: every replica sees every event.

`publish` puts a DomainEvent on the bus; `subscribe()` yields every event published after it
was called, until the iterator is closed. In memory by default (one process); Redis Streams
when configured (gateway/events/redis_bus.py), so that every replica sees every event and a
restarted replica resumes where it stopped. Which one a gateway runs is chosen where the
runtime is built (`build_bus` in gateway/runtime.py).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from adapters.models import DomainEvent
from gateway.events.drops import Drops

log = logging.getLogger("parkgate.events")

SUBSCRIBER_QUEUE = 1000  # events buffered per subscriber before the slowest is dropped from


class EventBus(ABC):
    @abstractmethod
    async def publish(self, event: DomainEvent) -> None: ...

    @abstractmethod
    def subscribe(self) -> BusSubscription:
        """Every event published from now on, in order, until `aclose()`."""

    async def start(self) -> None:
        """Begin consuming (Redis); nothing to do in memory."""

    async def aclose(self) -> None:
        pass


class BusSubscription:
    """An async iterator of events, registered the moment it is made (nothing published after
    `subscribe()` returns is missed); `aclose()` unregisters it."""

    def __init__(self, fanout: LocalFanout) -> None:
        self._fanout = fanout
        self.queue: asyncio.Queue[DomainEvent] = asyncio.Queue(SUBSCRIBER_QUEUE)
        fanout.queues.add(self.queue)

    def __aiter__(self) -> BusSubscription:
        return self

    async def __anext__(self) -> DomainEvent:
        if self.queue not in self._fanout.queues:
            raise StopAsyncIteration
        return await self.queue.get()

    async def aclose(self) -> None:
        self._fanout.queues.discard(self.queue)


class LocalFanout:
    """Hands each event to every local subscriber's queue; a subscriber too slow to keep up loses
    its oldest events (logged) rather than holding everyone else back."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[DomainEvent]] = set()
        self.drops = Drops(log, "events")

    def deliver(self, event: DomainEvent) -> bool:
        """Put `event` in every subscriber's queue; True when one is half full or more: the publisher
        then gives the subscribers a turn of the loop (`paced`) before the next."""
        crowded = False
        for queue in list(self.queues):
            if queue.full():
                queue.get_nowait()
                self.drops.note()
            queue.put_nowait(event)
            crowded = crowded or queue.qsize() * 2 >= SUBSCRIBER_QUEUE
        return crowded

    async def paced(self, event: DomainEvent) -> None:
        """`deliver`, and a turn for the subscribers when one falls behind: a burst (a poll of thousands
        of garages publishes thousands of events at once) drains as it is published instead of
        overflowing the queues of subscribers that were never scheduled in between."""
        if self.deliver(event):
            await asyncio.sleep(0)

    def stream(self) -> BusSubscription:
        return BusSubscription(self)

    @property
    def subscribers(self) -> int:
        return len(self.queues)


class MemoryBus(EventBus):
    def __init__(self) -> None:
        self.fanout = LocalFanout()

    async def publish(self, event: DomainEvent) -> None:
        await self.fanout.paced(event)

    def subscribe(self) -> BusSubscription:
        return self.fanout.stream()
