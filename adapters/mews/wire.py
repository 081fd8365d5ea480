"""The Mews-style Connector API's wire formats, shared by its adapter and its simulator.

Every call is `POST {API}/<resource>/<operation>` with the tokens in the JSON body. Instants
are UTC with milliseconds and a `Z` (`2026-11-27T14:00:00.000Z`), in fields named `…Utc`.
Lists page by a cursor in the body, newest first.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

API = "/api/connector/v1"
ENTERPRISES = "enterprises/getAll"
RESERVATIONS = "reservations/getAll/2023-06-06"
CUSTOMERS = "customers/getAll"
MAX_COUNT = 1000  # Limitation.Count and the number of ids one call may name

# The vendor's fraction has up to 7 digits (.NET ticks); Python keeps 6.
_UTC = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?Z")


def format_utc(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_utc(text: object) -> datetime:
    """Strictly a UTC instant with a `Z`; an offset or a missing zone is refused, not guessed."""
    match = _UTC.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a UTC instant like 2026-11-27T14:00:00.000Z: {text!r}")
    micros = int((match[2] or "0").ljust(6, "0")[:6])
    return datetime.fromisoformat(match[1]).replace(microsecond=micros, tzinfo=UTC)
