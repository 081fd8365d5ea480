"""The Mews Connector API's wire contract, shared by its adapter and its simulator.

Every operation is `POST {PlatformAddress}{API}/<resource>/<action>` with `ClientToken`,
`AccessToken` and `Client` in the JSON body (no header carries a secret). Lists page by
`Limitation {Count, Cursor}` and answer `{<items>, "Cursor"}`, newest first. Instants are UTC,
`YYYY-MM-DDThh:mm:ssZ`, in fields named `…Utc`; an interval `{StartUtc, EndUtc}` includes both
ends. Errors answer `{"Message", "RequestId"?, "Details"?}`. The operations and names here are
those of the reference pages (`operations/reservations.md` ver 2023-06-06, `customers.md`,
`enterprises.md`, `events/wh-general.md`); the tests hold their examples as fixtures.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: below the PlatformAddress (the system's base_url), every operation's path
API = "/api/connector/v1"
ENTERPRISES = "enterprises/getAll"
RESERVATIONS = "reservations/getAll/2023-06-06"
CUSTOMERS = "customers/getAll"
MAX_COUNT = 1000  # Limitation.Count, and the ids one filter may name
MAX_INTERVAL_MONTHS = 3  # the longest time-interval filter

#: Service order state: every value the 2023-06-06 Reservation documents
STATES = ("Inquired", "Confirmed", "Started", "Processed", "Canceled", "Optional", "Requested")
#: what `customers/getAll` must be told to return: the customers themselves (their car
#: registration is a Customer field), not their addresses; `Documents` is deprecated, not sent
CUSTOMER_EXTENT = {"Customers": True, "Addresses": False}

#: General Webhooks: the event that names a reservation (a Service Order) that changed
SERVICE_ORDER_UPDATED = "ServiceOrderUpdated"
#: every documented discriminator; each carries `Value: {"Id"}` of the entity
EVENT_DISCRIMINATORS = ("ServiceOrderUpdated", "ResourceUpdated", "MessageAdded", "ResourceBlockUpdated",
                        "CustomerAdded", "CustomerUpdated", "PaymentUpdated")

# The documented format has no fraction; a fraction (up to 7 digits, .NET ticks) is read, not sent.
_UTC = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?Z")


def format_utc(at: datetime) -> str:
    """`YYYY-MM-DDThh:mm:ssZ`, the API's datetime (serialization.md); sub-seconds are dropped."""
    if at.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: object) -> datetime:
    """Strictly a UTC instant with a `Z`; an offset or a missing zone is refused, not guessed."""
    match = _UTC.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a UTC instant like 2026-11-27T14:00:00Z: {text!r}")
    micros = int((match[2] or "0").ljust(6, "0")[:6])
    return datetime.fromisoformat(match[1]).replace(microsecond=micros, tzinfo=UTC)
