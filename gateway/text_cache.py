"""A least-recently-used cache keyed by text a client sent, bounded by its entries and by their size.

Parsed documents are kept so the hot ones cost nothing the second time. Bounding such a cache by
its number of entries alone lets a client fill it with large distinct documents: a document's
parsed form is some 30 to 70 times its text, so 1,024 of them held 1.5 GB here, and every object
kept alive lengthens each full garbage collection (1.6 s pauses, measured). So the total size of
what is kept is bounded too, and one entry too large for its share is not kept at all; and an
entry is only kept the second time its text is put (a doorkeeper of recently seen texts' hashes,
which the collector does not track): a stream of distinct documents, as an attacker sends, then
leaves nothing behind to collect, while a client's hot documents are kept from their second use.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

__all__ = ["Text", "TextCache"]


#: a text as sent: a document (str) or a request body (bytes)
Text = str | bytes


class TextCache(Generic[V]):
    """`get` / `put` by text; `size` of an entry is what it keeps alive, by default its key's length."""

    def __init__(self, max_entries: int = 1024, max_size: int = 256 * 1024) -> None:
        self.max_entries = max_entries
        self.max_size = max_size
        self.size = 0
        self._entries: OrderedDict[Text, tuple[V, int]] = OrderedDict()
        self._seen: OrderedDict[int, None] = OrderedDict()  # hashes of texts put once

    def get(self, key: Text) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: Text, value: V, size: int | None = None) -> None:
        size = len(key) if size is None else size
        if size > self.max_size // 8:  # too large to deserve a share: computed again when sent again
            return
        if not self._seen_before(key):
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._entries[key] = (value, size)
        self.size += size
        while len(self._entries) > self.max_entries or self.size > self.max_size:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.size -= dropped

    def _seen_before(self, key: Text) -> bool:
        digest = hash(key)
        if digest in self._seen or key in self._entries:
            return True
        self._seen[digest] = None
        if len(self._seen) > 4 * self.max_entries:
            self._seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._entries)
