"""A facility's occupancy over time, bucketed for charts: `Facility.occupancyHistory(from, to, interval)`.

The figures come from the history the event path keeps (gateway/occupancy_history.py): every
facility-level figure a system reported, by webhook or poll. The answer is columnar — one list of
bucket times, and per system one list of values at those times — because that is what a chart
draws, and because lists of numbers cost nothing more to send than they weigh: the field costs a
fixed `HISTORY_COST` points (one store read) whatever the range. A bucket holds the figure the
system showed at its end (the last one reported up to then, carried forward), or null before the
system reported any.
"""

from __future__ import annotations

import bisect
import math
from datetime import UTC, datetime, timedelta

import strawberry

from adapters.models import SystemKind
from gateway.directory import FacilityEntry
from gateway.errors import bad_input
from gateway.kernel.context import Info
from gateway.occupancy_history import Sample
from resolvers.common import OccupancyMethod

#: points the field costs: one read of the store, whatever the range
HISTORY_COST = 10
MIN_INTERVAL_S = 10
MAX_BUCKETS = 1440  # a day at one minute, a week at seven
MAX_RANGE = timedelta(days=7)


@strawberry.type(description="One system's figures at each bucket of an occupancy history.")
class OccupancySeries:
    source: str = strawberry.field(description="Id of the system that measured them.")
    method: OccupancyMethod | None = strawberry.field(
        description="COUNTED at the gates (a PARCS) or SENSED per bay (a guidance system); null for another kind of system.")
    occupied: list[int | None] = strawberry.field(
        description="Vehicles present at the end of each bucket (the last figure reported by then); null before the first.")
    free: list[int | None] = strawberry.field(description="Free spaces at the end of each bucket, never below 0; null where unknown.")
    percent_occupied: list[float | None] = strawberry.field(
        description="Occupied as a percentage of capacity at the end of each bucket; null where unknown.")
    capacity: int | None = strawberry.field(description="Capacity in the latest figure of the range, if it gave one.")


@strawberry.type(description="A facility's occupancy over a time range, in equal buckets, per measuring system.")
class OccupancyHistory:
    start: datetime = strawberry.field(name="from", description="Start of the first bucket (`from`, rounded down to the interval).")
    end: datetime = strawberry.field(name="to", description="The end of the range, as asked.")
    interval_seconds: int = strawberry.field(description="Length of each bucket in seconds.")
    at: list[datetime] = strawberry.field(description="End of each bucket (UTC instants), oldest first; the values below are "
                                                      "indexed alike.")
    series: list[OccupancySeries] = strawberry.field(
        description="One series per system that reported figures up to the end of the range; empty when none did.")


def check_range(start: datetime, end: datetime, interval_s: int) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise bad_input("`from` and `to` need a UTC offset, e.g. 2026-12-05T00:00:00Z.", argument="from")
    if interval_s < MIN_INTERVAL_S:
        raise bad_input(f"`interval` is in seconds, at least {MIN_INTERVAL_S}.", argument="interval")
    if end <= start or end - start > MAX_RANGE:
        raise bad_input(f"`to` must be after `from`, at most {MAX_RANGE.days} days later.", argument="to")
    if (end - start).total_seconds() / interval_s > MAX_BUCKETS:
        raise bad_input(f"At most {MAX_BUCKETS} buckets: widen `interval` or narrow the range.", argument="interval")


def bucket_ends(start: datetime, end: datetime, interval_s: int) -> tuple[datetime, list[datetime]]:
    """(the first bucket's start, aligned to the interval since the epoch; each bucket's end, the last one `end`)."""
    first = datetime.fromtimestamp(math.floor(start.timestamp() / interval_s) * interval_s, UTC)
    ends: list[datetime] = []
    edge = first + timedelta(seconds=interval_s)
    while edge < end:
        ends.append(edge)
        edge += timedelta(seconds=interval_s)
    ends.append(end.astimezone(UTC))
    return first, ends


def series_of(source: str, method: OccupancyMethod | None, samples: list[Sample], ends: list[datetime]) -> OccupancySeries:
    """`samples`: this source's, in time order, the first possibly from before the range (the carried figure)."""
    times = [s.at for s in samples]
    occupied: list[int | None] = []
    free: list[int | None] = []
    percent: list[float | None] = []
    for edge in ends:
        index = bisect.bisect_right(times, edge) - 1
        sample = samples[index] if index >= 0 else None
        occupied.append(sample.occupied if sample else None)
        free.append(sample.free if sample else None)
        percent.append(round(sample.occupied * 100 / sample.capacity, 1)
                       if sample and sample.occupied is not None and sample.capacity else None)
    capacity = next((s.capacity for s in reversed(samples) if s.capacity is not None), None)
    return OccupancySeries(source=source, method=method, occupied=occupied, free=free, percent_occupied=percent,
                           capacity=capacity)


METHOD_OF_KIND = {SystemKind.PARCS: OccupancyMethod.COUNTED, SystemKind.GUIDANCE: OccupancyMethod.SENSED}


async def occupancy_history(info: Info, entry: FacilityEntry, start: datetime, end: datetime, interval_s: int) -> OccupancyHistory:
    check_range(start, end, interval_s)
    first, ends = bucket_ends(start, end, interval_s)
    inside, before = await info.context.runtime.history.read(entry.id, first, end)
    methods = {ref.system_id: METHOD_OF_KIND.get(kind) for kind, ref in entry.refs.items()}
    by_source: dict[str, list[Sample]] = {}
    for sample in [*before, *inside]:
        by_source.setdefault(sample.source, []).append(sample)
    return OccupancyHistory(
        start=first, end=end, interval_seconds=interval_s, at=ends,
        series=[series_of(source, methods.get(source), samples, ends) for source, samples in sorted(by_source.items())],
    )
