"""The APDS simulator's webhooks: it delivers `EventData` to the endpoints subscribed with
POST /webhooks (the gateway's side: adapters/apds/webhooks.py). APDS signs nothing: what
authenticates a delivery is the endpoint URL the subscriber chose (the gateway puts its secret there).

A subscription hears a topic at a place when it names that place, or names the place's campus
with `includeChildrenEvents`. Deliveries go out in the background (WebhookSender); nothing waits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from adapters.apds.simulator import catalog
from adapters.apds.simulator.office_routes import render_session
from adapters.apds.simulator.plumbing import now as sim_now
from adapters.apds.simulator.state import ApdsState, campus_id
from adapters.apds.wire import format_time
from adapters.simulated.back_office import Session, office_of
from adapters.simulated.webhook_sender import WebhookSender


def _request(raw: bytes) -> Callable[[], tuple[bytes, dict[str, str]]]:
    return lambda: (raw, {"content-type": "application/json"})


class ApdsWebhooks:
    """What the platform sends, to whoever subscribed."""

    def __init__(self, state: ApdsState, sender: WebhookSender | None = None) -> None:
        self.state = state
        self.sender = sender or WebhookSender("")
        #: every delivery body sent, newest last (tests validate them against the document)
        self.sent: list[bytes] = []

    def deliver(self, topic: str, place_id: str, data: list[dict[str, Any]], at: datetime | None = None) -> str:
        """Send one EventData to every subscription that hears `topic` at `place_id`; its id (for the sandbox)."""
        at = at or sim_now()
        key = self.state.garage_of(place_id)
        campus = campus_id(self.state.world.garages[key].spec.city) if key else None
        digest = hashlib.sha256(orjson.dumps([topic, format_time(at), [d.get("id") for d in data]])).hexdigest()[:24]
        for subscription in list(self.state.subscriptions.values()):
            body = subscription.body
            elements = {e.get("id") for e in body.get("hierarchyElements", ()) if isinstance(e, dict)}
            hears = place_id in elements or (body.get("includeChildrenEvents") is True and campus in elements)
            if topic not in body.get("topics", ()) or not hears:
                continue
            raw = orjson.dumps({"data": data, "eventSubscriptionId": subscription.id, "eventTime": format_time(at),
                                "topic": topic})
            self.sent.append(raw)
            self.sender.send(_request(raw), str(body["endpoint"]))
        return f"evt-{digest}"

    def place_updated(self, key: str) -> str:
        """The place's occupancy changed (a car came or went)."""
        place_id = self.state.place_ids[key]
        now = sim_now()
        place = catalog.place(self.state, office_of(self.state.world), key, place_id, True, now)
        return self.deliver("PlaceUpdated", place_id, [place], now)

    def session_created(self, session: Session) -> str:
        """A car the barrier read entered: its session, with the right it runs under (a reservation's arrival)."""
        return self._session("SessionCreated", session, session.entered_at)

    def session_updated(self, session: Session) -> str:
        return self._session("SessionUpdated", session, session.exited_at or sim_now())

    def _session(self, topic: str, session: Session, at: datetime) -> str:
        body = render_session(self.state, office_of(self.state.world), session, ["all"])
        return self.deliver(topic, self.state.place_ids[session.garage], [body], at)

    async def aclose(self) -> None:
        await self.sender.aclose()
