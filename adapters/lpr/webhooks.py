"""LPR platform webhooks as the gateway receives them: the wire contract, verified and parsed.

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
from collections.abc import Mapping
from datetime import datetime, timedelta

from adapters.errors import WebhookMalformed, WebhookRejected, webhook_json
from adapters.lpr.wire import parse_timestamp
from adapters.models import EventType, VendorEvent

SECRET_HEADER = "x-webhook-secret"
TOLERANCE = timedelta(minutes=5)
EVENT_TYPES = ("CITATION_ISSUED", "PLATE_READ")
#: fields passed on, vendor name -> normalized name
FIELDS = {"plate": "plate", "plateRegion": "region", "citationNumber": "citation_number",
          "violationCode": "violation_code", "status": "status"}


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
