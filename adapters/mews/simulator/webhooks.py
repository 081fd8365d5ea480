"""The Mews simulator's webhooks: the PMS's side of `adapters/mews/webhooks.py`.

Ids-only event bodies as the PMS POSTs them, and `MewsWebhooks`, which sends them to a URL
carrying the shared token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from adapters.mews.webhooks import RESERVATION_DISCRIMINATORS, TOKEN_PARAM
from adapters.simulated.webhook_sender import WebhookSender


def reservation_events(enterprise_id: str, reservation_id: str, *, added: bool) -> dict[str, Any]:
    kinds = RESERVATION_DISCRIMINATORS if added else ("ServiceOrderUpdated",)
    return {"EnterpriseId": enterprise_id,
            "Events": [{"Discriminator": kind, "Value": {"Id": reservation_id}} for kind in kinds]}


class MewsWebhooks:
    """What the PMS simulator sends: ids only, to a URL carrying the token."""

    def __init__(self, sender: WebhookSender, token: str) -> None:
        self.sender = sender
        self.url = f"{sender.url}?{TOKEN_PARAM}={token}"

    def emit(self, body: Mapping[str, Any]) -> None:
        raw = orjson.dumps(body)
        self.sender.send(lambda: (raw, {"content-type": "application/json"}), url=self.url)
