"""The LPR platform's wire formats, shared by its adapter and its simulator.

Two clocks meet here. The platform's own timestamps are Java `yyyy-MM-dd'T'HH:mm:ssZ`
(an RFC 822 offset with no colon: `2026-11-27T09:14:03+0000`). Citations instead carry what
the handheld printed on the ticket: the zone's local date (`2026-11-27`) and a 12-hour time
to the minute with an A/P suffix (`0143A`, `1207P`). Only the zone's time zone turns the
latter into an instant, so both directions take one.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

API = "/api/v1"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}")
_ISSUE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISSUE_TIME = re.compile(r"(\d{2})(\d{2})([AP])")


def format_timestamp(at: datetime) -> str:
    """An aware instant as `2026-11-27T09:14:03+0000` (always rendered in UTC)."""
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def parse_timestamp(text: object) -> datetime:
    """Strictly `yyyy-MM-dd'T'HH:mm:ssZ`; `strptime` alone would also take `Z` and `+00:00`."""
    if not isinstance(text, str) or not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"not a yyyy-MM-dd'T'HH:mm:ssZ timestamp: {text!r}")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


def format_issue_time(local: time) -> str:
    """A local wall time as the handheld prints it: `0143A`, `1207P`, `1200A` for 00:00."""
    hour12 = local.hour % 12 or 12
    return f"{hour12:02d}{local.minute:02d}{'P' if local.hour >= 12 else 'A'}"


def parse_issue_time(text: str) -> time:
    """`hhmmA`/`hhmmP` on a 12-hour clock (hh 01..12), to a 24-hour wall time."""
    match = _ISSUE_TIME.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not an hhmm[A|P] issue time: {text!r}")
    hour12, minute, half = int(match[1]), int(match[2]), match[3]
    if not 1 <= hour12 <= 12 or minute > 59:
        raise ValueError(f"impossible issue time: {text!r}")
    # 12 A is the midnight hour and 12 P the noon hour: the 12-hour clock's one trap.
    return time(hour12 % 12 + (12 if half == "P" else 0), minute)


def parse_issue_date(text: str) -> date:
    if not isinstance(text, str) or not _ISSUE_DATE.fullmatch(text):
        raise ValueError(f"not a yyyy-MM-dd issue date: {text!r}")
    return date.fromisoformat(text)


def issued_at(issue_date: str, issue_time: str, zone: ZoneInfo) -> datetime:
    """The UTC instant of a handheld's local date and time in the zone's time zone.

    Local times that repeat when clocks go back take their first occurrence (fold=0);
    times that do not exist when clocks go forward take the offset in force before the
    change, as a handheld that had not switched yet would have meant. Either way the
    citation stands: losing it would be worse than an hour's doubt.
    """
    local = datetime.combine(parse_issue_date(issue_date), parse_issue_time(issue_time), tzinfo=zone)
    return local.astimezone(UTC)


def render_issue(at: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """An instant as the handheld would print it in the zone: (issueDate, issueTime)."""
    local = at.astimezone(zone)
    return local.date().isoformat(), format_issue_time(local.time())
