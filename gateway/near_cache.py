"""Entries kept in this process until their own deadline: the response cache's copies of answers.

An answer in the response cache never changes under its key (the key names the document, the
variables and the permission signature; the answer is written once and expires), so a copy
kept here until the moment the shared entry expires is as good as the shared entry, and costs
no round trip. The deadline is given by whoever puts the entry (`ttl_s`, measured on this
process's monotonic clock, never later than the shared entry's own expiry).

Bounded by entries and by bytes, least recently used out first: what is kept stays small
whatever keys clients make up. An expired entry is dropped when it is next looked at or pushed
out by newer ones.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

__all__ = ["NearCache"]


class NearCache(Generic[K, V]):
    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0
        #: key -> (value, deadline on time.monotonic(), size)
        self._entries: OrderedDict[K, tuple[V, float, int]] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[1] <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, ttl_s: float, size: int) -> None:
        """Keep `value` for `ttl_s` seconds from now; not at all when it is too large for its share."""
        self._drop(key)
        if ttl_s <= 0 or size > self.max_bytes // 8:
            return
        self._entries[key] = (value, time.monotonic() + ttl_s, size)
        self.size += size
        while len(self._entries) > self.max_entries or self.size > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self.size -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

    def _drop(self, key: K) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old[2]

    def __len__(self) -> int:
        return len(self._entries)
