"""A subscriber too slow for a burst loses its oldest events, and the log says so once, with how many
(gateway/events/drops.py), not once per event: a poll of 5,000 garages is thousands at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from adapters.models import DomainEvent, EventType
from gateway.events.bus import SUBSCRIBER_QUEUE, MemoryBus


def occupancy_changed(n: int) -> DomainEvent:
    now = datetime.now(UTC)
    return DomainEvent(id=f"ev_{n}", type=EventType.OCCUPANCY_CHANGED, system_id="guidance", facility_id="berlin-hbf",
                       occurred_at=now, received_at=now, vendor_event_id=f"occupancy:{n}", payload={"occupied": n})


async def test_a_burst_past_a_slow_subscribers_queue_is_one_warning_with_the_count(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryBus()
    slow = bus.subscribe()  # reads nothing while the burst is published
    burst = SUBSCRIBER_QUEUE + 2_500
    with caplog.at_level(logging.WARNING, logger="parkgate.events"):
        for n in range(burst):
            await bus.publish(occupancy_changed(n))
    warnings = [r.getMessage() for r in caplog.records if "too slow" in r.getMessage()]
    assert warnings == ["a subscriber is too slow: dropped its oldest events (1 since the last warning, 1 in all)"]
    assert bus.fanout.drops.total == burst - SUBSCRIBER_QUEUE  # every drop counted, the next warning says how many
    # it kept the newest: the last SUBSCRIBER_QUEUE events, in order
    kept = [slow.queue.get_nowait().id for _ in range(slow.queue.qsize())]
    assert kept == [f"ev_{n}" for n in range(burst - SUBSCRIBER_QUEUE, burst)]
    await slow.aclose()


async def test_a_burst_is_paced_so_a_subscriber_that_keeps_reading_loses_nothing() -> None:
    """A poll of thousands of garages publishes in one go: the bus gives its subscribers a turn once
    one's queue is half full, so a consumer that reads as fast as it is given events keeps them all."""
    bus = MemoryBus()
    subscription = bus.subscribe()
    seen: list[str] = []

    async def consume() -> None:
        async for event in subscription:
            seen.append(event.id)

    consumer = asyncio.create_task(consume())
    burst = SUBSCRIBER_QUEUE * 5
    for n in range(burst):
        await bus.publish(occupancy_changed(n))
    await asyncio.sleep(0)
    await subscription.aclose()
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    assert bus.fanout.drops.total == 0 and seen == [f"ev_{n}" for n in range(burst)]
