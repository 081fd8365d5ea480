"""Automatic persisted queries (the Apollo protocol): send a document's SHA-256 instead of it.

    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}

Unknown hash without a query → PERSISTED_QUERY_NOT_FOUND; the client then sends the query with
its hash once, the gateway checks the hash and remembers it (a document holding a card number
never gets here: the card-number screen, gateway/card_screen.py, refuses it first). Short GET URLs for hot queries
let browsers and CDNs cache them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from typing import Any

from gateway.cache import Cache
from gateway.errors import ErrorCode, RequestError

log = logging.getLogger("parkgate.persisted_queries")

HASH = re.compile(r"^[0-9a-f]{64}$")
TTL_S = 7 * 86_400
LOCAL_LIMIT = 10_000


class PersistedQueries:
    def __init__(self, cache: Cache | None) -> None:
        self.cache = cache
        self._local: OrderedDict[str, str] = OrderedDict()  # without a shared cache

    async def resolve(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with its query filled in from (or remembered in) the store."""
        extensions = payload.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if persisted is None:
            return payload
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise RequestError(ErrorCode.BAD_REQUEST, "persistedQuery needs version 1 and a sha256Hash.")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or not HASH.match(digest):
            raise RequestError(ErrorCode.BAD_REQUEST, "persistedQuery.sha256Hash must be 64 lower-case hex digits.")
        query = payload.get("query")
        if isinstance(query, str) and query:
            if hashlib.sha256(query.encode()).hexdigest() != digest:
                raise RequestError(ErrorCode.BAD_REQUEST, "provided sha does not match query")
            await self._remember(digest, query)
            return payload
        known = await self._recall(digest)
        if known is None:
            # Apollo clients look for exactly this message and code, then resend with the query.
            raise RequestError(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound", status=200)
        return {**payload, "query": known}

    async def _remember(self, digest: str, query: str) -> None:
        if self.cache is not None:
            try:
                await self.cache.set(f"apq:{digest}", query.encode(), TTL_S)
                return
            except Exception as exc:  # noqa: BLE001 - keep it locally instead; the shared store is best effort
                log.warning("persisted queries: the shared store is unreachable (%s); kept in this process", exc)
        self._local[digest] = query
        if len(self._local) > LOCAL_LIMIT:
            self._local.popitem(last=False)

    async def _recall(self, digest: str) -> str | None:
        if self.cache is not None:
            try:
                raw = await self.cache.get(f"apq:{digest}")
            except Exception:  # noqa: BLE001 - unreachable: the client will send the query again
                raw = None
            if raw is not None:
                return raw.decode()
        return self._local.get(digest)
