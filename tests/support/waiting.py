"""Waiting in tests: until a condition holds, or for an event on the gateway's bus; never longer
than a bound, and failing, not hanging, when it passes."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from adapters.models import DomainEvent
from gateway.events.bus import BusSubscription


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 5.0, *,
                     every_s: float = 0.01, message: str = "") -> None:
    """Until `condition()` holds (a plain or an async function), asked every `every_s` seconds;
    an AssertionError with `message` once `timeout_s` seconds have passed without."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert time.monotonic() < deadline, message or f"not so within {timeout_s} s"
        await asyncio.sleep(every_s)


async def first_event(subscription: BusSubscription, match: Callable[[DomainEvent], bool],
                      timeout_s: float = 5.0) -> DomainEvent:
    """The first event on a bus subscription that `match`es, within `timeout_s` seconds."""
    async def first() -> DomainEvent:
        async for event in subscription:
            if match(event):
                return event
        raise AssertionError("subscription closed")

    return await asyncio.wait_for(first(), timeout_s)
