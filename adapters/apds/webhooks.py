"""APDS webhooks as the gateway receives them: the wire contract, verified and parsed.

The PARCS POSTs one JSON event per request:
    {"id", "type": "vehicle.entry" | "vehicle.exit" | "occupancy.changed" | "reservation.arrived",
     "placeId", "occurredAt", "data": {"plate", "lane", ...}}
(`reservation.arrived`: a reserved car entered; its data carries `reservationId`, `plate`, `arrivedAt`.)
with `X-APDS-Timestamp: <unix seconds>` and
`X-APDS-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`.
A timestamp more than `TOLERANCE` away from now is a replay: refused like a bad signature.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta

from adapters.apds.wire import WireError, parse_time
from adapters.errors import WebhookMalformed, WebhookRejected, webhook_json
from adapters.models import EventType, VendorEvent

TIMESTAMP_HEADER = "x-apds-timestamp"
SIGNATURE_HEADER = "x-apds-signature"
TOLERANCE = timedelta(minutes=5)

TYPES: dict[str, EventType] = {
    "vehicle.entry": EventType.VEHICLE_ENTERED,
    "vehicle.exit": EventType.VEHICLE_EXITED,
    "occupancy.changed": EventType.OCCUPANCY_CHANGED,
    "reservation.arrived": EventType.RESERVATION_ARRIVED,
}
#: data fields passed on, vendor name -> normalized name
FIELDS = {"plate": "plate", "lane": "lane", "occupied": "occupied", "free": "free", "capacity": "capacity",
          "reservationId": "reservation_id"}
#: data fields an event of that type is meaningless without
REQUIRED: dict[str, tuple[str, ...]] = {"reservation.arrived": ("reservationId", "plate")}


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The signature both sides compute (the simulator signs with it: simulator/webhooks.py)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str | None, headers: Mapping[str, str], raw_body: bytes, now: datetime) -> list[VendorEvent]:
    if not secret:
        raise WebhookRejected("no webhook secret is configured for this system")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    presented = headers.get(SIGNATURE_HEADER, "")
    if not hmac.compare_digest(presented.encode(), signature(secret, timestamp, raw_body).encode()):
        raise WebhookRejected("bad signature")
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > TOLERANCE.total_seconds():
        raise WebhookRejected("timestamp outside the tolerance (replayed or clock skew)")
    return [parse(raw_body)]


def parse(raw_body: bytes) -> VendorEvent:
    body = webhook_json(raw_body)
    event_id, kind, place_id = body.get("id"), body.get("type"), body.get("placeId")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        raise WebhookMalformed("`id` must be a non-empty string")
    if kind not in TYPES:
        raise WebhookMalformed(f"`type` must be one of {', '.join(TYPES)}")
    if not isinstance(place_id, str) or not place_id:
        raise WebhookMalformed("`placeId` must be a non-empty string")
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise WebhookMalformed("`data` must be an object")
    try:
        occurred_at = parse_time(body["occurredAt"], "occurredAt") if body.get("occurredAt") is not None else None
        if occurred_at is None and kind == "reservation.arrived" and data.get("arrivedAt") is not None:
            occurred_at = parse_time(data["arrivedAt"], "data.arrivedAt")  # the arrival is when it happened
    except WireError as exc:
        raise WebhookMalformed(str(exc)) from None
    payload: dict[str, object] = {}
    for name, normalized in FIELDS.items():
        value = data.get(name)
        if value is not None and (not isinstance(value, (str, int)) or isinstance(value, bool)):
            raise WebhookMalformed(f"`data.{name}` has an unexpected type")
        if value is not None:
            payload[normalized] = value
    for name in REQUIRED.get(kind, ()):
        if not isinstance(data.get(name), str) or not data[name]:
            raise WebhookMalformed(f"`data.{name}` must be a non-empty string for {kind}")
    level = data.get("level")
    return VendorEvent(TYPES[kind], event_id, place_id, occurred_at, payload,
                       zone_id=level if isinstance(level, str) and level else None)
