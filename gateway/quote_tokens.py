"""Quote ids: a price the gateway quoted, signed, so a client can book it later on any replica.

A quote id carries its facility, window, price and expiry, with an HMAC under the deployment's
secret: nothing to store, and a tampered or foreign id is recognised as such. Booking with one
asks the PARCS for exactly that price (it refuses with PRICE_CHANGED if the tariff moved).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import orjson

PREFIX = "q1."


@dataclass(frozen=True)
class QuotedPrice:
    facility_id: str
    starts_at: datetime
    ends_at: datetime
    amount: Decimal
    currency: str
    expires_at: datetime


class QuoteTokens:
    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"parkgate quote ids v1", hashlib.sha256).digest()

    def issue(self, quote: QuotedPrice) -> str:
        body = orjson.dumps([quote.facility_id, quote.starts_at.isoformat(), quote.ends_at.isoformat(),
                             format(quote.amount, "f"), quote.currency, quote.expires_at.isoformat()])
        return PREFIX + _b64(body) + "." + _b64(self._sign(body))

    def read(self, token: str) -> QuotedPrice | None:
        """The quote behind an id this gateway issued, or None (tampered, foreign, malformed)."""
        if not token.startswith(PREFIX) or token.count(".") != 2:
            return None
        body_part, _, signature = token[len(PREFIX):].partition(".")
        try:
            body = _unb64(body_part)
            if not hmac.compare_digest(_unb64(signature), self._sign(body)):
                return None
            facility_id, starts, ends, amount, currency, expires = orjson.loads(body)
            return QuotedPrice(facility_id, datetime.fromisoformat(starts), datetime.fromisoformat(ends),
                               Decimal(amount), currency, datetime.fromisoformat(expires))
        except (ValueError, TypeError, InvalidOperation, orjson.JSONDecodeError):
            return None

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
