"""Mews General Webhooks as the gateway receives them: verified and parsed (events/wh-general.md).

One delivery is one enterprise integration's simultaneous events, ids only:

    {"EnterpriseId": "…", "IntegrationId": "…",
     "Events": [{"Discriminator": "ServiceOrderUpdated", "Value": {"Id": "<reservation id>"}}, …]}

parkgate acts on `ServiceOrderUpdated` (a reservation changed; Added is a subset of Updated and
only Customers have it); the other documented discriminators (resources, messages, resource
blocks, customers, payments) are read and let go, as are discriminators Mews adds later.
Nothing in the body says what happened or when: the gateway fetches each reservation named
(`MewsAdapter.expand_webhook`) and takes the event from its state, so one change reported twice
is one event.

Authentication: General Webhooks carry no signature. Mews's Webhooks FAQ offers a shared secret
token in the URL it posts to; parkgate's is the system's `webhook_token` credential as
`?token=<webhook_token>`, the URL the operator registers with Mews
(`https://<gateway>/webhooks/<system id>?token=…`). There is no timestamp to hold a replay
against; a replayed body only makes the gateway look again.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from adapters.errors import WebhookMalformed, WebhookRejected, webhook_json
from adapters.mews.wire import EVENT_DISCRIMINATORS, SERVICE_ORDER_UPDATED
from adapters.models import EventType, VendorEvent

TOKEN_PARAM = "token"
MAX_EVENTS = 1000


def verify(token: str | None, query_params: Mapping[str, str], raw_body: bytes) -> list[VendorEvent]:
    """One unexpanded event per reservation named (type GUEST_BOOKED until expanded), for its enterprise."""
    if not token:
        raise WebhookRejected("no webhook token is configured for this system")
    if not hmac.compare_digest(query_params.get(TOKEN_PARAM, "").encode(), token.encode()):
        raise WebhookRejected("bad token")
    body = webhook_json(raw_body)
    enterprise = _id(body.get("EnterpriseId"), "EnterpriseId")
    integration = _id(body.get("IntegrationId"), "IntegrationId")
    events = body.get("Events")
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise WebhookMalformed(f"`Events` must be a list of at most {MAX_EVENTS}")
    reservations: dict[str, None] = {}
    for index, event in enumerate(events):
        discriminator = event.get("Discriminator") if isinstance(event, dict) else None
        value = event.get("Value") if isinstance(event, dict) else None
        if not isinstance(discriminator, str) or not isinstance(value, dict):
            raise WebhookMalformed(f"`Events[{index}]` needs a Discriminator and a Value")
        if discriminator in EVENT_DISCRIMINATORS:  # each carries the entity's Id
            entity = _id(value.get("Id"), f"Events[{index}].Value.Id")
            if discriminator == SERVICE_ORDER_UPDATED:
                reservations[entity] = None  # named twice in one delivery: look once
    return [VendorEvent(EventType.GUEST_BOOKED, reservation_id, enterprise, None,
                        {"reservation_id": reservation_id, "integration_id": integration})
            for reservation_id in reservations]


def _id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise WebhookMalformed(f"`{name}` must be a non-empty string")
    return value
