"""A worker on the event path that reads every event of the bus in the background and acts on the
ones it wants (guest validations, the occupancy history): subscribed at `start`, so nothing published
after it is missed; cancelled at `stop`."""

from __future__ import annotations

import asyncio

from adapters.models import DomainEvent
from gateway.events.bus import BusSubscription
from gateway.runtime import Runtime


class BusConsumer:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._task: asyncio.Task[None] | None = None

    def wants(self, event: DomainEvent) -> bool:
        raise NotImplementedError

    async def handle(self, event: DomainEvent) -> None:
        raise NotImplementedError

    def start(self) -> None:
        subscription = self.runtime.bus.subscribe()  # registered now, not when the task first runs
        self._task = asyncio.get_running_loop().create_task(self._run(subscription))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, subscription: BusSubscription) -> None:
        try:
            async for event in subscription:
                if self.wants(event):
                    await self.handle(event)
        finally:
            await subscription.aclose()
