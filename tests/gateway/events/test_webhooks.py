"""Inbound vendor webhooks and sandbox event injection, over real HTTP against the sandbox."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from adapters.lpr.simulator.webhooks import citation_event
from adapters.lpr.wire import format_timestamp
from adapters.mews.simulator.webhooks import reservation_events
from adapters.models import DomainEvent, EventType
from gateway.events.bus import BusSubscription
from gateway.events.inbox import MemoryInbox
from gateway.systems import OCCUPANCY
from gateway.upstream import cache_key
from tests.support.bed import Bed
from tests.support.vendors import (
    HBF_PLACE,
    apds_delivery,
    apds_path,
    apds_place,
    apds_request,
    apds_session,
    webhook_secret,
)
from tests.support.waiting import first_event, wait_until


async def quiet(sub: BusSubscription, match: Callable[[DomainEvent], bool], seconds: float = 1.0) -> list[DomainEvent]:
    """Every matching event within `seconds`."""
    seen: list[DomainEvent] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = await asyncio.wait_for(sub.queue.get(), left)
        except TimeoutError:
            break
        if match(event):
            seen.append(event)
    return seen


def inbox(bed: Bed) -> MemoryInbox:
    box = bed.app.state.events.ingress.inbox
    assert isinstance(box, MemoryInbox)
    return box


async def test_simulated_entry_reaches_the_bus_and_refreshes_the_cache(bed: Bed) -> None:
    upstream = bed.sandbox.runtime.systems.upstream
    cached = await upstream.get("parcs-central", OCCUPANCY, ())  # cached now
    lists = (await bed.stats("parcs-central"))["by_endpoint"].get("GET /apds/v1/places")
    renewals = upstream.metrics_dict()["parcs-central"]["renewals"]
    sub = bed.sandbox.runtime.bus.subscribe()
    try:
        answer = await bed.simulate("parcs-central", event="entry", facility_id="berlin-hbf", plate="B-PG 101")
        assert answer["delivery"] == "webhook" and answer["event_id"]
        event = await first_event(sub, lambda e: e.vendor_event_id == f"session:{answer['session_id']}:entered")
    finally:
        await sub.aclose()
    assert event.type is EventType.VEHICLE_ENTERED
    assert event.facility_id == "berlin-hbf" and event.system_id == "parcs-central"
    assert event.payload["plate"] == "BPG101" and event.revision == 1  # as the barrier read it
    # the garage's reading was read again alone (GET /places/{id}; before the event was published
    # when the PARCS answers within renewals.WAIT_S) and put in the cached list: the list stands,
    # and the next read is a hit with the new count
    await wait_until(lambda: not bed.app.state.events.ingress.processor.renewals._running)
    calls = (await bed.stats("parcs-central"))["by_endpoint"]
    assert calls.get("GET /apds/v1/places/{id}", 0) >= 1 and calls.get("GET /apds/v1/places") == lists
    entry = await upstream.store.read(cache_key("parcs-central", "occupancy", ()), None)
    assert entry is not None and not entry.invalidated and entry.fetched_at == pytest.approx(cached.fetched_at.timestamp(), abs=1e-5)
    fetched = await upstream.get("parcs-central", OCCUPANCY, ())
    hbf = next(r for r in fetched.value.items if r.vendor_facility_id == HBF_PLACE and r.zone_id is None)
    assert hbf.received_at > cached.fetched_at and hbf.occupied is not None  # read after the list was, with the car in
    assert (await bed.stats("parcs-central"))["by_endpoint"].get("GET /apds/v1/places") == lists
    assert upstream.metrics_dict()["parcs-central"]["renewals"] > renewals


async def test_an_entry_whose_garage_cannot_be_read_alone_marks_the_whole_list_stale(bed: Bed) -> None:
    upstream = bed.sandbox.runtime.systems.upstream
    await upstream.get("parcs-central", OCCUPANCY, ())
    await bed.fault("parcs-central", "error")  # the PARCS answers 500 to every read: the renewal fails
    sub = bed.sandbox.runtime.bus.subscribe()
    try:
        answer = await bed.simulate("parcs-central", event="entry", facility_id="berlin-hbf", plate="B-PG 102")
        await first_event(sub, lambda e: e.vendor_event_id == f"session:{answer['session_id']}:entered")
    finally:
        await sub.aclose()
        await bed.fault("parcs-central", "ok")
    key = cache_key("parcs-central", "occupancy", ())

    async def invalidated() -> bool:
        entry = await upstream.store.read(key, None)
        return entry is not None and entry.invalidated

    await wait_until(invalidated, message="the list was not marked stale")  # the next read asks for it whole
    before = (await bed.stats("parcs-central"))["by_endpoint"].get("GET /apds/v1/places", 0)
    await upstream.get("parcs-central", OCCUPANCY, ())
    assert (await bed.stats("parcs-central"))["by_endpoint"].get("GET /apds/v1/places", 0) > before


async def test_a_slow_parcs_does_not_hold_the_event_back_and_its_garage_is_renewed_after(bed: Bed) -> None:
    upstream = bed.sandbox.runtime.systems.upstream
    renewals = bed.app.state.events.ingress.processor.renewals
    cached = await upstream.get("parcs-central", OCCUPANCY, ())
    renewed = upstream.metrics_dict()["parcs-central"]["renewals"]
    # every PARCS answer 0.6 s late: longer than an event waits for its renewal, within the read timeout
    await bed.fault("parcs-central", "slow", delay_ms=600)
    sub = bed.sandbox.runtime.bus.subscribe()
    try:
        answer = await bed.simulate("parcs-central", event="entry", facility_id="berlin-hbf", plate="B-PG 103")
        await first_event(sub, lambda e: e.vendor_event_id == f"session:{answer['session_id']}:entered")
        # published while the garage's reading is still being read: the event did not wait for it
        assert upstream.metrics_dict()["parcs-central"]["renewals"] == renewed
        assert ("parcs-central", HBF_PLACE) in renewals._running
        await wait_until(lambda: not renewals._running, timeout_s=10)
    finally:
        await sub.aclose()
        await bed.fault("parcs-central", "ok")
    fetched = await upstream.get("parcs-central", OCCUPANCY, ())
    hbf = next(r for r in fetched.value.items if r.vendor_facility_id == HBF_PLACE and r.zone_id is None)
    assert hbf.received_at > cached.fetched_at and not fetched.stale
    assert upstream.metrics_dict()["parcs-central"]["renewals"] > renewed  # renewed, not marked stale


async def test_a_delivery_without_the_subscriptions_token_is_401_and_records_nothing(bed: Bed) -> None:
    box = inbox(bed)
    accepted = box.accepted
    session = apds_session("B-X 1")
    path, raw, headers = apds_request(bed, apds_delivery("SessionCreated", session), key="not-the-secret")
    sub = bed.sandbox.runtime.bus.subscribe()
    try:
        response = await bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)
        assert response.status_code == 401
        tokenless = await bed.http.post(f"{bed.url}/webhooks/parcs-central", content=raw, headers=headers)
        assert tokenless.status_code == 401
        lpr = await bed.http.post(f"{bed.url}/webhooks/enforcement", content=b"{}", headers={"x-webhook-secret": "no"})
        assert lpr.status_code == 401
        pms = await bed.http.post(f"{bed.url}/webhooks/hotel-pms?token=no", content=b"{}")
        assert pms.status_code == 401
        assert box.accepted == accepted
        assert await quiet(sub, lambda e: session["id"] in e.vendor_event_id, 0.5) == []
    finally:
        await sub.aclose()


async def test_a_replayed_delivery_is_a_duplicate(bed: Bed) -> None:
    """APDS has no timestamp to hold a replay against: a delivery sent again (by an attacker or a
    retrying platform) names the same objects, so it is the same events, published once."""
    path, raw, headers = apds_request(bed, apds_delivery("SessionCreated", apds_session("B-RPL 1")))
    first = await bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)
    again = await bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200) and again.json()["status"] == "duplicate"


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"topic": "SessionCreated", "data": []}',
                                 b'{"topic": "SessionCreated", "eventTime": "2026-01-01T00:00:00Z", "data": [{"id": 1}]}',
                                 b'{"topic": "PlaceUpdated", "eventTime": "yesterday", "data": [{}]}'])
async def test_malformed_body_is_400(bed: Bed, raw: bytes) -> None:
    response = await bed.http.post(f"{bed.url}{apds_path(bed)}", content=raw)
    assert response.status_code == 400, response.text


async def test_topics_the_gateway_does_not_use_are_acknowledged(bed: Bed) -> None:
    body = apds_delivery("SessionUpdated", apds_session("B-STAY 1"))  # updated, not ended: nothing happened
    path, raw, headers = apds_request(bed, body)
    response = await bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)
    assert response.status_code == 202 and response.json()["events"] == []


async def test_unknown_system_and_poll_only_system_are_404(bed: Bed) -> None:
    assert (await bed.http.post(f"{bed.url}/webhooks/nope", content=b"{}")).status_code == 404
    assert (await bed.http.post(f"{bed.url}/webhooks/parcs-london", content=b"{}")).status_code == 404


async def test_the_same_webhook_twice_is_one_event(bed: Bed) -> None:
    session = apds_session("B-DUP 2", ended=True)
    path, raw, headers = apds_request(bed, apds_delivery("SessionUpdated", session))
    sub = bed.sandbox.runtime.bus.subscribe()
    try:
        first = await bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)
        second = await bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)
        assert (first.status_code, second.status_code) == (202, 200)
        assert second.json()["status"] == "duplicate"
        events = await quiet(sub, lambda e: e.vendor_event_id == f"session:{session['id']}:exited", 1.0)
    finally:
        await sub.aclose()
    assert len(events) == 1 and events[0].type is EventType.VEHICLE_EXITED


async def test_lpr_plate_correction_is_an_update_not_a_duplicate(bed: Bed) -> None:
    sub = bed.sandbox.runtime.bus.subscribe()
    try:
        issued = await bed.simulate("enforcement", event="violation", facility_id="berlin-hbf", plate="B-XY 12")
        first = await first_event(sub, lambda e: e.vendor_event_id == issued["event_id"])
        corrected = await bed.simulate("enforcement", event="plate_correction", facility_id="berlin-hbf",
                                   plate="B-XV 12", citation_number=issued["citation_number"])
        assert corrected["event_id"] == issued["event_id"]
        second = await first_event(sub, lambda e: e.vendor_event_id == issued["event_id"])
        more = await quiet(sub, lambda e: e.vendor_event_id == issued["event_id"], 0.5)
    finally:
        await sub.aclose()
    assert first.type is EventType.CITATION_ISSUED and first.revision == 1 and first.payload["plate"] == "B-XY 12"
    assert second.type is EventType.CITATION_UPDATED and second.revision == 2 and second.payload["plate"] == "B-XV 12"
    assert first.facility_id == second.facility_id == "berlin-hbf" and first.id != second.id
    assert more == []


async def test_lpr_resent_identical_event_is_a_duplicate(bed: Bed) -> None:
    event = citation_event("10", {"plate": "B-Q 7", "citationNumber": "HBF-2026-999001", "violationCode": "V12"})
    raw = orjson.dumps({**event, "timestamp": format_timestamp(datetime.now(UTC))})
    headers = {"x-webhook-secret": webhook_secret(bed, "enforcement")}
    codes = [(await bed.http.post(f"{bed.url}/webhooks/enforcement", content=raw, headers=headers)).status_code
             for _ in range(2)]
    assert codes == [202, 200]


async def test_mews_check_in_fetches_the_reservation(bed: Bed) -> None:
    before = (await bed.stats("hotel-pms"))["by_endpoint"]
    sub = bed.sandbox.runtime.bus.subscribe()
    try:
        answer = await bed.simulate("hotel-pms", event="check_in", facility_id="berlin-spree-hotel", plate="B-HT 42")
        event = await first_event(sub, lambda e: e.payload.get("reservation_id") == answer["reservation_id"])
        more = await quiet(sub, lambda e: e.payload.get("reservation_id") == answer["reservation_id"], 0.5)
        out = await bed.simulate("hotel-pms", event="check_out", facility_id="berlin-spree-hotel", plate="B-HT 42")
        left = await first_event(sub, lambda e: e.payload.get("reservation_id") == out["reservation_id"])
    finally:
        await sub.aclose()
    assert event.type is EventType.GUEST_CHECKED_IN and event.facility_id == "berlin-spree-hotel"
    assert event.payload["car_registration"] == "B-HT 42" and event.payload["guest_name"]
    assert more == []  # Added + Updated together: one event
    assert left.type is EventType.GUEST_CHECKED_OUT
    after = (await bed.stats("hotel-pms"))["by_endpoint"]
    fetched = "POST /api/connector/v1/reservations/getAll/2023-06-06"
    assert after.get(fetched, 0) > before.get(fetched, 0)


async def test_poll_only_system_changes_the_world_only(bed: Bed) -> None:
    garage = bed.sandbox.world.garages["london-kings-cross"]
    answer = await bed.simulate("parcs-london", event="entry", facility_id="london-kings-cross", plate="LB21 ABC")
    assert answer["delivery"] == "poll" and "poll" in answer["message"]
    assert garage.plates.get("LB21 ABC")


@pytest.mark.parametrize("body, status", [
    ({"event": "teleport", "facility_id": "berlin-hbf", "plate": "B-A 1"}, 400),
    ({"event": "entry", "facility_id": "atlantis", "plate": "B-A 1"}, 400),
    ({"event": "entry", "facility_id": "berlin-hbf", "plate": "B-" + "A" * 40}, 400),
    ({"event": "entry", "facility_id": "berlin-hbf"}, 400),
    ({"event": "entry", "facility_id": "london-southbank", "plate": "B-A 1"}, 409),
    ({"event": "check_in", "facility_id": "berlin-hbf", "plate": "B-A 1"}, 409),
])
async def test_simulate_validates(bed: Bed, body: dict[str, Any], status: int) -> None:
    response = await bed.http.post(f"{bed.url}/sandbox/systems/parcs-central/simulate", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    missing = await bed.http.post(f"{bed.url}/sandbox/systems/nope/simulate", json=body)
    assert missing.status_code == 404


def unmapped_delivery(bed: Bed, system_id: str, place: str, plate: str) -> tuple[str, bytes, dict[str, str]]:
    """A correctly signed webhook of each dialect for `place` (APDS place, LPR zone, Mews enterprise): (path, body, headers)."""
    if system_id == "parcs-central":
        return apds_request(bed, apds_delivery("SessionCreated", apds_session(plate, place)))
    if system_id == "enforcement":
        event = citation_event(place, {"plate": plate, "citationNumber": f"X-{time.time_ns()}", "violationCode": "V12"})
        raw = orjson.dumps({**event, "timestamp": format_timestamp(datetime.now(UTC))})
        return "/webhooks/enforcement", raw, {"x-webhook-secret": webhook_secret(bed, "enforcement")}
    body = reservation_events(place, str(time.time_ns()))  # a General Webhooks message
    return f"/webhooks/hotel-pms?token={webhook_secret(bed, 'hotel-pms', 'webhook_token')}", orjson.dumps(body), {}


async def webhook_figures(bed: Bed, system_id: str) -> tuple[dict[str, int], int]:
    """The system's webhook counters in /metrics.json, and its unmapped count in /readyz."""
    metrics = (await bed.http.get(f"{bed.url}/metrics.json")).json()["systems"][system_id]["webhooks"]
    ready = (await bed.http.get(f"{bed.url}/readyz")).json()["systems"][system_id]["webhooks_unmapped"]
    return metrics, ready


@pytest.mark.parametrize(("system_id", "known", "unknown"), [
    ("parcs-central", HBF_PLACE, "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4eff"),  # an APDS place, no facility's
    ("enforcement", "10", "99"),  # an LPR zone code
    ("hotel-pms", "b8a1e3a2-7c55-4f0e-9a7e-2f1a0c9d5e11", "00000000-7c55-4f0e-9a7e-2f1a0c9d5e11"),  # a Mews enterprise
], ids=["apds-place", "lpr-zone", "mews-enterprise"])
async def test_an_event_for_an_unmapped_place_is_acknowledged_counted_and_dropped(
        bed: Bed, system_id: str, known: str, unknown: str, caplog: pytest.LogCaptureFixture) -> None:
    box = inbox(bed)
    stored, (counted, ready) = box.accepted, await webhook_figures(bed, system_id)
    plate = f"B-UM {time.time_ns() % 10_000}"
    sub = bed.sandbox.runtime.bus.subscribe()
    try:
        with caplog.at_level(logging.WARNING, logger="parkgate.events.webhooks"):
            path, raw, headers = unmapped_delivery(bed, system_id, unknown, plate)
            response = await bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)
            # acknowledged, so the vendor does not retry it forever; the answer says what became of it
            assert response.status_code == 202, response.text
            assert [e["status"] for e in response.json()["events"]] == ["unmapped"]
            assert await quiet(sub, lambda e: e.system_id == system_id, 0.5) == []
    finally:
        await sub.aclose()
    assert box.accepted == stored  # nothing kept: no one could be sent it
    after, ready_after = await webhook_figures(bed, system_id)
    assert after == {**counted, "unmapped": counted["unmapped"] + 1} and ready_after == ready + 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and unknown in warnings[0] and system_id in warnings[0], warnings
    assert plate not in caplog.text and plate.replace(" ", "") not in caplog.text  # no personal data
    # the same delivery for a mapped place is accepted and counted as such
    path, raw, headers = unmapped_delivery(bed, system_id, known, plate)
    assert (await bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)).status_code == 202
    assert (await webhook_figures(bed, system_id))[0] == {**after, "accepted": after["accepted"] + 1}


async def test_500_concurrent_deliveries_never_500(bed: Bed) -> None:
    now = datetime.now(UTC)
    bodies = [apds_delivery("PlaceUpdated", apds_place(400 + i, at=now), at=now) for i in range(250)]
    requests = [apds_request(bed, b) for b in bodies for _ in range(2)]  # every one delivered twice, at once
    responses = await asyncio.gather(*(bed.http.post(f"{bed.url}{path}", content=raw, headers=headers)
                                       for path, raw, headers in requests))
    codes = [r.status_code for r in responses]
    assert all(code in (200, 202) for code in codes), sorted(set(codes))
    assert codes.count(202) == 250 and codes.count(200) == 250


async def test_redis_inbox_dedupes_and_survives_a_restart(redis_url: str) -> None:
    from adapters.models import VendorEvent
    from gateway.events.inbox import InboxItem, InboxOutcome, RedisInbox

    prefix = f"test-{time.time_ns()}:"
    event = VendorEvent(EventType.CITATION_ISSUED, "evt-1", "10", datetime.now(UTC), {"plate": "B-A 1"})
    first = RedisInbox.from_url(redis_url, prefix)
    try:
        assert await first.accept(InboxItem("enforcement", event, datetime.now(UTC))) == (InboxOutcome.ACCEPTED, 1)
        assert await first.accept(InboxItem("enforcement", event, datetime.now(UTC))) == (InboxOutcome.DUPLICATE, 1)
        corrected = VendorEvent(EventType.CITATION_ISSUED, "evt-1", "10", datetime.now(UTC), {"plate": "B-A 7"})
        assert await first.accept(InboxItem("enforcement", corrected, datetime.now(UTC))) == (InboxOutcome.CORRECTED, 2)
        taken = await first.take()  # taken, never acked: the process dies here
        assert [i.event.revision for i in taken] == [1, 2]
    finally:
        await first.aclose()
    again = RedisInbox.from_url(redis_url, prefix)
    again.consumer = first.consumer  # the same replica, restarted
    try:
        pending = await again.take()
        assert [(i.event.payload["plate"], i.event.revision) for i in pending] == [("B-A 1", 1), ("B-A 7", 2)]
        for item in pending:
            await again.ack(item)
        assert await again.take() == []
    finally:
        await again.aclose()
