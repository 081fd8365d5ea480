"""Per-request loaders: however many facilities a query touches, each system is asked once.

Vendors answer list questions ("occupancy of every place"), so a loader fetches a whole
resource of one system (a `Records` of gateway/systems.py) once per request and indexes it by
the resource's key; field resolvers then pick their record. Resolvers that want one record by
its key (a facility's occupancy, its tariff) ask `record`: the keys a request asks for together
are read as one slice of the cached list (gateway/upstream_store.py), so a page of 100 facilities
costs about the same whether the operator has 100 or 5,000. Quotes are keyed (a facility and a
window) and go through a DataLoader that batches them per system. A new `Loaders` is made for
every request (and, on a WebSocket, for every operation or event), so nobody sees another
moment's data.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Awaitable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, TypeVarTuple

from strawberry.dataloader import DataLoader

from adapters.errors import UpstreamError
from adapters.models import Quote, QuoteRequest, RecordError
from gateway.deadline import Deadline
from gateway.systems import QUOTES, Records, Systems
from gateway.upstream_store import Want

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


def refs_of(key: Hashable) -> tuple[str, ...]:
    """The references an adapter would file an unreadable record of this key under: the key itself,
    or each named part of a composite one (an occupancy reading: its facility, its level)."""
    if isinstance(key, tuple):
        return tuple(str(part) for part in key if part is not None)
    return (str(key),)


class Loaders:
    def __init__(self, systems: Systems, deadline: Deadline | None = None) -> None:
        self._systems = systems
        #: when this operation's vendor reads give up (gateway/deadline.py)
        self.deadline = deadline or Deadline.after(systems.config.limits.operation_timeout_s)
        self._resources: dict[tuple[Any, ...], asyncio.Future[Indexed[Any]]] = {}
        self._slices: dict[tuple[str, Records[Any]], DataLoader[Hashable, Indexed[Any]]] = {}
        self.quotes: DataLoader[tuple[str, QuoteRequest], Quote] = DataLoader(self._load_quotes)

    def record(self, system_id: str, resource: Records[T], key: Hashable) -> Awaitable[Indexed[T]]:
        """The part of `resource` (a list without arguments) that holds `key`, for this request.

        The keys asked for together (the facilities of a page, resolved side by side) are read in
        one slice: a page costs its own records, however long the vendor's list is. When this
        request has the whole list already, that serves.
        """
        whole = self._resources.get((system_id, resource))
        if whole is not None:
            return whole
        loader = self._slices.get((system_id, resource))
        if loader is None:
            loader = DataLoader(functools.partial(self._load_slice, system_id, resource))
            self._slices[(system_id, resource)] = loader
        return loader.load(key)

    async def read_ahead(self, reads: Iterable[tuple[str, Records[Any], Hashable]]) -> None:
        """Ask for these records (system id, list, key) together, as `record` would one by one: one
        slice per system and list. Whoever asks `record` for one of them later has it in hand (a
        done future: no wait); a read that failed is left for that caller to report."""
        await asyncio.gather(*(self.record(system_id, resource, key) for system_id, resource, key in reads),
                             return_exceptions=True)

    async def _load_slice(self, system_id: str, resource: Records[T], keys: Sequence[Hashable]
                          ) -> list[Indexed[T] | BaseException]:
        want = Want(tuple(keys), tuple(dict.fromkeys(ref for key in keys for ref in refs_of(key))))
        try:
            fetched = await self.deadline.bound(system_id, self._systems.fetch_slice(system_id, resource, want))
        except UpstreamError as exc:
            return [exc] * len(keys)
        indexed: Indexed[T] = Indexed(items=fetched.value.items, errors=fetched.value.errors,
                                      fetched_at=fetched.fetched_at, stale=fetched.stale, error=fetched.error)
        return [indexed] * len(keys)

    def resource(self, system_id: str, resource: Records[*Ts, T], *args: *Ts) -> asyncio.Future[Indexed[T]]:
        """The whole of `resource(*args)` from one system, fetched at most once for this request."""
        key = (system_id, resource, *args)
        future = self._resources.get(key)
        if future is None:
            future = asyncio.ensure_future(self._fetch(system_id, resource, *args))
            self._resources[key] = future
        return future

    async def _fetch(self, system_id: str, resource: Records[*Ts, T], *args: *Ts) -> Indexed[T]:
        fetched = await self.deadline.bound(system_id, self._systems.fetch_entry(system_id, resource, *args))
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
                quotes = await self.deadline.bound(
                    system_id, self._systems.fetch(system_id, QUOTES, [keys[i][1] for i in indexes]))
            except UpstreamError as exc:
                for index in indexes:
                    results[index] = exc
                return
            for index, quote in zip(indexes, quotes, strict=True):
                results[index] = quote

        await asyncio.gather(*(one_system(s, i) for s, i in by_system.items()))
        return [results[index] for index in range(len(keys))]
