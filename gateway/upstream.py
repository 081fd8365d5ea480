"""Vendor answers through the cache: fresh for a TTL, then stale while one refresh runs, then gone.

Every read `Systems.fetch` makes goes through `UpstreamCache.get(system, resource, args)`. The
resource (gateway/systems.py) is opaque here but for its `name`, which labels the keys and picks
the TTL; to ask the vendor, the cache hands it back to `call(system, resource, *args)`:

    fresh     (age <= ttl)                         served from the cache, no vendor call
    stale     (ttl < age <= ttl + max_stale)       served at once, marked stale; ONE background
                                                   refresh starts (stale-while-revalidate)
    missing   (nothing, or older than that)        fetched; concurrent misses for one key make one
                                                   vendor call (single flight, below)
    vendor fails, a stale entry is at hand         that entry, marked stale, with the vendor's
                                                   error (stale-if-error); a failed background
                                                   refresh marks the entry, so every later serve,
                                                   on every replica, carries the error
    vendor fails, nothing usable                   the vendor's error is raised
    an event changed some records of a list        those records read alone and put in the list in
                                                   place of theirs (`renew`); where that cannot be
                                                   done, the list is invalidated (`invalidate`)

Single flight: within a process, one task per key does the fetching and every concurrent miss
awaits it. Across replicas, the fetching task first takes a short lock in the cache
(`SET NX PX cache.lock_ms`); a replica that cannot take it polls the cache for the holder's
entry (bounded by lock_ms) and fetches itself only if none appears. A holder whose vendor call
fails (on a miss or a background refresh) leaves an error marker in the lock key for a moment
(1 s, at most lock_ms): replicas waiting on it report that error rather than calling a vendor
that has just failed, and no replica retries the vendor for that key until it expires.

Key layout (inside the cache's namespace, `<store.prefix>cache:` on Redis):

    up:<system>:<resource name>:<sha256 of the arguments, 32 hex>         the entry (a hash)
    up:<system>:<resource name>:<sha256 of the arguments, 32 hex>:lock    the single-flight lock

Keys never depend on who asked: permissions, masking and tenancy apply after the cache, on
what it returns. How entries are kept is gateway/upstream_store.py's business: decoded in memory,
record by record in a Redis hash, never pickled (a value read from a store every replica shares
must never be able to run code). An entry that cannot be read (another format, a pickle someone
planted, a type the codec does not know) is a miss.

Cost follows the page: `get_slice` reads only the records a request wants (`Want`: the keys of
the facilities on its page) of a list answer, from memory by key or with one HMGET from Redis,
however many records the vendor's list holds. `get` reads the whole answer.

The cache never makes a request fail: when the backend errs or times out, the read counts as
a miss and the vendor is asked directly (counted in `backend_errors`, logged at most every
few seconds). What a process fetched while its backend could not take it is held in the process
(`HELD_ENTRIES` at most) and served from there, fresh or stale as any entry, until the backend
answers again: a Redis restart costs each replica one vendor call per key, not one per request.
Health (`Systems.health`) records only real vendor calls: serving a stale entry
after a failure leaves the source DOWN.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

import orjson

from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from adapters.models import Batch
from gateway.cache import Cache
from gateway.config import DEFAULT_TTLS, GatewayConfig
from gateway.upstream_store import (
    NOTHING,
    Entry,
    EntryStore,
    KeyOf,
    Slice,
    Want,
    entry_store,
    indexed,
    with_records,
)

log = logging.getLogger("parkgate.upstream")

T = TypeVar("T")

#: how long a failed fetch's error marker stays in the lock key (capped by lock_ms)
ERROR_MARKER_MS = 1000
ERROR_PREFIX = b"E\0"
POLL_FIRST_S = 0.005
POLL_MAX_S = 0.05
BACKEND_WARNING_EVERY_S = 10.0
#: entries a process holds itself while its backend cannot take them (a Redis restart)
HELD_ENTRIES = 1024
#: what `_backend` answers when the backend did not
UNREACHABLE: Any = object()

Call = Callable[..., Awaitable[Any]]  # (system_id, resource, *args) -> the vendor's answer


class Named(Protocol):
    """What the cache needs to know of a resource (gateway/systems.py): the name its keys and TTL go by."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    """A vendor's answer as served: when it was fetched, whether it is past its TTL, and why.

    `error` is set only with `stale`: the vendor failed and this is its last good answer.
    """

    value: T
    fetched_at: datetime
    stale: bool = False
    error: UpstreamError | None = None

    def age_s(self, now: datetime | None = None) -> float:
        return max(0.0, ((now or datetime.now(UTC)) - self.fetched_at).total_seconds())


@dataclass
class CacheMetrics:
    """Counters for one system; all only ever grow.

    hits             served fresh from the cache
    misses           found nothing usable (each request counts, coalesced or not)
    stale_serves     served an entry past its TTL (while revalidating, or because the vendor failed)
    coalesced_waits  waited for another request's vendor call (this process or another replica)
    refreshes        background refreshes that called the vendor
    renewals         records an event changed, asked of the vendor alone and put in their cached list
    upstream_calls   vendor calls made through the cache
    upstream_errors  of those, the ones that failed
    """

    hits: int = 0
    misses: int = 0
    stale_serves: int = 0
    coalesced_waits: int = 0
    refreshes: int = 0
    renewals: int = 0
    upstream_calls: int = 0
    upstream_errors: int = 0
    #: the same reads for Prometheus (gateway/observability/metrics.py: parkgate_upstream_cache_total)
    exported: CacheFigures | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "exported"}

    def hit(self) -> None:
        self.hits += 1
        if self.exported is not None:
            self.exported.hit.inc()

    def miss(self) -> None:
        self.misses += 1
        if self.exported is not None:
            self.exported.miss.inc()

    def stale(self) -> None:
        self.stale_serves += 1
        if self.exported is not None:
            self.exported.stale.inc()

    def coalesced(self) -> None:
        self.coalesced_waits += 1
        if self.exported is not None:
            self.exported.coalesced.inc()

    def refresh(self) -> None:
        self.refreshes += 1
        if self.exported is not None:
            self.exported.refresh.inc()

    def renewal(self) -> None:
        self.renewals += 1
        if self.exported is not None:
            self.exported.renew.inc()


class CacheFigures(Protocol):
    """Where a system's cache reads are also counted (Prometheus children)."""

    @property
    def hit(self) -> Countable: ...
    @property
    def miss(self) -> Countable: ...
    @property
    def stale(self) -> Countable: ...
    @property
    def coalesced(self) -> Countable: ...
    @property
    def refresh(self) -> Countable: ...
    @property
    def renew(self) -> Countable: ...


class Countable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


@dataclass(frozen=True)
class UpstreamPolicy:
    """TTLs and staleness bounds: fresh seconds per resource (per system overrides first)."""

    ttl_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TTLS))
    system_ttl_s: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    max_stale_s: Mapping[str, float] = field(default_factory=dict)  # per system
    default_max_stale_s: float = 3600.0
    lock_ms: int = 3000

    @classmethod
    def from_config(cls, config: GatewayConfig) -> UpstreamPolicy:
        return cls(
            # the configured TTLs on top of the defaults: naming one resource keeps the others cached
            ttl_s={**DEFAULT_TTLS, **config.cache.ttl_s},
            system_ttl_s={sid: dict(s.cache_ttl_s) for sid, s in config.systems.items() if s.cache_ttl_s},
            max_stale_s={sid: s.max_stale_s for sid, s in config.systems.items()},
            lock_ms=config.cache.lock_ms,
        )

    def fresh_s(self, system_id: str, resource: str) -> float:
        own = self.system_ttl_s.get(system_id, {})
        if resource in own:
            return float(own[resource])
        return float(self.ttl_s.get(resource, 0))

    def stale_s(self, system_id: str) -> float:
        return float(self.max_stale_s.get(system_id, self.default_max_stale_s))


def served(entry: Entry, stale: bool, error: UpstreamError | None = None) -> Fetched[Any]:
    """The entry as a caller gets it: stale with the vendor's error (its own, or the last refresh's)."""
    if stale and error is None and entry.error is not None:
        error = error_from(entry.error)
    return Fetched(entry.value, datetime.fromtimestamp(entry.fetched_at, UTC), stale, error if stale else None)


@dataclass(frozen=True, slots=True)
class _Read:
    """What a read wants of an entry: all of it (`want` None), or a slice cut with the resource's key."""

    want: Want | None = None
    key_of: KeyOf | None = None

    def cut(self, entry: Entry) -> Entry:
        return entry.sliced(self.want, self.key_of)


WHOLE = _Read()


def error_info(exc: UpstreamError) -> tuple[str, str, str]:
    return (exc.code, exc.system_id, exc.detail)


def error_from(info: tuple[str, str, str]) -> UpstreamError:
    code, system_id, detail = info
    kinds: dict[str, type[UpstreamError]] = {UpstreamUnavailable.code: UpstreamUnavailable,
                                             UpstreamTimeout.code: UpstreamTimeout}
    return kinds.get(code, UpstreamError)(system_id, detail)


def _canonical(value: Any) -> Any:
    """Arguments as plain JSON, the same on every replica and every run (unlike `hash()`)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return [type(value).__name__, _canonical(value.value)]
    if isinstance(value, datetime):
        return ["dt", (value.astimezone(UTC) if value.tzinfo else value).isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, Decimal):
        return ["dec", str(value)]
    if is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}]
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {"map": sorted(([_canonical(k), _canonical(v)] for k, v in value.items()), key=repr)}
    if isinstance(value, set | frozenset):
        return {"set": sorted((_canonical(v) for v in value), key=repr)}
    return ["repr", repr(value)]


def args_digest(args: tuple[Any, ...]) -> str:
    return hashlib.sha256(orjson.dumps(_canonical(list(args)))).hexdigest()[:32]


def cache_key(system_id: str, resource: str, args: tuple[Any, ...] = ()) -> str:
    """The entry's key: system, resource and arguments; never the caller."""
    return f"up:{system_id}:{resource}:{args_digest(args)}"


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How the one fetch of a key ended, for every request waiting on it (each cuts its own slice):
    the whole entry, fetched now or stored by another replica (`entry`, `landed` if stored by another),
    or the vendor's failure (`error`: serve your own fallback, stale, or raise it)."""

    entry: Entry | None = None
    landed: bool = False
    error: UpstreamError | None = None


class UpstreamCache:
    def __init__(self, cache: Cache, policy: UpstreamPolicy, call: Call) -> None:
        self.cache = cache
        self.store: EntryStore = entry_store(cache)
        self.policy = policy
        self.call = call
        self.metrics: dict[str, CacheMetrics] = {}
        #: system id -> its Prometheus figures (`export`), handed to its CacheMetrics
        self.figures: Callable[[str], CacheFigures] | None = None
        self.backend_errors = 0
        self._filling: dict[str, asyncio.Task[_Outcome]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._reading: dict[tuple[str, Want | None], asyncio.Task[Entry | None]] = {}
        self._last_warning = 0.0
        #: key -> what this process fetched while the backend could not store it (oldest first)
        self._held: OrderedDict[str, Entry] = OrderedDict()

    @classmethod
    def from_config(cls, cache: Cache, config: GatewayConfig, call: Call) -> UpstreamCache:
        return cls(cache, UpstreamPolicy.from_config(config), call)

    def metrics_of(self, system_id: str) -> CacheMetrics:
        metrics = self.metrics.get(system_id)
        if metrics is None:
            exported = self.figures(system_id) if self.figures is not None else None
            metrics = self.metrics[system_id] = CacheMetrics(exported=exported)
        return metrics

    def export(self, figures: Callable[[str], CacheFigures]) -> None:
        """Count every read for Prometheus too: `figures(system_id)` gives a system's counters."""
        self.figures = figures
        for system_id, metrics in self.metrics.items():
            metrics.exported = figures(system_id)

    def metrics_dict(self) -> dict[str, dict[str, int]]:
        return {system_id: m.as_dict() for system_id, m in sorted(self.metrics.items())}

    # --- reading ---------------------------------------------------------------------------

    async def get(self, system_id: str, resource: Named, args: tuple[Any, ...] = ()) -> Fetched[Any]:
        """The whole answer of `resource(*args)` from `system_id`."""
        return await self._get(system_id, resource, args, WHOLE)

    async def get_slice(self, system_id: str, resource: Named, key_of: KeyOf, want: Want,
                        args: tuple[Any, ...] = ()) -> Fetched[Slice]:
        """The records of a list answer that `want` names (by `key_of`), and its unreadable ones it
        names by reference: what a page needs, read without decoding the rest of the list."""
        fetched = await self._get(system_id, resource, args, _Read(want, key_of))
        if not isinstance(fetched.value, Slice):
            raise TypeError(f"{resource.name} of {system_id!r} is not a list of records: it cannot be sliced")
        return fetched

    async def _get(self, system_id: str, resource: Named, args: tuple[Any, ...], read: _Read) -> Fetched[Any]:
        fresh_s = self.policy.fresh_s(system_id, resource.name)
        if fresh_s <= 0:  # not cached: straight to the vendor
            return served(read.cut(Entry(time.time(), await self._call(system_id, resource, args))), stale=False)
        metrics = self.metrics_of(system_id)
        key = cache_key(system_id, resource.name, args)
        entry = await self._read(key, read)
        if entry is not None:
            age = time.time() - entry.fetched_at
            if age <= fresh_s and not entry.invalidated:
                metrics.hit()
                return served(entry, stale=False)
            if age <= fresh_s + self.policy.stale_s(system_id):
                if not entry.invalidated:
                    metrics.stale()
                    self._refresh_soon(system_id, resource, args, key, entry)
                    return served(entry, stale=True)
            else:
                entry = None  # past max_stale: unusable (the backend drops it about now anyway)
        metrics.miss()
        return await self._fill(system_id, resource, args, key, read, fallback=entry)

    async def _fill(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str, read: _Read,
                    fallback: Entry | None) -> Fetched[Any]:
        task = self._filling.get(key)
        if task is not None:
            self.metrics_of(system_id).coalesced()
        else:
            newer_than = fallback.fetched_at if fallback is not None else float("-inf")
            task = asyncio.create_task(self._load(system_id, resource, args, key, newer_than))
            self._filling[key] = task
            task.add_done_callback(lambda done: self._forget(self._filling, key, done))
        outcome = await asyncio.shield(task)
        if outcome.error is not None:
            if fallback is not None and self._usable(system_id, resource, fallback):
                self.metrics_of(system_id).stale()
                return served(fallback, stale=True, error=outcome.error)
            raise outcome.error
        assert outcome.entry is not None
        return served(read.cut(outcome.entry), stale=False)

    async def _load(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str,
                    newer_than: float) -> _Outcome:
        """The one fetch of a key in this process: take the replicas' lock, or wait for its holder."""
        lock_key, token = f"{key}:lock", secrets.token_hex(8).encode()
        if not await self._lock(lock_key, token):
            waited = await self._await_holder(key, lock_key, newer_than)
            if waited is not None:
                self.metrics_of(system_id).coalesced()
                return waited
            if not await self._lock(lock_key, token):  # still busy: the holder overran lock_ms
                lock_key = ""
        elif (landed := await self._landed(key, newer_than)) is not None:
            # Another replica fetched, stored and let go between our miss and our lock: use its answer.
            await self._unlock(lock_key, token)
            self.metrics_of(system_id).coalesced()
            return landed
        return await self._fetch_and_store(system_id, resource, args, key, lock_key, token)

    async def _landed(self, key: str, newer_than: float) -> _Outcome | None:
        """A fresh entry newer than the one we had, if one is in the cache now: read whole, once for
        every request of this process waiting on the key (each then cuts its own slice). Only a miss
        that another replica filled pays for the whole list; a hit reads its slice."""
        entry = await self._read(key, WHOLE)
        if entry is not None and entry.fetched_at > newer_than and not entry.invalidated:
            return _Outcome(entry=entry, landed=True)
        return None

    async def _fetch_and_store(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str,
                               lock_key: str, token: bytes) -> _Outcome:
        try:
            value = await self._call(system_id, resource, args)
        except UpstreamError as exc:
            if lock_key:  # tell the waiting replicas, briefly, instead of letting them call too
                await self._mark_failed(lock_key, exc)
            return _Outcome(error=exc)
        except BaseException:
            if lock_key:
                await self._unlock(lock_key, token)
            raise
        entry = Entry(time.time(), value)
        await self._write(system_id, resource, key, entry)
        if lock_key:
            await self._unlock(lock_key, token)
        return _Outcome(entry=entry)

    async def _await_holder(self, key: str, lock_key: str, newer_than: float) -> _Outcome | None:
        """Poll for another replica's entry while its lock lasts; None when we should fetch ourselves."""
        deadline = time.monotonic() + self.policy.lock_ms / 1000
        pause = POLL_FIRST_S
        while True:
            if (landed := await self._landed(key, newer_than)) is not None:
                return landed
            held = await self._backend(self.cache.get(lock_key))
            if held is not None and held.startswith(ERROR_PREFIX):
                return _Outcome(error=error_from(tuple(orjson.loads(held[len(ERROR_PREFIX):]))))
            if held is None:  # released: its entry may have landed between our two reads
                return await self._landed(key, newer_than)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)

    def _usable(self, system_id: str, resource: Named, entry: Entry) -> bool:
        """Still within ttl + max_stale (the backend drops it then, but a read may race that)."""
        bound = self.policy.fresh_s(system_id, resource.name) + self.policy.stale_s(system_id)
        return time.time() - entry.fetched_at <= bound

    # --- background refresh ----------------------------------------------------------------

    def _refresh_soon(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str, entry: Entry) -> None:
        if key in self._refreshing or key in self._filling:
            return
        task = asyncio.create_task(self._refresh(system_id, resource, args, key, entry))
        self._refreshing[key] = task
        task.add_done_callback(lambda done: self._forget(self._refreshing, key, done))

    async def _refresh(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str, entry: Entry) -> None:
        lock_key, token = f"{key}:lock", secrets.token_hex(8).encode()
        if not await self._lock(lock_key, token):
            return  # another replica is refreshing it
        self.metrics_of(system_id).refresh()
        try:
            value = await self._call(system_id, resource, args)
        except UpstreamError as exc:
            # keep serving the entry, now saying why it is stale (unless someone wrote a newer one:
            # the mark applies only to the entry fetched when this one was)
            await self._mark(system_id, resource, key, entry, error_info(exc), entry.invalidated)
            await self._mark_failed(lock_key, exc)  # and no other refresh, on any replica, for a moment
            return
        except Exception:
            log.exception("refreshing %s failed", key)
            await self._unlock(lock_key, token)
            return
        await self._write(system_id, resource, key, Entry(time.time(), value))
        await self._unlock(lock_key, token)

    # --- events ----------------------------------------------------------------------------

    async def put(self, system_id: str, resource: Named, args: tuple[Any, ...], value: Any) -> None:
        """Store a vendor's answer obtained otherwise (an event carrying the new data)."""
        await self._write(system_id, resource, cache_key(system_id, resource.name, args), Entry(time.time(), value))

    async def invalidate(self, system_id: str, resource: Named, args: tuple[Any, ...] = ()) -> None:
        """An event says this answer changed: the next read fetches it (falling back to it if the vendor fails).

        The entry is marked, not deleted, so stale-if-error still has the last good answer; only its
        metadata is read and written (a list of thousands of records stays as it is).
        """
        key = cache_key(system_id, resource.name, args)
        entry = await self._read(key, _Read(NOTHING))
        if entry is not None and not entry.invalidated:
            await self._mark(system_id, resource, key, entry, entry.error, True)

    async def renew(self, system_id: str, resource: Named, key_of: KeyOf, by: Named, args: tuple[Any, ...]) -> bool:
        """An event changed a few records of the cached list `resource`: ask the vendor for those
        alone (`by(*args)`, e.g. one place's occupancy) and put them in the list in place of the
        records with the same keys, for every replica at once. The list keeps its age: the rest of
        it is as old as it was. Refilling the whole list instead costs the vendor the operator's
        size on every event (at 1,000 garages, 18 pages of APDS /places per car that enters).

        True when nothing cached is older than the event any more (renewed, or nothing cached);
        False when it could not be done (the vendor failed or answered nothing usable, the list
        holds no record under one of the keys, the entry changed meanwhile): invalidate then."""
        key = cache_key(system_id, resource.name)
        entry = await self._read(key, _Read(NOTHING))
        if entry is None or entry.invalidated:
            return True  # nothing cached, or the next read fetches the whole list anyway
        try:
            fresh = await self._call(system_id, by, args)
        except UpstreamError:
            return False
        if not isinstance(fresh, Batch) or fresh.errors or not fresh.items:
            return False
        keep_s = self._keep_s(system_id, resource, entry.fetched_at)
        if keep_s <= 0:
            return True  # gone by now
        records = {key_of(item): item for item in fresh.items}
        patched = await self._backend(self.store.patch(key, entry.fetched_at, records, key_of, keep_s),
                                      failed=UNREACHABLE)
        if patched is UNREACHABLE:  # the entry this process holds while the backend is away, if any
            held = self._held.get(key)
            renewed = None if held is None else with_records(held, records, key_of)
            if renewed is None:
                return False
            self._held[key] = renewed
            patched = True
        if patched:
            self.metrics_of(system_id).renewal()
        return bool(patched)

    async def forget(self, system_id: str, resource: Named, args: tuple[Any, ...] = ()) -> None:
        """Drop an entry outright (no stale fallback)."""
        await self._backend(self.cache.delete(cache_key(system_id, resource.name, args)))

    async def clear(self) -> None:
        """Forget every entry (tests; the cache's own namespace only, never FLUSHDB)."""
        await self._backend(self.cache.clear())

    async def aclose(self) -> None:
        for task in [*self._refreshing.values(), *self._filling.values()]:
            task.cancel()
        await self.cache.aclose()

    # --- plumbing --------------------------------------------------------------------------

    async def _call(self, system_id: str, resource: Named, args: tuple[Any, ...]) -> Any:
        metrics = self.metrics_of(system_id)
        metrics.upstream_calls += 1
        try:
            return await self.call(system_id, resource, *args)
        except UpstreamError:
            metrics.upstream_errors += 1
            raise

    async def _read(self, key: str, read: _Read) -> Entry | None:
        """The entry, cut to what `read` wants, if any. Concurrent reads of one key wanting the same
        (the whole, or one page's slice: a burst of one query) share one backend read, so a burst
        takes one connection, not one per request."""
        reading = (key, read.want)
        task = self._reading.get(reading)
        if task is None:
            task = asyncio.create_task(self._backend(self.store.read(key, read.want), failed=UNREACHABLE))
            self._reading[reading] = task
            task.add_done_callback(lambda done: self._forget(self._reading, reading, done))
        entry = await asyncio.shield(task)
        if entry is UNREACHABLE:  # what this process fetched since the backend went away, if anything
            entry = self._held.get(key)
        elif self._held:
            self._held.pop(key, None)  # the backend answers again: it is the one to read
        return None if entry is None else read.cut(entry)

    def _keep_s(self, system_id: str, resource: Named, fetched_at: float) -> float:
        age_s = time.time() - fetched_at
        return self.policy.fresh_s(system_id, resource.name) + self.policy.stale_s(system_id) - age_s

    async def _write(self, system_id: str, resource: Named, key: str, entry: Entry) -> None:
        keep_s = self._keep_s(system_id, resource, entry.fetched_at)
        if keep_s > 0:
            written = await self._backend(self.store.write(key, entry, keep_s, getattr(resource, "key", None)),
                                          failed=UNREACHABLE)
            if written is UNREACHABLE:
                self._held[key] = indexed(entry, getattr(resource, "key", None))
                self._held.move_to_end(key)
                while len(self._held) > HELD_ENTRIES:
                    self._held.popitem(last=False)

    async def _mark(self, system_id: str, resource: Named, key: str, entry: Entry, error: tuple[str, str, str] | None,
                    invalidated: bool) -> None:
        keep_s = self._keep_s(system_id, resource, entry.fetched_at)
        if keep_s > 0:
            await self._backend(self.store.mark(key, entry.fetched_at, error, invalidated, keep_s))

    async def _lock(self, lock_key: str, token: bytes) -> bool:
        taken = await self._backend(self.cache.add(lock_key, token, self.policy.lock_ms), failed=True)
        return bool(taken)

    async def _unlock(self, lock_key: str, token: bytes) -> None:
        # compare, then delete: not atomic, but a holder that overran lock_ms rarely frees a successor's lock
        if await self._backend(self.cache.get(lock_key)) == token:
            await self._backend(self.cache.delete(lock_key))

    async def _mark_failed(self, lock_key: str, exc: UpstreamError) -> None:
        """Leave the failure in the lock key for a moment: waiters report it, nobody retries until then."""
        marker = ERROR_PREFIX + orjson.dumps(error_info(exc))
        await self._backend(self.cache.set(lock_key, marker, min(ERROR_MARKER_MS, self.policy.lock_ms) / 1000))

    async def _backend(self, operation: Awaitable[Any], failed: Any = None) -> Any:
        """A cache operation whose failure is a miss (or `failed`), never the request's failure."""
        try:
            return await operation
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 — Redis down or slow: carry on without it
            self.backend_errors += 1
            now = time.monotonic()
            if now - self._last_warning >= BACKEND_WARNING_EVERY_S:
                self._last_warning = now
                log.warning("upstream cache unavailable (%s: %s); asking vendors directly", type(exc).__name__, exc)
            return failed

    @staticmethod
    def _forget(tasks: dict[Any, Any], key: Any, done: asyncio.Task[Any]) -> None:
        if tasks.get(key) is done:
            del tasks[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody awaited any more is not "never retrieved"
