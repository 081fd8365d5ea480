"""APDS webhooks as the gateway receives them: subscribed, authenticated, parsed.

Subscribing. The gateway asks the platform for what it needs with `POST /webhooks` (an
EventSubscription: `endpoint`, `topics`, `hierarchyElements`): place updates (occupancy) and
session creations and updates (cars entering and leaving) at every place it books at, children
included. The event path does this at start, idempotently (gateway/events/vendor_subscriptions.py,
`ApdsAdapter.subscribe_webhooks`).

Authentication. APDS signs nothing and its EventData has no id or signature field, so the one thing
every APDS platform honours is the endpoint URL it is given: the subscription's endpoint carries
the `webhook_secret` credential as `?token=<secret>` (over HTTPS, the URL is as secret as a header
would be), and a delivery without it is refused. The secret is rotated by subscribing again with
the new one. A replayed delivery cannot do harm: events are identified by what they say (below), so
it is a duplicate.

Deliveries are `EventData` (topic, eventTime, eventSubscriptionId, data: the objects, expanded):
- `PlaceUpdated` of a place with a demand table -> OCCUPANCY_CHANGED (occupied, capacity, free);
- `SessionCreated` -> VEHICLE_ENTERED (plate, lane: the session's initiator), and, when the segment
  runs under a reservation right, RESERVATION_ARRIVED (reservation_id, plate);
- `SessionUpdated` with an `actualEnd` -> VEHICLE_EXITED.
Anything else is acknowledged and ignored. Event ids come from the objects: a session's id, a
place's id and the instant of its figure; the same delivery twice is the same events.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from adapters.apds import operations_wire as ow
from adapters.apds.wire import (
    LICENSE_PLATE,
    PLACE,
    RightKind,
    WireError,
    element_type,
    obj,
    opt_items,
    parse_time,
    text,
)
from adapters.apds.wire import occupancy as place_occupancy
from adapters.errors import WebhookMalformed, WebhookRejected, webhook_json
from adapters.models import EventType, VendorEvent

TOKEN_PARAM = "token"
TOPICS = ("PlaceUpdated", "SessionCreated", "SessionUpdated")
MAX_DATA = 1000


def endpoint(url: str, secret: str) -> str:
    """The URL the platform delivers to: the gateway's, with the secret as `token`."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != TOKEN_PARAM] + [(TOKEN_PARAM, secret)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def subscription(url: str, secret: str, places: Sequence[str]) -> dict[str, Any]:
    """The EventSubscription the gateway wants."""
    return {
        "endpoint": endpoint(url, secret),
        "topics": list(TOPICS),
        "hierarchyElements": [{"className": "Place", "id": place} for place in places],
        "includeChildrenEvents": True,
    }


def same_subscription(current: Any, wanted: Mapping[str, Any]) -> bool:
    """Whether the platform's subscription (GET /webhooks/{id}) already says what `wanted` does."""
    if not isinstance(current, Mapping):
        return False

    def elements(value: Any) -> set[Any]:
        return {e.get("id") for e in value if isinstance(e, Mapping)} if isinstance(value, list) else set()

    return (current.get("endpoint") == wanted["endpoint"]
            and set(current.get("topics") or ()) == set(wanted["topics"])
            and elements(current.get("hierarchyElements")) == elements(wanted["hierarchyElements"])
            and bool(current.get("includeChildrenEvents")) == bool(wanted["includeChildrenEvents"]))


def verify(secret: str | None, query_params: Mapping[str, str], raw_body: bytes,
           kinds: Mapping[str, RightKind | None]) -> list[VendorEvent]:
    """The events of one delivery; `kinds`: what each right specification is (a reserved car's arrival)."""
    if not secret:
        raise WebhookRejected("no webhook secret is configured for this system")
    if not hmac.compare_digest(query_params.get(TOKEN_PARAM, "").encode(), secret.encode()):
        raise WebhookRejected("bad token")
    return parse(raw_body, kinds)


def parse(raw_body: bytes, kinds: Mapping[str, RightKind | None]) -> list[VendorEvent]:
    body = webhook_json(raw_body)
    topic, data = body.get("topic"), body.get("data")
    if not isinstance(topic, str) or not topic:
        raise WebhookMalformed("`topic` must be a non-empty string")
    if not isinstance(data, list) or not 0 < len(data) <= MAX_DATA:
        raise WebhookMalformed(f"`data` must be a list of 1 to {MAX_DATA} objects")
    try:
        event_time = parse_time(body.get("eventTime"), "eventTime")
        events: list[VendorEvent] = []
        for item in data:
            item = obj(item, "data item")
            if topic == "PlaceUpdated":
                events.extend(_place_updated(item, event_time))
            elif topic == "SessionCreated":
                events.extend(_session_created(item, kinds))
            elif topic == "SessionUpdated":
                events.extend(_session_ended(item))
        return events
    except (WireError, LookupError, TypeError, ValueError) as exc:
        raise WebhookMalformed(str(exc)) from None


def _place_updated(raw: Mapping[str, Any], event_time: Any) -> list[VendorEvent]:
    if element_type(raw) != PLACE or raw.get("hierarchyElementReference") is None:
        return []
    reading = place_occupancy(raw, event_time)
    if reading.occupied is None:
        return []
    payload: dict[str, object] = {"occupied": reading.occupied}
    if reading.capacity is not None:
        payload |= {"capacity": reading.capacity, "free": max(reading.capacity - reading.occupied, 0)}
    digest = hashlib.sha256(f"{reading.vendor_facility_id}|{event_time.isoformat()}|{reading.occupied}".encode())
    return [VendorEvent(EventType.OCCUPANCY_CHANGED, f"place:{digest.hexdigest()[:32]}", reading.vendor_facility_id,
                        reading.observed_at or event_time, payload)]


def _plate(raw: Mapping[str, Any]) -> str:
    """The plate as the platform's camera read it (checked to be a plate, passed on as written)."""
    credentials = opt_items(raw, "identifiedCredentials")
    ow.plate_of(credentials)  # raises WireError unless one of them is a plate
    plate = ow.credential_value(credentials, ow.PLATE_CLASS, LICENSE_PLATE)
    if plate is None:
        raise WireError("no licensePlate credential")
    return plate


def _session_created(raw: Mapping[str, Any], kinds: Mapping[str, RightKind | None]) -> list[VendorEvent]:
    session_id = text(raw, "id")
    place = text(obj(raw.get("hierachyElement"), "hierachyElement"), "id")
    plate = _plate(raw)
    entered = parse_time(raw.get("actualStart"), "actualStart")
    payload: dict[str, object] = {"plate": plate}
    initiator = raw.get("initiator")
    if isinstance(initiator, Mapping) and isinstance(initiator.get("id"), str):
        payload["lane"] = initiator["id"]
    events = [VendorEvent(EventType.VEHICLE_ENTERED, f"session:{session_id}:entered", place, entered, payload)]
    for segment in opt_items(raw, "segments"):
        right = obj(segment, "segment").get("assignedRight")
        if isinstance(right, Mapping) and "rightSpecification" in right \
                and kinds.get(ow.spec_of(right)) is RightKind.RESERVATION:
            reservation_id = text(right, "id")
            events.append(VendorEvent(EventType.RESERVATION_ARRIVED, f"session:{session_id}:arrived", place, entered,
                                      {"reservation_id": reservation_id, "plate": plate}))
    return events


def _session_ended(raw: Mapping[str, Any]) -> list[VendorEvent]:
    if raw.get("actualEnd") is None:
        return []  # a session updated while the car is still in (a payment): nothing a subscriber hears
    session_id = text(raw, "id")
    place = text(obj(raw.get("hierachyElement"), "hierachyElement"), "id")
    payload: dict[str, object] = {"plate": _plate(raw)}
    return [VendorEvent(EventType.VEHICLE_EXITED, f"session:{session_id}:exited", place,
                        parse_time(raw.get("actualEnd"), "actualEnd"), payload)]
