"""LPR platform webhooks, both sides of the wire.

The platform POSTs one JSON event per request with the shared secret as it is, in
`X-Webhook-Secret` (no signature). Events:
    {"eventId", "eventType": "CITATION_ISSUED" | "PLATE_READ", "timestamp": "yyyy-MM-dd'T'HH:mm:ssZ",
     "zoneCode", "plate", "plateRegion", "citationNumber", "violationCode", "status", ...}
When an officer corrects a misread plate, or the citation is voided, the platform re-sends the
event under the SAME `eventId` with the corrected plate or the new `status` (and a new
timestamp): the gateway treats that as an update, since the content differs.
`timestamp` is when the platform sent the event; one more than `TOLERANCE` away is a replay.
PLATE_READ (a camera sighting with no citation) is verified and accepted, but maps to no
gateway event.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from adapters.errors import WebhookMalformed, WebhookRejected, webhook_json
from adapters.lpr.wire import format_timestamp, parse_timestamp
from adapters.models import EventType, VendorEvent
from adapters.simulated.webhook_sender import WebhookSender

SECRET_HEADER = "x-webhook-secret"
TOLERANCE = timedelta(minutes=5)
EVENT_TYPES = ("CITATION_ISSUED", "PLATE_READ")
#: fields passed on, vendor name -> normalized name
FIELDS = {"plate": "plate", "plateRegion": "region", "citationNumber": "citation_number",
          "violationCode": "violation_code", "status": "status"}


# --- the gateway's side --------------------------------------------------------------------


def verify(secret: str | None, headers: Mapping[str, str], raw_body: bytes, now: datetime) -> list[VendorEvent]:
    if not secret:
        raise WebhookRejected("no webhook secret is configured for this system")
    if not hmac.compare_digest(headers.get(SECRET_HEADER, "").encode(), secret.encode()):
        raise WebhookRejected("bad secret")
    body = webhook_json(raw_body)
    try:
        sent_at = parse_timestamp(body.get("timestamp"))
    except ValueError as exc:
        raise WebhookMalformed(str(exc)) from None
    if abs(now - sent_at) > TOLERANCE:
        raise WebhookRejected("timestamp outside the tolerance (replayed or clock skew)")
    event_id, kind, zone = body.get("eventId"), body.get("eventType"), body.get("zoneCode")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        raise WebhookMalformed("`eventId` must be a non-empty string")
    if kind not in EVENT_TYPES:
        raise WebhookMalformed(f"`eventType` must be one of {', '.join(EVENT_TYPES)}")
    if not isinstance(zone, str) or not zone:
        raise WebhookMalformed("`zoneCode` must be a non-empty string")
    payload: dict[str, object] = {}
    for name, normalized in FIELDS.items():
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise WebhookMalformed(f"`{name}` must be a string")
        if value is not None:
            payload[normalized] = value
    if kind == "PLATE_READ":
        return []
    if "citation_number" not in payload or "plate" not in payload:
        raise WebhookMalformed("a CITATION_ISSUED event needs `citationNumber` and `plate`")
    return [VendorEvent(EventType.CITATION_ISSUED, event_id, zone, sent_at, payload)]


# --- the vendor's side (the simulator) -----------------------------------------------------


def citation_event(zone_code: str, citation: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A CITATION_ISSUED event for a citation as the platform renders it (`SimCitation.to_wire()`).

    Re-send a changed citation (corrected plate, voided) under its first event's `event_id`.
    """
    return {
        "eventId": event_id or str(uuid.uuid4()),
        "eventType": "CITATION_ISSUED",
        "zoneCode": zone_code,
        **{name: citation.get(name) for name in FIELDS},
    }


class LprWebhooks:
    """What the LPR simulator sends: the static secret in a header; `timestamp` set at each attempt."""

    def __init__(self, sender: WebhookSender, secret: str) -> None:
        self.sender = sender
        self.secret = secret

    def emit(self, event: Mapping[str, Any]) -> str:
        def build() -> tuple[bytes, dict[str, str]]:
            body = {**event, "timestamp": format_timestamp(datetime.now(UTC))}
            return orjson.dumps(body), {"content-type": "application/json", SECRET_HEADER: self.secret}

        self.sender.send(build)
        return str(event["eventId"])
