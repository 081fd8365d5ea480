"""What can go wrong when talking to a vendor, in three kinds a client can act on.

The gateway maps each kind to an error code of its catalog (UPSTREAM_UNAVAILABLE,
UPSTREAM_TIMEOUT, UPSTREAM_ERROR); the message names the system, never its secrets.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_REJECTION_BODY = 16_384


class UpstreamError(Exception):
    """The vendor answered, but not with something we can use (5xx, bad JSON, refused auth)."""

    code = "UPSTREAM_ERROR"

    def __init__(self, system_id: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(f"{system_id}: {message}")
        self.system_id = system_id
        self.detail = message
        #: how long the vendor asked us to wait before trying again (its Retry-After on a 429 or 503)
        self.retry_after_s = retry_after_s


class UpstreamUnavailable(UpstreamError):
    """The vendor could not be reached or said it is unavailable (connect error, 502/503/504)."""

    code = "UPSTREAM_UNAVAILABLE"


class UpstreamTimeout(UpstreamError):
    """The vendor did not answer within the configured timeout."""

    code = "UPSTREAM_TIMEOUT"

    def __init__(self, system_id: str, message: str, *, connect_phase: bool = False) -> None:
        super().__init__(system_id, message)
        #: it timed out while connecting: the request never reached the vendor
        self.connect_phase = connect_phase


class UpstreamRejected(UpstreamError):
    """The vendor refused the request itself (4xx other than auth): e.g. 409 on a duplicate id."""

    def __init__(self, system_id: str, message: str, status: int, body: bytes = b"", *,
                 retry_after_s: float | None = None) -> None:
        super().__init__(system_id, message, retry_after_s=retry_after_s)
        self.status = status
        #: the vendor's error body (at most MAX_REJECTION_BODY bytes): adapters read their dialect's reason from it
        self.body = body[:MAX_REJECTION_BODY]


class WebhookRejected(Exception):
    """An inbound webhook that fails its system's verification (signature, secret, token, replay): 401."""


class WebhookMalformed(Exception):
    """An inbound webhook that is authentic but cannot be read (bad JSON, missing fields): 400."""


def webhook_json(raw_body: bytes) -> dict[str, Any]:
    """A webhook body that must be a JSON object, or WebhookMalformed saying what it is instead."""
    try:
        body = orjson.loads(raw_body)
    except orjson.JSONDecodeError:
        raise WebhookMalformed("the body is not JSON") from None
    if not isinstance(body, dict):
        raise WebhookMalformed("the body is not a JSON object")
    return body
