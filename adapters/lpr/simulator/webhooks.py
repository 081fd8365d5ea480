"""The LPR simulator's webhooks: the platform's side of `adapters/lpr/webhooks.py`.

CITATION_ISSUED events as the platform POSTs them, and `LprWebhooks`, which sends each one with
the static secret in a header and a fresh `timestamp` at each delivery attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.lpr.webhooks import FIELDS, SECRET_HEADER
from adapters.lpr.wire import format_timestamp
from adapters.simulated.webhook_sender import WebhookSender


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
