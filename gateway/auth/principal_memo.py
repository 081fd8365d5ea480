"""The principal an API key was last found to be, while nothing it was decided from can have changed.

With the memory client store, lookups are not cached by time (a revocation must hold at once), so
each request parsed its key, hashed it (HMAC-SHA256) and read the key record and the client: ~7 µs
of a cached answer. That store counts its writes (`ClientStore.changes`), so a principal is as good
as deciding again for as long as the count is the one it was decided at, and the key's own validity
window has not closed (a rotated key is refused from the moment its grace period ends, with no
write to mark it). Any write (a revocation, a rotation, a scope, facility or plan change, a new
key) makes every memo stale at once. Stores that cannot count every replica's writes (Redis) say
None and get no memo: their short time-bounded cache keeps its own semantics.

Only keys that were accepted are kept (a flood of made-up keys leaves nothing), bounded in number.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from gateway.auth.authenticate import Principal

MAX_ENTRIES = 10_000


class _Decided(NamedTuple):
    changes: int  # the store's write count it was decided at
    until: float  # epoch seconds its key stops being valid (inf: no end set)
    principal: Principal


class PrincipalMemo:
    """`get(key, changes)` / `put(key, changes, expires_at, principal)` by raw API key."""

    def __init__(self) -> None:
        self._decided: dict[str, _Decided] = {}

    def get(self, raw_key: str, changes: int) -> Principal | None:
        decided = self._decided.get(raw_key)
        if decided is None or decided.changes != changes or time.time() >= decided.until:
            return None
        return decided.principal

    def put(self, raw_key: str, changes: int, expires_at: datetime | None, principal: Principal) -> None:
        if len(self._decided) >= MAX_ENTRIES:
            self._decided.clear()  # only accepted keys get here: as many as real clients' keys
        until = float("inf") if expires_at is None else expires_at.timestamp()
        self._decided[raw_key] = _Decided(changes, until, principal)

    def forget(self, client_id: str) -> None:
        """Drop the client's principals (a change heard from elsewhere: gateway/auth/changes.py)."""
        for key in [key for key, decided in self._decided.items() if decided.principal.client_id == client_id]:
            del self._decided[key]
