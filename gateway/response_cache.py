"""The response cache: whole answers to hot read queries, reused for their smallest maxAge
(`Analysis.max_age`, found by the cost walk in gateway/cost.py).

Keyed by the document, the operation, the variables and the client's *permission signature*
(scopes and facilities) — never by who the client is — so two dashboards with the same access
share one answer while a client with less access can never be served a richer one. Only
complete answers (no errors) are kept. Metering still applies to a cached answer: it is
charged as if it had run.

Where answers live: with the memory cache, in this process only (`NearCache`, bounded); with
Redis, in Redis for every replica, and a copy here until the moment the Redis entry expires
(its PTTL, read with it in the same round trip). An answer never changes under its key (the
key is what was asked and who may see it; it is written once and expires; two replicas that
both missed write equally fresh answers), so the copy is as good as the shared entry and a hit
costs no round trip. Nothing deletes an answer early but `Cache.clear()`, which drops this
process's copies too (tests use it; other replicas' copies still die by their expiry).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.auth.authenticate import Principal, permission_signature
from gateway.cache import Cache
from gateway.kernel.caching import UNCACHEABLE
from gateway.near_cache import NearCache
from gateway.observability.metrics import NOOP, GatewayMetrics

log = logging.getLogger("parkgate.response_cache")

#: which answer: document, operation name, variables (sorted JSON), then the permission signature
#: as the principal holds it (scopes, facilities); compared as is in this process, hashed for Redis
AnswerKey = tuple[str, str, bytes, frozenset[str], frozenset[str] | None]


@dataclass(frozen=True)
class CachedAnswer:
    """An answer kept as it goes on the wire (serialized once), with what it cost to compute:
    a hit is charged that cost without walking the data again."""

    data_json: bytes
    actual_cost: int


def stored_key(key: AnswerKey, principal: Principal) -> str:
    """The answer's key in a shared store: a digest of what was asked and the permission signature."""
    query, operation_name, variables, _, _ = key
    digest = hashlib.sha256()
    for part in (query.encode(), operation_name.encode(), variables, permission_signature(principal).encode()):
        digest.update(part)
        digest.update(b"\0")
    return f"response:{digest.hexdigest()}"


class ResponseCache:
    def __init__(self, cache: Cache | None, metrics: GatewayMetrics | None = None,
                 copies: NearCache[AnswerKey, CachedAnswer] | None = None) -> None:
        self.cache = cache
        #: the answers themselves (memory cache) or copies of Redis's until they expire there
        self.copies: NearCache[AnswerKey, CachedAnswer] = copies or NearCache()
        self._generation = cache.generation if cache is not None else 0
        self.hits = 0
        self.misses = 0
        #: hits answered from this process's copy (no round trip to a shared store)
        self.local_hits = 0
        self._hit = metrics.response_cache.child("hit") if metrics is not None else NOOP
        self._miss = metrics.response_cache.child("miss") if metrics is not None else NOOP

    def key(self, query: str, operation_name: str | None, variables: dict[str, Any] | None, principal: Principal) -> AnswerKey:
        return (query, operation_name or "", orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS),
                principal.scopes, principal.facilities)

    async def get(self, key: AnswerKey, principal: Principal) -> CachedAnswer | None:
        """A kept answer; the cache is best effort, so an unreachable backend is a miss."""
        cache = self.cache
        if cache is None:
            return None
        if cache.generation != self._generation:  # cleared in this process: the copies go too
            self.copies.clear()
            self._generation = cache.generation
        answer = self.copies.get(key)
        if answer is not None:
            self.local_hits += 1
        elif cache.shared:
            answer = await self._shared(cache, key, principal)
        if answer is None:
            self.misses += 1
            self._miss.inc()
            return None
        self.hits += 1
        self._hit.inc()
        return answer

    async def put(self, key: AnswerKey, principal: Principal, answer: CachedAnswer, ttl: int) -> None:
        cache = self.cache
        if cache is None or ttl <= UNCACHEABLE:
            return
        self.copies.put(key, answer, ttl, _size(key, answer))  # before the shared write: it dies first
        if cache.shared:
            try:
                await cache.set(stored_key(key, principal), str(answer.actual_cost).encode() + b"\n" + answer.data_json, ttl)
            except Exception:  # noqa: BLE001 - not keeping an answer is never an error for the client
                log.warning("response cache unreachable; answer not kept", exc_info=False)

    async def _shared(self, cache: Cache, key: AnswerKey, principal: Principal) -> CachedAnswer | None:
        """The shared store's answer, kept here too until it expires there."""
        asked = time.monotonic()
        try:
            found = await cache.get_with_ttl(stored_key(key, principal))
        except Exception:  # noqa: BLE001 - whatever the backend raises, the query simply runs
            log.warning("response cache unreachable; answering without it", exc_info=False)
            return None
        if found is None:
            return None
        raw, ttl_s = found
        cost, _, data = raw.partition(b"\n")
        answer = CachedAnswer(data, int(cost))
        # the TTL was read after `asked`: counted from then, the copy expires no later than the entry
        self.copies.put(key, answer, ttl_s - (time.monotonic() - asked), _size(key, answer))
        return answer


def _size(key: AnswerKey, answer: CachedAnswer) -> int:
    """What a kept answer holds alive, roughly: its data and the texts of its key."""
    return len(answer.data_json) + len(key[0]) + len(key[2]) + 200
