"""The LPR platform's refusals: Spring error bodies read as the gateway's VendorRefused.

Spring says why only by status and a free-text `message`:
    {"timestamp", "status", "error", "message", "path"}, plus `existingNumber` on a reused
    externalReference (409).
404 is NOT_FOUND and 400/422 INVALID whatever the endpoint; a 409 means what the endpoint
makes it mean (a reused reference when issuing, a citation past voiding when voiding), so the
caller says which. Other rejections (429, 405…) are not business answers and stay as they are.
"""

from __future__ import annotations

import orjson

from adapters.errors import UpstreamRejected
from adapters.operation_models import RefusalReason, VendorRefused

_BY_STATUS = {404: RefusalReason.NOT_FOUND, 400: RefusalReason.INVALID, 422: RefusalReason.INVALID}


def refusal_of(rejected: UpstreamRejected, conflict: RefusalReason) -> VendorRefused | None:
    """VendorRefused for a Spring error answering a write (409 as `conflict`), None for any other rejection."""
    reason = conflict if rejected.status == 409 else _BY_STATUS.get(rejected.status)
    if reason is None:
        return None
    try:
        body = orjson.loads(rejected.body) if rejected.body else {}
    except orjson.JSONDecodeError:
        body = {}  # a proxy's HTML page: the status alone still says why
    if not isinstance(body, dict):
        body = {}
    message, existing = body.get("message"), body.get("existingNumber")
    return VendorRefused(
        rejected.system_id,
        reason,
        message if isinstance(message, str) and message else rejected.detail,
        rejected.status,
        existing if isinstance(existing, str) and existing else None,
    )
