"""The principal an API key was last found to be, while nothing it was decided from can have changed.

With the memory client store, lookups are not cached by time (a revocation must hold at once), so
each request parsed its key, hashed it (HMAC-SHA256) and read the key record and the client: ~7 µs
of a cached answer. That store counts its writes (`ClientStore.changes`), so a principal is as good
as deciding again for as long as the count is the one it was decided at, and the key's own validity
window has not closed (a rotated key is refused from the moment its grace period ends, with no
write to mark it). Any write (a revocation, a rotation, a scope, facility or plan change, a new
key) makes every memo stale at once.

Stores that cannot count every replica's writes (Redis) say None. Their key and client records are
served from a short time-bounded cache (`cache_ttl_s`, gateway/auth/authenticate.py), and a principal
made from them is kept exactly as long as both records would be (`fresh_until`, on the monotonic
clock): the same bound on what a replica may not have heard yet, without parsing and hashing the
key and reading two cached records again on every request (~10 µs of a cached answer on Redis).
A change heard from elsewhere drops the client's principals at once (`forget`), as it drops its records.

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
    changes: int | None  # the store's write count it was decided at (None: a store that does not count)
    until: float  # epoch seconds its key stops being valid (inf: no end set)
    fresh_until: float  # time.monotonic() past which the records it came from are read again (inf: never)
    principal: Principal


class PrincipalMemo:
    """`get(key, changes)` / `put(key, changes, expires_at, principal, fresh_until)` by raw API key."""

    def __init__(self) -> None:
        self._decided: dict[str, _Decided] = {}

    def get(self, raw_key: str, changes: int | None) -> Principal | None:
        decided = self._decided.get(raw_key)
        if (decided is None or decided.changes != changes or time.time() >= decided.until
                or time.monotonic() >= decided.fresh_until):
            return None
        return decided.principal

    def put(self, raw_key: str, changes: int | None, expires_at: datetime | None, principal: Principal,
            fresh_until: float = float("inf")) -> None:
        if len(self._decided) >= MAX_ENTRIES:
            self._decided.clear()  # only accepted keys get here: as many as real clients' keys
        until = float("inf") if expires_at is None else expires_at.timestamp()
        self._decided[raw_key] = _Decided(changes, until, fresh_until, principal)

    def forget(self, client_id: str) -> None:
        """Drop the client's principals (a change heard from elsewhere: gateway/auth/changes.py)."""
        for key in [key for key, decided in self._decided.items() if decided.principal.client_id == client_id]:
            del self._decided[key]
