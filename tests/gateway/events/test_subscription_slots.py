"""A client's open-subscription limit across gateway processes sharing one (throwaway) Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from gateway.events.subscription_slots import SubscriptionSlots

pytestmark = pytest.mark.asyncio(loop_scope="session")


def process(redis_url: str, prefix: str) -> SubscriptionSlots:
    return SubscriptionSlots(aioredis.Redis.from_url(redis_url), prefix)


async def test_the_limit_holds_across_processes_and_a_dead_process_frees_its_slots(redis_url: str) -> None:
    prefix = f"slots-{uuid.uuid4().hex[:8]}:"
    a, b = process(redis_url, prefix), process(redis_url, prefix)
    try:
        assert await a.take("cl_1", 2)
        assert await b.take("cl_1", 2)
        assert not await a.take("cl_1", 2) and not await b.take("cl_1", 2)  # two in the deployment
        assert await b.take("cl_2", 2)  # another client's slots are its own
        b.give_back("cl_1")
        await asyncio.sleep(0.05)  # given back in the background
        assert await a.take("cl_1", 2)
        assert not await b.take("cl_1", 2)
        # a dies without giving anything back: once it is no longer alive, its slots are free
        await a._redis.delete(a._alive_key(a.process_id))
        if a._alive is not None:
            a._alive.cancel()
        assert await b.take("cl_1", 2)
        assert b.local["cl_1"] == 1 and a.local["cl_1"] == 2
    finally:
        await a.aclose()
        await b.aclose()


async def test_without_redis_the_process_counts_alone() -> None:
    slots = SubscriptionSlots()
    assert await slots.take("cl_1", 1)
    assert not await slots.take("cl_1", 1)
    slots.give_back("cl_1")
    assert await slots.take("cl_1", 1)
