"""The Mews simulator's General Webhooks: the PMS's side of `adapters/mews/webhooks.py`.

One message per enterprise integration, ids only (events/wh-general.md): a reservation that
changed is a `ServiceOrderUpdated`; a customer created with it adds `CustomerAdded` and
`CustomerUpdated` (the reference page says a new entity gives both). `MewsWebhooks` POSTs them to
the URL the operator registered, which carries the shared token.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from adapters.mews.webhooks import TOKEN_PARAM
from adapters.mews.wire import SERVICE_ORDER_UPDATED
from adapters.simulated.webhook_sender import WebhookSender


def integration_id(enterprise_id: str) -> str:
    """The id of parkgate's integration with an enterprise (one per connected hotel)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mews:{enterprise_id}:integration"))


def reservation_events(enterprise_id: str, reservation_id: str, *, new_customer: str | None = None) -> dict[str, Any]:
    """The message for a reservation that changed (and the customer created with it, if any)."""
    events = [{"Discriminator": SERVICE_ORDER_UPDATED, "Value": {"Id": reservation_id}}]
    if new_customer is not None:
        events += [{"Discriminator": kind, "Value": {"Id": new_customer}} for kind in ("CustomerAdded", "CustomerUpdated")]
    return {"EnterpriseId": enterprise_id, "IntegrationId": integration_id(enterprise_id), "Events": events}


class MewsWebhooks:
    """What the PMS simulator sends: ids only, to a URL carrying the token."""

    def __init__(self, sender: WebhookSender, token: str) -> None:
        self.sender = sender
        self.url = f"{sender.url}?{TOKEN_PARAM}={token}"

    def emit(self, body: Mapping[str, Any]) -> None:
        raw = orjson.dumps(body)
        self.sender.send(lambda: (raw, {"content-type": "application/json"}), url=self.url)
