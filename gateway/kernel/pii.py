"""Personal data (licence plates, guest names) is masked for clients without `pii:read`."""

from __future__ import annotations

from gateway.auth.authenticate import Principal

MASK = "•••"


def mask(value: str) -> str:
    """Keep enough to recognise, not enough to identify: "B-XY 1234" → "B-•••34"."""
    if len(value) <= 4:
        return MASK
    return f"{value[:2]}{MASK}{value[-2:]}"


def personal(value: str | None, principal: Principal) -> str | None:
    if value is None or principal.pii:
        return value
    return mask(value)
