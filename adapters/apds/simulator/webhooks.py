"""The APDS simulator's webhooks: the vendor's side of `adapters/apds/webhooks.py`.

Event bodies as the PARCS POSTs them, and `ApdsWebhooks`, which signs each one with the shared
secret at each delivery attempt (`adapters.apds.webhooks.signature`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from adapters.apds.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from adapters.apds.wire import format_time
from adapters.simulated.webhook_sender import WebhookSender


def event_body(kind: str, place_id: str, at: datetime, data: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": kind,
        "placeId": place_id,
        "occurredAt": format_time(at),
        "data": dict(data),
    }


def reservation_arrived(place_id: str, reservation_id: str, plate: str, arrived_at: datetime,
                        event_id: str | None = None) -> dict[str, Any]:
    """The event a reserved car's arrival sends."""
    data = {"reservationId": reservation_id, "plate": plate, "arrivedAt": format_time(arrived_at)}
    return event_body("reservation.arrived", place_id, arrived_at, data, event_id)


class ApdsWebhooks:
    """What the PARCS simulator sends: each event signed with the shared secret at each attempt."""

    def __init__(self, sender: WebhookSender, secret: str) -> None:
        self.sender = sender
        self.secret = secret

    def emit(self, body: Mapping[str, Any]) -> str:
        raw = orjson.dumps(body)

        def build() -> tuple[bytes, dict[str, str]]:
            timestamp = str(int(datetime.now().timestamp()))
            return raw, {"content-type": "application/json", TIMESTAMP_HEADER: timestamp,
                         SIGNATURE_HEADER: signature(self.secret, timestamp, raw)}

        self.sender.send(build)
        return str(body["id"])
