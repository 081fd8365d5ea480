"""What a POST body was understood as, remembered by its exact bytes.

A hot query is the same bytes over and over (a dashboard polls one body). Everything the endpoint
works out from those bytes before it looks at who asks is a pure function of them: the JSON, the
card-number screen, the parameters, the prepared document, its cost analysis and its metrics label.
So the second time the same bytes arrive, all of it is taken from here (~10 µs of a cached answer).

Only what passed every check is kept: a body the screen refused, that did not parse or validate, or
that was over a limit is never kept, and is checked again each time. Only queries are kept, and only
without a persisted-query extension (whose resolution reads or writes the store: not pure). Bounded
like the document caches (gateway/text_cache.py): entries, total bytes (a body over 32 KiB is not
kept), kept from a body's second use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from gateway.text_cache import TextCache

if TYPE_CHECKING:
    from gateway.cost import Analysis
    from gateway.execution import Prepared
    from gateway.graphql_http import GraphQLParams



class UnderstoodBody(NamedTuple):
    """One POST body's operation, checked and prepared: what a request needs before it asks the caches."""

    params: GraphQLParams
    prepared: Prepared
    analysis: Analysis
    label: str  # the operation's metrics label
    kind: str  # "query"


class BodyMemo:
    """`get(body)` / `put(body, understood)`; see the module's docstring for what may be put."""

    def __init__(self, max_entries: int = 1024, max_size: int = 256 * 1024) -> None:
        # Sized by the bodies' bytes, as the executor's document cache is by the documents' text: a
        # parsed document is 30-70 times its text, and an entry keeps its document alive even once
        # that cache has let it go, so this keeps alive at most as much again as that cache does.
        self._kept: TextCache[UnderstoodBody] = TextCache(max_entries, max_size)

    def get(self, body: bytes) -> UnderstoodBody | None:
        return self._kept.get(body)

    def put(self, body: bytes, understood: UnderstoodBody) -> None:
        self._kept.put(body, understood, len(body))

    def __len__(self) -> int:
        return len(self._kept)
