"""What tests send as the sandbox's simulated vendors do: their ids for our places, their webhooks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from adapters.apds.operations_wire import plate_credential
from adapters.apds.wire import format_time, versioned
from tests.support.bed import Bed

#: berlin-hbf's place id at parcs-central (the APDS PARCS)
HBF_PLACE = "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e01"
#: the account the LPR simulators of tests/adapters/lpr/ are made with, and their adapters log in with
LPR_CREDENTIALS = {"username": "parkgate", "password": "correct horse", "api_key": "lpr-test-key"}


def webhook_secret(bed: Bed, system_id: str, name: str = "webhook_secret") -> str:
    """The secret a system of the sandbox signs (or authenticates) its webhooks with."""
    return bed.sandbox.config.systems[system_id].credentials[name]


def apds_path(bed: Bed, key: str | None = None) -> str:
    """Where parcs-central delivers: the gateway's endpoint with the secret the subscription put in it."""
    return f"/webhooks/parcs-central?token={quote(key or webhook_secret(bed, 'parcs-central'), safe='')}"


def apds_session(plate: str, place: str = HBF_PLACE, *, session_id: str | None = None, ended: bool = False,
                 at: datetime | None = None) -> dict[str, Any]:
    """A Session as an APDS platform delivers it (a car the barrier read at `place`)."""
    at = at or datetime.now(UTC)
    session_id = session_id or f"S-{uuid.uuid4()}"
    segment: dict[str, Any] = {"id": f"{session_id}-1", "version": 1, "actualStart": format_time(at),
                               "assignedRight": versioned(f"{session_id}-ticket", 1, "AssignedRight"),
                               "validationType": ["licensePlate"]}
    body: dict[str, Any] = {"id": session_id, "version": 1, "actualStart": format_time(at),
                            "initiator": versioned("IN-1"), "identifiedCredentials": [plate_credential(plate, "test")],
                            "segments": [segment], "hierachyElement": versioned(place)}
    if ended:
        body["actualEnd"] = segment["actualEnd"] = format_time(at)
    return body


def apds_place(occupied: int, place: str = HBF_PLACE, capacity: int = 820, at: datetime | None = None) -> dict[str, Any]:
    """A Place with its counted demand, as a PlaceUpdated delivery carries it."""
    at = at or datetime.now(UTC)
    return {"id": place, "version": 1, "name": [{"language": "en", "string": "A place"}], "layer": 1,
            "type": "parkingPlace", "timeZone": "Europe/Berlin", "hierarchyElementRecord": {"creationTime": format_time(at)},
            "hierarchyElementReference": {
                "elementId": versioned(place), "supply": [{"supplyViewType": "spaceView", "supplyQuantity": capacity}],
                "demandTable": [{"timestamp": format_time(at), "demandType": [
                    {"count": occupied, "occupancyCalculation": "counted", "recordDateTime": format_time(at)}]}]}}


def apds_delivery(topic: str, *data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """One EventData delivery."""
    return {"data": list(data), "eventSubscriptionId": "sub-test", "eventTime": format_time(at or datetime.now(UTC)),
            "topic": topic}


def apds_request(bed: Bed, body: dict[str, Any], *, key: str | None = None) -> tuple[str, bytes, dict[str, str]]:
    """A delivery of parcs-central: (path with its token, the body, headers)."""
    return apds_path(bed, key), orjson.dumps(body), {"content-type": "application/json"}


def apds_entry(bed: Bed, plate: str) -> tuple[str, bytes, dict[str, str]]:
    """A vehicle entering berlin-hbf, as parcs-central delivers it: (path, body, headers)."""
    return apds_request(bed, apds_delivery("SessionCreated", apds_session(plate)))
