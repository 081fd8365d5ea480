"""What tests send as the sandbox's simulated vendors do: their ids for our places, their signed webhooks."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.apds.simulator.webhooks import event_body
from adapters.apds.webhooks import signature
from tests.support.bed import Bed

#: berlin-hbf's placeId at parcs-central (the APDS PARCS)
HBF_PLACE = "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e01"
#: the account the LPR simulators of tests/adapters/lpr/ are made with, and their adapters log in with
LPR_CREDENTIALS = {"username": "parkgate", "password": "correct horse", "api_key": "lpr-test-key"}


def webhook_secret(bed: Bed, system_id: str, name: str = "webhook_secret") -> str:
    """The secret a system of the sandbox signs (or authenticates) its webhooks with."""
    return bed.sandbox.config.systems[system_id].credentials[name]


def apds_request(bed: Bed, body: dict[str, Any], *, at: float | None = None, key: str | None = None
                 ) -> tuple[bytes, dict[str, str]]:
    """An APDS webhook of parcs-central: the body, and headers signed at `at` (now) with `key` (its secret)."""
    raw = orjson.dumps(body)
    timestamp = str(int(at if at is not None else time.time()))
    return raw, {"content-type": "application/json", "x-apds-timestamp": timestamp,
                 "x-apds-signature": signature(key or webhook_secret(bed, "parcs-central"), timestamp, raw)}


def apds_entry(bed: Bed, plate: str) -> tuple[bytes, dict[str, str]]:
    """A vehicle entering berlin-hbf, as parcs-central's webhook says it: the body and its signed headers."""
    return apds_request(bed, event_body("vehicle.entry", HBF_PLACE, datetime.now(UTC), {"plate": plate, "lane": "IN-1"}))
