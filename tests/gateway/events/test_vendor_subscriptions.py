"""Subscribing to the vendors that deliver to subscribers (the sandbox's APDS PARCS), and what
their deliveries become: live occupancy for a facility only that PARCS feeds."""

from __future__ import annotations

import asyncio
import time

from gateway.events.vendor_subscriptions import MemorySubscriptionIds, RedisSubscriptionIds, VendorSubscriptions
from tests.support.bed import Bed
from tests.support.streams import SLACK_S, open_stream
from tests.support.vendors import webhook_secret

OCCUPANCY = "subscription($f: String!) { occupancyChanged(facilityId: $f) { facilityId occupied capacity free } }"


async def test_the_gateway_subscribed_once_at_start_with_its_secret_in_the_endpoint(bed: Bed) -> None:
    subscriptions = bed.sandbox.simulators["parcs-central"].state.subscriptions  # type: ignore[attr-defined]
    made = bed.app.state.events.vendor_subscriptions.subscribed["parcs-central"]
    endpoint = f"{bed.url}/webhooks/parcs-central?token={webhook_secret(bed, 'parcs-central')}"
    assert subscriptions[made].body["endpoint"] == endpoint
    # (other gateways the tests build from the sandbox's configuration, each with its own memory,
    # subscribed for themselves: the same endpoint, whose deliveries the gateway dedupes)
    assert all(s.body["endpoint"] == endpoint for s in subscriptions.values())


async def test_starting_again_keeps_the_subscription_it_made(bed: Bed) -> None:
    subscriptions = bed.sandbox.simulators["parcs-central"].state.subscriptions  # type: ignore[attr-defined]
    count = len(subscriptions)
    first = bed.app.state.events.vendor_subscriptions
    ids = MemorySubscriptionIds()
    ids.ids = {"parcs-central": first.subscribed["parcs-central"]}
    again = VendorSubscriptions(bed.sandbox.runtime, ids)
    again.start()
    try:
        for _ in range(250):
            if again.subscribed:
                break
            await asyncio.sleep(0.02)
    finally:
        await again.stop()
    assert again.subscribed == first.subscribed and len(subscriptions) == count


async def test_redis_keeps_the_ids_for_every_replica_and_lets_one_subscribe_at_a_time(redis_url: str) -> None:
    prefix = f"test-{time.time_ns()}:"
    one, two = RedisSubscriptionIds.from_url(redis_url, prefix), RedisSubscriptionIds.from_url(redis_url, prefix)
    try:
        assert await one.get("parcs-central") is None
        assert await one.lock("parcs-central") and not await two.lock("parcs-central")
        await one.put("parcs-central", "sub-1")
        await one.unlock("parcs-central")
        assert await two.get("parcs-central") == "sub-1" and await two.lock("parcs-central")
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_subscriber_to_a_facility_only_the_apds_parcs_feeds_hears_an_entry_within_a_second(bed: Bed) -> None:
    hub = bed.app.state.events.subscriptions.hub
    before = hub.subscribers
    async with open_stream(bed.url, "sse", bed.key("dashboard"), OCCUPANCY, {"f": "hamburg-elbe"}) as stream:
        for _ in range(250):  # the stream is open once the hub holds it
            if hub.subscribers > before:
                break
            await asyncio.sleep(0.02)
        started = time.monotonic()
        answer = await bed.simulate("parcs-central", event="entry", facility_id="hamburg-elbe", plate="HH-EL 1")
        assert answer["delivery"] == "webhook"
        update = (await stream.data(timeout=1.0 + SLACK_S))["data"]["occupancyChanged"]
        heard_after = time.monotonic() - started
    garage = bed.sandbox.world.garages["hamburg-elbe"]
    assert update["facilityId"] == "hamburg-elbe" and update["capacity"] == garage.spec.capacity
    assert isinstance(update["occupied"], int) and update["occupied"] > 0  # the counted figure, drift and all
    assert heard_after < 1.0 + SLACK_S
