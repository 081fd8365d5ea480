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
