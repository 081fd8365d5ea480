"""Polling poll-only systems into events, the poller lease across replicas, and the Redis Streams bus."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.models import DomainEvent, EventType
from gateway.events.bus import BusSubscription
from gateway.events.poller import Poller
from gateway.events.redis_bus import RedisStreamBus, decode_event, encode_event
from gateway.systems import OCCUPANCY
from tests.support.processes import OwnCluster, OwnRedis
from tests.support.servers import repeating
from tests.support.streams import open_stream

GARAGE = "london-kings-cross"
OCCUPANCY_PATH = "GET /v2/carparks/occupancy"


async def collect(subscription: BusSubscription, until, timeout: float = 5.0) -> list[DomainEvent]:
    """Events from the subscription until `until(events)` holds (or fail after `timeout`)."""
    seen: list[DomainEvent] = []

    async def run() -> None:
        async for event in subscription:
            seen.append(event)
            if until(seen):
                return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        pytest.fail(f"not seen within {timeout}s; got {[(e.type, e.facility_id) for e in seen]}")
    return seen


def entered_and_changed(events: list[DomainEvent]) -> bool:
    mine = {e.type for e in events if e.facility_id == GARAGE and e.system_id == "parcs-london"}
    return {EventType.VEHICLE_ENTERED, EventType.OCCUPANCY_CHANGED} <= mine


def plate() -> str:
    return "T" + uuid.uuid4().hex[:6].upper()


def event(n: int = 1) -> DomainEvent:
    return DomainEvent(id=f"test:{uuid.uuid4().hex}", type=EventType.VEHICLE_ENTERED, system_id="parcs-london",
                       facility_id=GARAGE, occurred_at=datetime.now(UTC), received_at=datetime.now(UTC),
                       vendor_event_id=f"v{n}", payload={"count": n, "at": datetime(2026, 1, 1, tzinfo=UTC)})


# --- polling in memory ------------------------------------------------------------------------

async def test_an_entry_is_polled_into_events(bed) -> None:
    runtime = bed.sandbox.runtime
    poller = Poller(runtime, "parcs-london", interval_s=0.2)
    assert await poller.cycle() == []  # the first snapshot is a baseline
    subscription = runtime.bus.subscribe()
    try:
        assert bed.sandbox.world.enter(GARAGE, "AB12CDE")
        poller.start()
        events = await collect(subscription, entered_and_changed)
    finally:
        await poller.aclose()
        await subscription.aclose()
    entered = [e for e in events if e.type is EventType.VEHICLE_ENTERED and e.facility_id == GARAGE]
    assert entered[0].payload["count"] == 1 and "plate" not in entered[0].payload
    assert entered[0].id.startswith("parcs-london:poll:KX01:")
    changed = next(e for e in events if e.type is EventType.OCCUPANCY_CHANGED and e.facility_id == GARAGE)
    assert changed.payload["occupied"] != changed.payload["previous_occupied"]
    # the poll refreshed the cache: the next read needs no vendor call
    bed.sandbox.simulators["parcs-london"].control.reset_stats()
    await runtime.systems.fetch("parcs-london", OCCUPANCY)
    assert bed.sandbox.simulators["parcs-london"].control.requests[OCCUPANCY_PATH] == 0


async def test_sensor_levels_are_polled_into_occupancy_changes(bed) -> None:
    runtime = bed.sandbox.runtime
    poller = Poller(runtime, "guidance", interval_s=0.2)
    await poller.cycle()
    subscription = runtime.bus.subscribe()
    try:
        assert bed.sandbox.world.enter(GARAGE, plate(), "L1")
        poller.start()
        events = await collect(subscription, lambda seen: any(
            e.system_id == "guidance" and e.facility_id == GARAGE and e.zone_id == f"{GARAGE}:L1" for e in seen))
    finally:
        await poller.aclose()
        await subscription.aclose()
    level = next(e for e in events if e.zone_id == f"{GARAGE}:L1")
    assert level.type is EventType.OCCUPANCY_CHANGED and level.payload["vendor_zone_id"] == "31-2"


async def test_a_datex2_status_change_reaches_a_subscriber(bed) -> None:
    """hamburg-elbe is sensed by the open-data platform (DATEX II): a car entering changes its status
    publication, the poller turns the change into occupancyChanged, and a dashboard hears it."""
    runtime = bed.sandbox.runtime
    poller = Poller(runtime, "open-data", interval_s=0.2)
    assert await poller.cycle() == []  # the first snapshot is a baseline
    query = ("subscription($f: String!) { occupancyChanged(facilityId: $f) "
             "{ facilityId zoneId source occupied free capacity observedAt } }")

    async def enter() -> None:
        await bed.simulate("open-data", event="entry", facility_id="hamburg-elbe", plate=plate())

    async with open_stream(bed.url, "sse", bed.key("dashboard"), query, {"f": "hamburg-elbe"}) as stream:
        poller.start()
        try:
            # cars keep coming until one is heard: the subscription may be set up after the first
            async with repeating(enter, every_s=0.5):
                while (update := (await stream.data(timeout=5))["data"]["occupancyChanged"])["zoneId"] is not None:
                    pass
        finally:
            await poller.aclose()
    assert update["facilityId"] == "hamburg-elbe" and update["source"] == "open-data"
    assert update["capacity"] == bed.sandbox.world.garages["hamburg-elbe"].spec.capacity
    assert update["free"] == update["capacity"] - update["occupied"]
    assert update["observedAt"] is not None  # the record's lastUpdated in the publication


async def test_a_burst_is_capped_and_counted(bed) -> None:
    runtime = bed.sandbox.runtime
    poller = Poller(runtime, "parcs-london", interval_s=0.2)
    await poller.cycle()
    snapshot = poller._snapshot
    assert snapshot is not None
    key = next(k for k in snapshot if k.startswith("KX01|"))
    snapshot[key] = {**snapshot[key], "entries": snapshot[key]["entries"] - 120}  # 120 cars since "last time"
    events = await poller.cycle()
    entered = [e for e in events if e.type is EventType.VEHICLE_ENTERED and e.facility_id == GARAGE]
    assert len(entered) == 50
    assert sum(e.payload["count"] for e in entered) >= 120
    assert len({e.id for e in entered}) == 50


async def test_a_reserved_car_arriving_is_polled_into_an_event(bed) -> None:
    runtime, world = bed.sandbox.runtime, bed.sandbox.world
    office = bed.sandbox.simulators["parcs-london"].office  # ParkLine sends no webhooks: polled only
    poller = Poller(runtime, "parcs-london", interval_s=0.2)
    now = datetime.now(UTC)
    early, late = plate(), plate()
    booked_before = office.book(GARAGE, plate=early, starts_at=now, ends_at=now + timedelta(hours=2),
                                reference=f"test:{uuid.uuid4().hex}")
    assert await poller.cycle() == []  # the first snapshot is a baseline
    # booked after the baseline and arriving before the next poll: never seen BOOKED, still an arrival
    booked_after = office.book(GARAGE, plate=late, starts_at=now, ends_at=now + timedelta(hours=2),
                               reference=f"test:{uuid.uuid4().hex}")
    for car in (early, late):
        office.vehicle_entered(GARAGE, car)
        assert world.enter(GARAGE, car)

    events = await poller.cycle()
    arrived = {e.payload["reservation_id"]: e for e in events if e.type is EventType.RESERVATION_ARRIVED}
    assert booked_before.id in arrived and booked_after.id in arrived
    first = arrived[booked_before.id]
    assert first.facility_id == GARAGE and first.system_id == "parcs-london"
    assert first.payload == {"reservation_id": booked_before.id, "plate": early}
    assert first.id == f"parcs-london:poll:reservation:{booked_before.id}:arrived"
    assert first.occurred_at == booked_before.arrived_at
    assert any(e.type is EventType.VEHICLE_ENTERED and e.facility_id == GARAGE for e in events)
    # an arrival is told once
    again = await poller.cycle()
    assert not [e for e in again if e.type is EventType.RESERVATION_ARRIVED and e.payload["reservation_id"]
                in arrived]


async def test_unreadable_reservations_leave_occupancy_events_alone(bed) -> None:
    runtime = bed.sandbox.runtime
    sim = bed.sandbox.simulators["parcs-london"]
    poller = Poller(runtime, "parcs-london", interval_s=0.2)
    await poller.cycle()
    sim.backend.unreadable.add("/v2/bookings")
    try:
        assert bed.sandbox.world.enter(GARAGE, plate())
        events = await poller.cycle()
    finally:
        sim.backend.unreadable.discard("/v2/bookings")
    assert entered_and_changed(events)
    assert sim.control.requests["GET /v2/bookings"] > 0  # it was asked, and its failure cost nothing else


# --- polling with a lease across replicas ------------------------------------------------------

async def test_one_replica_polls_and_another_takes_over(bed, redis_url) -> None:
    runtime = bed.sandbox.runtime
    sim = bed.sandbox.simulators["parcs-london"]
    prefix = f"test-poll-{uuid.uuid4().hex[:8]}:"
    redis = aioredis.from_url(redis_url)
    a = Poller(runtime, "parcs-london", interval_s=0.2, lease_s=1.0, redis=redis, prefix=prefix, replica_id="a")
    b = Poller(runtime, "parcs-london", interval_s=0.2, lease_s=1.0, redis=redis, prefix=prefix, replica_id="b")
    subscription = runtime.bus.subscribe()
    try:
        sim.control.reset_stats()
        a.start()
        await asyncio.sleep(0.1)
        b.start()
        await asyncio.sleep(1.5)
        assert a.polls >= 4 and b.polls == 0 and a.holding and not b.holding
        assert 0 < sim.control.requests[OCCUPANCY_PATH] <= (a.polls + 1) * 2  # the holder's polls only

        assert bed.sandbox.world.enter(GARAGE, plate())
        before = await collect(subscription, entered_and_changed)
        await a.aclose()  # dies: its lease is left to lapse
        while not subscription.queue.empty():
            before.append(subscription.queue.get_nowait())
        old_ids = {e.id for e in before}
        last_entry = max(e.payload["entries"] for e in before if e.type is EventType.VEHICLE_ENTERED
                         and e.facility_id == GARAGE)

        assert bed.sandbox.world.enter(GARAGE, plate())
        after = await collect(subscription, entered_and_changed, timeout=1.0 + 3.0)
        assert b.holding and b.polls > 0
        assert not old_ids & {e.id for e in after}
        assert all(e.payload["entries"] > last_entry for e in after
                   if e.type is EventType.VEHICLE_ENTERED and e.facility_id == GARAGE)
    finally:
        await subscription.aclose()
        await a.aclose()
        await b.release()
        assert await redis.get(f"{prefix}poll:lease:parcs-london") is None  # released on a clean stop
        await redis.aclose()


# --- the Redis Streams bus ---------------------------------------------------------------------

def test_events_survive_the_wire() -> None:
    original = event(3)
    copy = decode_event(encode_event(original))
    assert copy.id == original.id and copy.type is EventType.VEHICLE_ENTERED
    assert copy.occurred_at == original.occurred_at and copy.received_at == original.received_at
    assert copy.payload == {"count": 3, "at": "2026-01-01T00:00:00+00:00"}


async def test_every_replica_sees_every_event(redis_url) -> None:
    prefix = f"test-bus-{uuid.uuid4().hex[:8]}:"
    one = RedisStreamBus(redis_url, prefix=prefix, replica_id="one", block_ms=200)
    two = RedisStreamBus(redis_url, prefix=prefix, replica_id="two", block_ms=200)
    await one.start()
    await two.start()
    heard_one, heard_two = one.subscribe(), two.subscribe()
    try:
        sent = event()
        await one.publish(sent)
        for heard in (heard_one, heard_two):
            got = await asyncio.wait_for(anext(heard), 3)
            assert got.id == sent.id
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_restarted_replica_resumes_where_it_stopped(redis_url) -> None:
    prefix = f"test-bus-{uuid.uuid4().hex[:8]}:"
    publisher = RedisStreamBus(redis_url, prefix=prefix, replica_id="publisher", block_ms=200)
    await publisher.start()
    first = RedisStreamBus(redis_url, prefix=prefix, replica_id="r1", block_ms=200)
    await first.start()
    heard = first.subscribe()
    await publisher.publish(event(1))
    assert (await asyncio.wait_for(anext(heard), 3)).vendor_event_id == "v1"
    await first.aclose()

    await publisher.publish(event(2))  # while r1 is away
    await publisher.publish(event(3))

    again = RedisStreamBus(redis_url, prefix=prefix, replica_id="r1", block_ms=200)
    stranger = RedisStreamBus(redis_url, prefix=prefix, replica_id="r-new", block_ms=200)
    heard_again, heard_stranger = again.subscribe(), stranger.subscribe()
    await again.start()
    await stranger.start()
    try:
        got = [await asyncio.wait_for(anext(heard_again), 3) for _ in range(2)]
        assert [e.vendor_event_id for e in got] == ["v2", "v3"]
        await publisher.publish(event(4))
        assert (await asyncio.wait_for(anext(heard_again), 3)).vendor_event_id == "v4"
        # a new replica starts at the end: only what came after it
        assert (await asyncio.wait_for(anext(heard_stranger), 3)).vendor_event_id == "v4"
    finally:
        await again.aclose()
        await stranger.aclose()
        await publisher.aclose()


async def test_events_published_while_redis_restarts_wait_and_arrive_in_order_once(own_redis: OwnRedis) -> None:
    """Redis really stopped: publishing still returns (the events wait in the process's outbox), and
    once Redis is back every replica hears them, in the order published, each once — the same event
    published again (the processor re-publishing an item it could not ack) included."""
    prefix = f"test-bus-{uuid.uuid4().hex[:8]}:"
    publisher = RedisStreamBus(own_redis.url, prefix=prefix, replica_id="publisher", block_ms=200)
    listener = RedisStreamBus(own_redis.url, prefix=prefix, replica_id="listener", block_ms=200)
    await publisher.start()
    await listener.start()
    heard = listener.subscribe()
    try:
        own_redis.stop()
        sent = [event(n) for n in range(1, 4)]
        for e in sent:
            await asyncio.wait_for(publisher.publish(e), 10)
        await publisher.publish(sent[0])  # again: not twice on the bus
        assert [e.id for e in publisher.outbox.waiting] == [e.id for e in sent]
        own_redis.start()
        await publisher.publish(later := event(4))  # behind the waiting ones, not before them
        got = [await asyncio.wait_for(anext(heard), 15) for _ in range(4)]
        assert [e.vendor_event_id for e in got] == ["v1", "v2", "v3", "v4"] and got[3].id == later.id
        await publisher.publish(marker := event(5))
        assert (await asyncio.wait_for(anext(heard), 5)).id == marker.id  # nothing else came between
        assert not publisher.outbox.waiting
    finally:
        await listener.aclose()
        await publisher.aclose()


async def test_the_bus_reader_outlives_a_restart_of_every_cluster_node(tmp_path: Path) -> None:
    """A cluster client raises RedisClusterUnreachableError (not a RedisError) while every node is
    away: the reader took it for a bug and ended, and its replica heard no event again."""
    cluster = OwnCluster(tmp_path / "cluster", persistent=True)
    cluster.start()
    prefix = f"test-bus-{uuid.uuid4().hex[:8]}:"
    publisher = RedisStreamBus(cluster.url, prefix=prefix, replica_id="publisher", block_ms=200)
    listener = RedisStreamBus(cluster.url, prefix=prefix, replica_id="listener", block_ms=200)
    try:
        await publisher.start()
        await listener.start()
        heard = listener.subscribe()
        await publisher.publish(event(1))
        assert (await asyncio.wait_for(anext(heard), 5)).vendor_event_id == "v1"
        await asyncio.to_thread(cluster.restart, 1.0)
        await publisher.publish(event(2))
        assert (await asyncio.wait_for(anext(heard), 20)).vendor_event_id == "v2"
    finally:
        await listener.aclose()
        await publisher.aclose()
        cluster.stop()
