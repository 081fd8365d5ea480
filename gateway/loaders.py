"""Per-request loaders: however many facilities a query touches, each system is asked once.

Vendors answer list questions ("occupancy of every place"), so a loader fetches a whole
resource of one system (a `Records` of gateway/systems.py) once per request and indexes it by
the resource's key; field resolvers then pick their record. Quotes are keyed (a facility and a
window) and go through a DataLoader that batches them per system. A new `Loaders` is made for
every request (and, on a WebSocket, for every operation or event), so nobody sees another
moment's data.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, TypeVarTuple

from strawberry.dataloader import DataLoader

from adapters.errors import UpstreamError
from adapters.models import Quote, QuoteRequest, RecordError
from gateway.systems import QUOTES, Records, Systems

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass
class Indexed(Generic[T]):
    """A resource of one system, by key; `errors` holds records the adapter could not map.

    `fetched_at` is when the vendor gave this answer (it may come from the upstream cache);
    `stale` says it is past its TTL, and `error` why, when the vendor failed and this is its
    last good answer (resolvers report it beside the data).
    """

    items: dict[Hashable, T] = field(default_factory=dict)
    errors: dict[str, RecordError] = field(default_factory=dict)
    fetched_at: datetime | None = None
    stale: bool = False
    error: UpstreamError | None = None


class Loaders:
    def __init__(self, systems: Systems) -> None:
        self._systems = systems
        self._resources: dict[tuple[Any, ...], asyncio.Future[Indexed[Any]]] = {}
        self.quotes: DataLoader[tuple[str, QuoteRequest], Quote] = DataLoader(self._load_quotes)

    def resource(self, system_id: str, resource: Records[*Ts, T], *args: *Ts) -> asyncio.Future[Indexed[T]]:
        """The whole of `resource(*args)` from one system, fetched at most once for this request."""
        key = (system_id, resource, *args)
        future = self._resources.get(key)
        if future is None:
            future = asyncio.ensure_future(self._fetch(system_id, resource, *args))
            self._resources[key] = future
        return future

    async def _fetch(self, system_id: str, resource: Records[*Ts, T], *args: *Ts) -> Indexed[T]:
        fetched = await self._systems.fetch_entry(system_id, resource, *args)
        batch, key = fetched.value, resource.key
        return Indexed(
            items={key(item): item for item in batch.items},
            errors={error.record_ref: error for error in batch.errors},
            fetched_at=fetched.fetched_at,
            stale=fetched.stale,
            error=fetched.error,
        )

    async def _load_quotes(self, keys: Sequence[tuple[str, QuoteRequest]]) -> list[Quote | BaseException]:
        by_system: dict[str, list[int]] = defaultdict(list)
        for index, (system_id, _) in enumerate(keys):
            by_system[system_id].append(index)
        results: dict[int, Quote | BaseException] = {}  # by index in `keys`: each system fills its own

        async def one_system(system_id: str, indexes: list[int]) -> None:
            try:
                quotes = await self._systems.fetch(system_id, QUOTES, [keys[i][1] for i in indexes])
            except UpstreamError as exc:
                for index in indexes:
                    results[index] = exc
                return
            for index, quote in zip(indexes, quotes, strict=True):
                results[index] = quote

        await asyncio.gather(*(one_system(s, i) for s, i in by_system.items()))
        return [results[index] for index in range(len(keys))]
