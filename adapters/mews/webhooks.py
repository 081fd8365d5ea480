"""Mews-style PMS webhooks as the gateway receives them: the wire contract, verified and parsed.

The PMS POSTs to a URL that carries the shared token (`/webhooks/hotel-pms?token=<token>`)
and sends ids only:
    {"EnterpriseId": "...", "Events": [{"Discriminator": "ServiceOrderUpdated", "Value": {"Id": "<reservation id>"}}]}
A new reservation comes as ServiceOrderAdded and ServiceOrderUpdated together. Nothing in the
body says what happened or when: the gateway fetches the reservation (`MewsAdapter.expand_webhook`)
and takes the event from its state, so one change reported twice is one event.
There is no timestamp to hold a replay against; a replayed body only makes the gateway look again.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from adapters.errors import WebhookMalformed, WebhookRejected, webhook_json
from adapters.models import EventType, VendorEvent

TOKEN_PARAM = "token"
RESERVATION_DISCRIMINATORS = ("ServiceOrderAdded", "ServiceOrderUpdated")
MAX_EVENTS = 1000


def verify(token: str | None, query_params: Mapping[str, str], raw_body: bytes) -> list[VendorEvent]:
    """One unexpanded event per reservation named (type GUEST_BOOKED until expanded)."""
    if not token:
        raise WebhookRejected("no webhook token is configured for this system")
    if not hmac.compare_digest(query_params.get(TOKEN_PARAM, "").encode(), token.encode()):
        raise WebhookRejected("bad token")
    body = webhook_json(raw_body)
    enterprise, events = body.get("EnterpriseId"), body.get("Events")
    if not isinstance(enterprise, str) or not enterprise:
        raise WebhookMalformed("`EnterpriseId` must be a non-empty string")
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise WebhookMalformed(f"`Events` must be a list of at most {MAX_EVENTS}")
    ids: dict[str, None] = {}
    for index, event in enumerate(events):
        value = event.get("Value") if isinstance(event, dict) else None
        if not isinstance(value, dict) or not isinstance(event.get("Discriminator"), str):
            raise WebhookMalformed(f"`Events[{index}]` needs a Discriminator and a Value")
        if event["Discriminator"] in RESERVATION_DISCRIMINATORS:
            if not isinstance(value.get("Id"), str) or not value["Id"]:
                raise WebhookMalformed(f"`Events[{index}].Value.Id` must be a non-empty string")
            ids[value["Id"]] = None  # Added + Updated for one reservation: look once
    return [VendorEvent(EventType.GUEST_BOOKED, reservation_id, enterprise, None, {"reservation_id": reservation_id})
            for reservation_id in ids]
