"""Local days: "today" at a facility is its own calendar day, in its own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_day(now: datetime, time_zone: str) -> tuple[datetime, datetime]:
    """Start and end (UTC) of the local calendar day containing `now`, DST-aware."""
    zone = ZoneInfo(time_zone)
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time.min, zone)
    end = datetime.combine(day + timedelta(days=1), time.min, zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def every_local_today(now: datetime) -> tuple[datetime, datetime]:
    """A UTC window containing "today" in every time zone on Earth (UTC+14 to UTC−12).

    Asking a vendor once for this window, then picking each facility's own local day from
    the answer, makes one call per system however many time zones its facilities span.
    """
    start, _ = local_day(now, "Etc/GMT-14")  # the zone that starts each day first
    _, end = local_day(now, "Etc/GMT+12")  # and the one that ends it last
    return start, end
