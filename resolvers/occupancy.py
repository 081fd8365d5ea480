"""Occupancy: the PARCS-counted figure and the sensed figure, side by side, one of them served.

PARCS counts entries and exits at the gates; bay sensors count cars. Both are shown, with
the discrepancy between them, because an operator wants to see a counter drifting. The
served figure is the preferred method's when it is live, else whichever is live, else the
freshest there is. Vendor quirks are kept visible rather than hidden: a negative or
inconsistent `free` is reported as `reportedFree` with a consistency flag, while `free`
is what an app can display.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from adapters import models
from gateway.directory import SystemRef
from gateway.errors import ErrorCode, GatewayError
from gateway.kernel.context import Info, RequestContext
from gateway.loaders import Indexed
from gateway.systems import OCCUPANCY
from resolvers.common import OccupancyMethod, OccupancyStatus, Trend

ALMOST_FULL_PERCENT = 90.0


@strawberry.enum(description="How current a figure is: LIVE within the configured age, STALE older, NO_DATA when there is none.")
class Freshness(Enum):
    LIVE = "LIVE"
    STALE = "STALE"
    NO_DATA = "NO_DATA"


@strawberry.enum(description="Ways a vendor's figure disagrees with itself.")
class ConsistencyIssue(Enum):
    NEGATIVE_FREE = strawberry.enum_value("NEGATIVE_FREE", description="The vendor reported fewer than zero free spaces.")
    FREE_MISMATCH = strawberry.enum_value(
        "FREE_MISMATCH", description="The vendor's free count is not capacity minus occupied."
    )
    OVER_CAPACITY = strawberry.enum_value("OVER_CAPACITY", description="More vehicles counted than there are spaces.")


@strawberry.type(description="One system's occupancy figure, as measured by that system.")
class OccupancyFigure:
    method: OccupancyMethod = strawberry.field(description="COUNTED at the gates or SENSED per bay.")
    source: str = strawberry.field(description="Id of the system that measured it.")
    capacity: int | None = strawberry.field(description="Spaces the system knows of.")
    occupied: int | None = strawberry.field(description="Vehicles present, by this system's measure.")
    free: int | None = strawberry.field(description="Free spaces to display: capacity − occupied, never below 0.")
    reported_free: int | None = strawberry.field(
        description="Free spaces exactly as the vendor reported them (may be negative); null when the vendor reports none."
    )
    percent_occupied: float | None = strawberry.field(description="Occupied as a percentage of capacity (may exceed 100).")
    status: OccupancyStatus = strawberry.field(description="Availability status.")
    trend: Trend = strawberry.field(description="Filling, emptying or steady, where the system reports it.")
    observed_at: datetime | None = strawberry.field(
        description="When the vendor observed it, by the vendor's own clock; null when the vendor gave no time (never invented)."
    )
    received_at: datetime = strawberry.field(description="When parkgate received it from the vendor.")
    freshness: Freshness = strawberry.field(description="LIVE or STALE, by the age of the observation.")
    age_seconds: int = strawberry.field(
        description="Seconds since observedAt, or since receivedAt when the vendor gave no time."
    )
    entries: int | None = strawberry.field(description="Gate entry counter, where the system counts.")
    exits: int | None = strawberry.field(description="Gate exit counter, where the system counts.")
    consistency: list[ConsistencyIssue] = strawberry.field(description="Ways this figure disagrees with itself; empty when it is sound.")


def derive_status(vendor: models.OccupancyStatus | None, percent: float | None) -> models.OccupancyStatus:
    """CLOSED and UNKNOWN from the vendor stand; otherwise the counts decide; otherwise the vendor's word."""
    if vendor in (models.OccupancyStatus.CLOSED, models.OccupancyStatus.UNKNOWN):
        return vendor
    if percent is not None:
        if percent >= 100:
            return models.OccupancyStatus.FULL
        if percent >= ALMOST_FULL_PERCENT:
            return models.OccupancyStatus.ALMOST_FULL
        return models.OccupancyStatus.SPACES_AVAILABLE
    return vendor or models.OccupancyStatus.UNKNOWN


def figure_from(reading: models.OccupancyReading, system_id: str, now: datetime, live_seconds: int,
                fallback_capacity: int | None = None, stale: bool = False) -> OccupancyFigure:
    """One reading as a figure; `stale` when it is a cached answer past its TTL (always STALE)."""
    capacity = reading.capacity if reading.capacity is not None else fallback_capacity
    occupied = reading.occupied
    issues: list[ConsistencyIssue] = []
    derived_free = None if capacity is None or occupied is None else capacity - occupied
    if reading.free is not None:
        if reading.free < 0:
            issues.append(ConsistencyIssue.NEGATIVE_FREE)
        if derived_free is not None and reading.free != derived_free:
            issues.append(ConsistencyIssue.FREE_MISMATCH)
    if capacity is not None and occupied is not None and occupied > capacity:
        issues.append(ConsistencyIssue.OVER_CAPACITY)
    free_basis = derived_free if derived_free is not None else reading.free
    percent = round(occupied * 100 / capacity, 1) if capacity and occupied is not None else None
    seen = reading.observed_at or reading.received_at
    age = max(0, int((now - seen).total_seconds()))
    return OccupancyFigure(
        method=reading.method,
        source=system_id,
        capacity=capacity,
        occupied=occupied,
        free=None if free_basis is None else max(0, free_basis),
        reported_free=reading.free,
        percent_occupied=percent,
        status=derive_status(reading.status, percent),
        trend=reading.trend,
        observed_at=reading.observed_at,
        received_at=reading.received_at,
        freshness=Freshness.LIVE if age <= live_seconds and not stale else Freshness.STALE,
        age_seconds=age,
        entries=reading.entries,
        exits=reading.exits,
        consistency=issues,
    )


@dataclass
class Part:
    """One system's contribution: its figure, or the error that took its place."""

    figure: OccupancyFigure | None = None
    error: GatewayError | None = None
    #: the system's answer, when it is a stale one served because the system failed
    stale_source: Indexed[Any] | None = None

    def get(self, info: Info) -> OccupancyFigure | None:
        if self.error is not None:
            raise self.error
        if self.stale_source is not None:
            info.context.served_stale(self.stale_source, info)
        return self.figure


@strawberry.type(description="Occupancy of a facility or level: the served figure, and each system's own figure beside it.")
class Occupancy:
    capacity: int | None = strawberry.field(description="Capacity, from the served figure.")
    occupied: int | None = strawberry.field(description="Vehicles present, from the served figure.")
    free: int | None = strawberry.field(description="Free spaces to display, from the served figure (never below 0).")
    percent_occupied: float | None = strawberry.field(description="Occupied as a percentage of capacity.")
    status: OccupancyStatus = strawberry.field(description="Availability status of the served figure.")
    trend: Trend = strawberry.field(description="Trend, from whichever figure reports one.")
    observed_at: datetime | None = strawberry.field(description="Vendor time of the served figure; null when the vendor gave none.")
    received_at: datetime | None = strawberry.field(description="When parkgate received the served figure.")
    freshness: Freshness = strawberry.field(description="Freshness of the served figure; NO_DATA when no system answered.")
    age_seconds: int | None = strawberry.field(description="Age of the served figure in seconds.")
    served: OccupancyMethod | None = strawberry.field(description="Which figure the top-level fields come from.")
    discrepancy: int | None = strawberry.field(
        description="Counted minus sensed occupied vehicles, when both exist: a drifting gate counter shows here."
    )
    counted_part: strawberry.Private[Part]
    sensed_part: strawberry.Private[Part]

    @strawberry.field(description="The figure counted at the gates by the PARCS; null with an error when that system failed "
                                  "(its last good figure, STALE, with an error while that is recent enough).")
    def counted(self, info: Info) -> OccupancyFigure | None:
        return self.counted_part.get(info)

    @strawberry.field(description="The figure sensed per bay by the guidance system; null with an error when that system "
                                  "failed (its last good figure, STALE, with an error while that is recent enough).")
    def sensed(self, info: Info) -> OccupancyFigure | None:
        return self.sensed_part.get(info)

    def note_stale(self, info: Info) -> None:
        """The served figure is a failing system's last good answer: say so at this path too."""
        for part in (self.counted_part, self.sensed_part):
            if part.stale_source is not None and part.figure is not None and part.figure.method == self.served:
                info.context.served_stale(part.stale_source, info)


async def load_part(ctx: RequestContext, ref: SystemRef | None, facility_ref: SystemRef | None,
                    fallback_capacity: int | None) -> Part:
    """One system's figure for a facility (facility_ref) or one of its levels (ref differs)."""
    if ref is None or facility_ref is None:
        return Part()
    zone_id = None if ref is facility_ref else ref.vendor_id
    try:
        readings = await ctx.load_record(ref.system_id, OCCUPANCY, (facility_ref.vendor_id, zone_id))
    except GatewayError as exc:
        return Part(error=exc)
    reading = readings.items.get((facility_ref.vendor_id, zone_id))
    if reading is None:
        record_ref = facility_ref.vendor_id if zone_id is None else zone_id
        bad = readings.errors.get(record_ref) or readings.errors.get(facility_ref.vendor_id)
        if bad is None and zone_id is not None:
            return Part()  # the system knows the level but does not measure it (a PARCS counts per facility)
        message = (
            f"Source {ref.system_id!r} sent an unreadable record for {record_ref!r}: {bad.message}"
            if bad else f"Source {ref.system_id!r} has no occupancy for {record_ref!r}."
        )
        return Part(error=GatewayError(ErrorCode.UPSTREAM_ERROR, message, system=ref.system_id))
    live = ctx.config.occupancy.live_seconds
    # STALE means "the source failed and this is its last good answer"; an answer merely being
    # revalidated in the background is as live as its age says.
    failing = readings.stale and readings.error is not None
    figure = figure_from(reading, ref.system_id, ctx.now, live, fallback_capacity, stale=failing)
    return Part(figure=figure, stale_source=readings if failing else None)


def merge(counted: Part, sensed: Part, prefer: str) -> Occupancy | None:
    """The served figure and both parts; None when no system measures the place at all."""
    figures = [p.figure for p in ((sensed, counted) if prefer == "SENSED" else (counted, sensed)) if p.figure]
    live = [f for f in figures if f.freshness is Freshness.LIVE]
    served = live[0] if live else min(figures, key=lambda f: f.age_seconds, default=None)
    if served is None:
        error = counted.error or sensed.error
        if error is not None:
            raise error  # every system that measures it failed: the occupancy itself is unknown
        return None
    trend = next((f.trend for f in figures if f.trend is not models.Trend.UNKNOWN), models.Trend.UNKNOWN)
    discrepancy = None
    if counted.figure and sensed.figure and counted.figure.occupied is not None and sensed.figure.occupied is not None:
        discrepancy = counted.figure.occupied - sensed.figure.occupied
    return Occupancy(
        capacity=served.capacity,
        occupied=served.occupied,
        free=served.free,
        percent_occupied=served.percent_occupied,
        status=served.status,
        trend=trend,
        observed_at=served.observed_at,
        received_at=served.received_at,
        freshness=served.freshness,
        age_seconds=served.age_seconds,
        served=served.method,
        discrepancy=discrepancy,
        counted_part=counted,
        sensed_part=sensed,
    )
