"""The response cache: whole answers to hot read queries, reused for their smallest maxAge
(`Analysis.max_age`, found by the cost walk in gateway/cost.py).

Keyed by the document, the operation, the variables and the client's *permission signature*
(scopes and facilities) — never by who the client is — so two dashboards with the same access
share one answer while a client with less access can never be served a richer one. Only
complete answers (no errors) are kept. Metering still applies to a cached answer: it is
charged as if it had run.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.auth.authenticate import Principal, permission_signature
from gateway.cache import Cache
from gateway.kernel.caching import UNCACHEABLE
from gateway.observability.metrics import NOOP, GatewayMetrics

log = logging.getLogger("parkgate.response_cache")


@dataclass(frozen=True)
class CachedAnswer:
    """An answer kept as it goes on the wire (serialized once), with what it cost to compute:
    a hit is charged that cost without walking the data again."""

    data_json: bytes
    actual_cost: int


class ResponseCache:
    def __init__(self, cache: Cache | None, metrics: GatewayMetrics | None = None) -> None:
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self._hit = metrics.response_cache.child("hit") if metrics is not None else NOOP
        self._miss = metrics.response_cache.child("miss") if metrics is not None else NOOP

    def key(self, query: str, operation_name: str | None, variables: dict[str, Any] | None, principal: Principal) -> str:
        digest = hashlib.sha256()
        for part in (query, operation_name or "", orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS).decode(),
                     permission_signature(principal)):
            digest.update(part.encode())
            digest.update(b"\0")
        return f"response:{digest.hexdigest()}"

    async def get(self, key: str) -> CachedAnswer | None:
        """A kept answer; the cache is best effort, so an unreachable backend is a miss."""
        if self.cache is None:
            return None
        try:
            raw = await self.cache.get(key)
        except Exception:  # noqa: BLE001 - whatever the backend raises, the query simply runs
            log.warning("response cache unreachable; answering without it", exc_info=False)
            raw = None
        if raw is None:
            self.misses += 1
            self._miss.inc()
            return None
        cost, _, data = raw.partition(b"\n")
        self.hits += 1
        self._hit.inc()
        return CachedAnswer(data, int(cost))

    async def put(self, key: str, answer: CachedAnswer, ttl: int) -> None:
        if self.cache is not None and ttl > UNCACHEABLE:
            try:
                await self.cache.set(key, str(answer.actual_cost).encode() + b"\n" + answer.data_json, ttl)
            except Exception:  # noqa: BLE001 - not keeping an answer is never an error for the client
                log.warning("response cache unreachable; answer not kept", exc_info=False)
