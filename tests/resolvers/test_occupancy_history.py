"""`Facility.occupancyHistory`: fed by the event path, bucketed for charts, scoped like occupancy,
bounded in its store (memory and Redis alike), refusing ranges it cannot answer with BAD_USER_INPUT."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.models import EventType
from gateway.occupancy_history import MemoryHistory, OccupancyHistory, RedisHistory, Sample
from gateway.redis_connect import connect
from resolvers.occupancy_history import MAX_BUCKETS, bucket_ends
from tests.support.bed import Bed
from tests.support.waiting import first_event, wait_until

HISTORY = """query($id: ID!, $from: DateTime!, $to: DateTime!, $interval: Int!) {
  facility(id: $id) { occupancyHistory(from: $from, to: $to, interval: $interval) {
    from to intervalSeconds at series { source method occupied free percentOccupied capacity } } } }"""


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def history(bed: Bed, facility: str, start: datetime, end: datetime, interval: int, client: str = "admin") -> dict[str, Any]:
    return await bed.graphql(HISTORY, {"id": facility, "from": iso(start), "to": iso(end), "interval": interval}, client=client)


async def test_a_simulated_entry_is_the_last_figure_of_the_day_curve(bed: Bed) -> None:
    events = bed.sandbox.runtime.bus.subscribe()
    try:
        await bed.simulate("parcs-central", event="entry", facility_id="berlin-hbf", plate="B-HI 1")
        event = await first_event(events, lambda e: e.type is EventType.OCCUPANCY_CHANGED and e.facility_id == "berlin-hbf"
                                  and e.zone_id is None and e.system_id == "parcs-central")
    finally:
        await events.aclose()
    got: dict[str, Any] = {}

    async def charted() -> bool:  # the recorder, another subscriber of the bus, keeps it a moment later
        now = datetime.now(UTC)
        answer = await history(bed, "berlin-hbf", now - timedelta(hours=1), now + timedelta(seconds=5), 60, client="dashboard")
        assert "errors" not in answer, answer
        got.update(answer["data"]["facility"]["occupancyHistory"])
        # buckets start on a whole minute before `from` and the last ends at `to`: 61, or 62 when `to`
        # passes the next whole minute
        got["buckets"] = math.ceil((now + timedelta(seconds=5) - (now - timedelta(hours=1)).replace(second=0, microsecond=0))
                                   / timedelta(minutes=1))
        series = [s for s in got["series"] if s["source"] == "parcs-central"]
        return bool(series) and series[0]["occupied"][-1] == event.payload["occupied"]

    await wait_until(charted, 5, every_s=0.1, message="the entry's figure is not the last of the curve")
    assert got["intervalSeconds"] == 60 and len(got["at"]) == got["buckets"]
    [parcs] = [s for s in got["series"] if s["source"] == "parcs-central"]
    assert parcs["method"] == "COUNTED"
    assert all(len(parcs[name]) == len(got["at"]) for name in ("occupied", "free", "percentOccupied"))
    assert parcs["free"][-1] == max(0, parcs["capacity"] - event.payload["occupied"])


async def test_history_is_scoped_like_occupancy(bed: Bed) -> None:
    now = datetime.now(UTC)
    # finance sees facilities but lacks occupancy:read: null with FORBIDDEN at the field
    answer = await history(bed, "berlin-hbf", now - timedelta(hours=1), now, 60, client="finance-readonly")
    assert answer["data"]["facility"]["occupancyHistory"] is None
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert answer["errors"][0]["path"] == ["facility", "occupancyHistory"]
    # the handheld's client is limited to three facilities: London's history is as invisible as London
    outside = await history(bed, "london-southbank", now - timedelta(hours=1), now, 60, client="enforcement-handheld")
    assert outside["data"]["facility"] is None


@pytest.mark.parametrize(("start", "end", "interval", "argument"), [
    (0, 3600, 5, "interval"),                   # buckets under 10 s
    (3600, 0, 60, "to"),                        # backwards
    (0, 8 * 86400, 3600, "to"),                 # over a week
    (0, 86400, 30, "interval"),                 # 2880 buckets
])
async def test_ranges_it_cannot_answer_are_bad_user_input(bed: Bed, start: int, end: int, interval: int, argument: str) -> None:
    origin = datetime(2026, 12, 1, tzinfo=UTC)
    answer = await history(bed, "berlin-hbf", origin + timedelta(seconds=start), origin + timedelta(seconds=end), interval)
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["argument"] == argument


async def test_the_field_costs_a_fixed_price_whatever_the_range(bed: Bed) -> None:
    now = datetime.now(UTC)
    short = await history(bed, "berlin-hbf", now - timedelta(minutes=10), now, 60)
    long = await history(bed, "berlin-hbf", now - timedelta(days=1), now, 60)
    assert short["extensions"]["cost"]["requestedQueryCost"] == long["extensions"]["cost"]["requestedQueryCost"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
       span_s=st.integers(1, 7 * 86400), interval=st.integers(10, 86400))
def test_buckets_cover_the_range_end_to_end(start: datetime, span_s: int, interval: int) -> None:
    end = start + timedelta(seconds=span_s)
    if span_s / interval > MAX_BUCKETS:
        return  # refused before bucketing
    first, ends = bucket_ends(start, end, interval)
    assert first <= start < first + timedelta(seconds=interval)
    assert ends[-1] == end and ends == sorted(ends) and len(set(ends)) == len(ends)
    assert all((b - a).total_seconds() <= interval for a, b in zip([first, *ends], ends, strict=False))


def sample(at: datetime, occupied: int, source: str = "parcs-central", event_id: str | None = None) -> Sample:
    return Sample(at=at, event_id=event_id or uuid.uuid4().hex, source=source, occupied=occupied, free=100 - occupied,
                  capacity=100)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        made: OccupancyHistory = MemoryHistory(retention_s=3600, max_samples=5)
    else:
        made = RedisHistory(connect(request.getfixturevalue("redis_url"), timeout_s=2.0), f"hist-{uuid.uuid4().hex[:8]}:",
                            retention_s=3600, max_samples=5)
    yield made
    await made.aclose()


async def test_the_store_keeps_a_bounded_window_and_the_figure_before_it(store: OccupancyHistory) -> None:
    now = datetime.now(UTC)
    await store.record("f", sample(now - timedelta(hours=2), 1))          # older than the retention: dropped
    for minute in range(8):                                              # 8 samples, at most 5 kept
        await store.record("f", sample(now - timedelta(minutes=10 - minute), 10 + minute))
    await store.record("f", sample(now - timedelta(minutes=9), 99, source="guidance"))
    twice = sample(now - timedelta(minutes=1), 50, event_id="same")
    await store.record("f", twice)
    await store.record("f", twice)                                       # a redelivery is one sample
    inside, before = await store.read("f", now - timedelta(minutes=5, seconds=30), now)
    assert [s.occupied for s in inside] == [15, 16, 17, 50]
    assert [(s.source, s.occupied) for s in before] == [("parcs-central", 14)]  # guidance's figure fell off the bound
    assert await store.read("other", now - timedelta(hours=1), now) == ([], [])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)),
       span_s=st.integers(-86400, 9 * 86400), interval=st.integers(-(2**31), 2**31 - 1))
async def test_any_range_is_answered_or_refused_as_bad_user_input(bed: Bed, start: datetime, span_s: int, interval: int) -> None:
    answer = await history(bed, "berlin-hbf", start, start + timedelta(seconds=span_s), interval)
    if "errors" in answer:
        assert {e["extensions"]["code"] for e in answer["errors"]} == {"BAD_USER_INPUT"}, answer
    else:
        got = answer["data"]["facility"]["occupancyHistory"]
        assert len(got["at"]) <= MAX_BUCKETS + 1 and got["intervalSeconds"] == interval
