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

Single flight: within a process, one task per key does the fetching and every concurrent miss
awaits it. Across replicas, the fetching task first takes a short lock in the cache
(`SET NX PX cache.lock_ms`); a replica that cannot take it polls the cache for the holder's
entry (bounded by lock_ms) and fetches itself only if none appears. A holder whose vendor call
fails (on a miss or a background refresh) leaves an error marker in the lock key for a moment
(1 s, at most lock_ms): replicas waiting on it report that error rather than calling a vendor
that has just failed, and no replica retries the vendor for that key until it expires.

Key layout (inside the cache's namespace, `<store.prefix>cache:` on Redis):

    up:<system>:<resource name>:<sha256 of the arguments, 32 hex>         the entry (pickle)
    up:<system>:<resource name>:<sha256 of the arguments, 32 hex>:lock    the single-flight lock

Keys never depend on who asked: permissions, masking and tenancy apply after the cache, on
what it returns. Entries are pickled (our own frozen dataclasses, in a tuple with a format
number): Redis is trusted like the gateway itself — whoever can write to it can run code in
the gateway. An entry that cannot be read (another format, a renamed class) is a miss.

The cache never makes a request fail: when the backend errs or times out, the read counts as
a miss and the vendor is asked directly (counted in `backend_errors`, logged at most every
few seconds). Health (`Systems.health`) records only real vendor calls: serving a stale entry
after a failure leaves the source DOWN.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

import orjson

from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.cache import Cache
from gateway.config import DEFAULT_TTLS, GatewayConfig

log = logging.getLogger("parkgate.upstream")

T = TypeVar("T")

ENTRY_FORMAT = 1
#: how long a failed fetch's error marker stays in the lock key (capped by lock_ms)
ERROR_MARKER_MS = 1000
ERROR_PREFIX = b"E\0"
POLL_FIRST_S = 0.005
POLL_MAX_S = 0.05
BACKEND_WARNING_EVERY_S = 10.0

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
    upstream_calls   vendor calls made through the cache
    upstream_errors  of those, the ones that failed
    """

    hits: int = 0
    misses: int = 0
    stale_serves: int = 0
    coalesced_waits: int = 0
    refreshes: int = 0
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


@dataclass(frozen=True, slots=True)
class _Entry:
    fetched_at: float  # epoch seconds (wall clock: shared by replicas)
    value: Any
    error: tuple[str, str, str] | None = None  # (code, system id, detail) of the last failed refresh
    invalidated: bool = False  # an event said it changed: fetch before serving, fall back to it

    def dump(self) -> bytes:
        return pickle.dumps((ENTRY_FORMAT, self.fetched_at, self.error, self.invalidated, self.value),
                            protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(raw: bytes) -> _Entry | None:
        try:
            fmt, fetched_at, error, invalidated, value = pickle.loads(raw)  # trusted, see above
        except Exception:  # noqa: BLE001 — another format or a class that moved: a miss
            return None
        if fmt != ENTRY_FORMAT:
            return None
        return _Entry(fetched_at, value, error, invalidated)

    def served(self, stale: bool, error: UpstreamError | None = None) -> Fetched[Any]:
        if stale and error is None and self.error is not None:
            error = error_from(self.error)
        return Fetched(self.value, datetime.fromtimestamp(self.fetched_at, UTC), stale, error if stale else None)


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


class UpstreamCache:
    def __init__(self, cache: Cache, policy: UpstreamPolicy, call: Call) -> None:
        self.cache = cache
        self.policy = policy
        self.call = call
        self.metrics: dict[str, CacheMetrics] = {}
        #: system id -> its Prometheus figures (`export`), handed to its CacheMetrics
        self.figures: Callable[[str], CacheFigures] | None = None
        self.backend_errors = 0
        self._filling: dict[str, asyncio.Task[Fetched[Any]]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._reading: dict[str, asyncio.Task[bytes | None]] = {}
        self._last_warning = 0.0

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
        fresh_s = self.policy.fresh_s(system_id, resource.name)
        if fresh_s <= 0:  # not cached: straight to the vendor
            return Fetched(await self._call(system_id, resource, args), datetime.now(UTC))
        metrics = self.metrics_of(system_id)
        key = cache_key(system_id, resource.name, args)
        entry = await self._read(key)
        if entry is not None:
            age = time.time() - entry.fetched_at
            if age <= fresh_s and not entry.invalidated:
                metrics.hit()
                return entry.served(stale=False)
            if age <= fresh_s + self.policy.stale_s(system_id):
                if not entry.invalidated:
                    metrics.stale()
                    self._refresh_soon(system_id, resource, args, key, entry)
                    return entry.served(stale=True)
            else:
                entry = None  # past max_stale: unusable (the backend drops it about now anyway)
        metrics.miss()
        return await self._fill(system_id, resource, args, key, fallback=entry)

    async def _fill(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str,
                    fallback: _Entry | None) -> Fetched[Any]:
        task = self._filling.get(key)
        if task is not None:
            self.metrics_of(system_id).coalesced()
        else:
            task = asyncio.create_task(self._load(system_id, resource, args, key, fallback))
            self._filling[key] = task
            task.add_done_callback(lambda done: self._forget(self._filling, key, done))
        return await asyncio.shield(task)

    async def _load(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str,
                    fallback: _Entry | None) -> Fetched[Any]:
        """The one fetch of a key in this process: take the replicas' lock, or wait for its holder."""
        lock_key, token = f"{key}:lock", secrets.token_hex(8).encode()
        if not await self._lock(lock_key, token):
            waited = await self._await_holder(system_id, resource, key, lock_key, fallback)
            if waited is not None:
                self.metrics_of(system_id).coalesced()
                return waited
            if not await self._lock(lock_key, token):  # still busy: the holder overran lock_ms
                lock_key = ""
        elif (landed := await self._landed(key, fallback)) is not None:
            # Another replica fetched, stored and let go between our miss and our lock: use its answer.
            await self._unlock(lock_key, token)
            self.metrics_of(system_id).coalesced()
            return landed
        return await self._fetch_and_store(system_id, resource, args, key, lock_key, token, fallback)

    async def _landed(self, key: str, fallback: _Entry | None) -> Fetched[Any] | None:
        """A fresh entry newer than the one we had, if one is in the cache now."""
        entry = await self._read(key)
        newer_than = fallback.fetched_at if fallback is not None else float("-inf")
        if entry is not None and entry.fetched_at > newer_than and not entry.invalidated:
            return entry.served(stale=False)
        return None

    async def _fetch_and_store(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str,
                               lock_key: str, token: bytes, fallback: _Entry | None) -> Fetched[Any]:
        try:
            value = await self._call(system_id, resource, args)
        except UpstreamError as exc:
            if lock_key:  # tell the waiting replicas, briefly, instead of letting them call too
                await self._mark_failed(lock_key, exc)
            if fallback is not None and self._usable(system_id, resource, fallback):
                self.metrics_of(system_id).stale()
                return fallback.served(stale=True, error=exc)
            raise
        except BaseException:
            if lock_key:
                await self._unlock(lock_key, token)
            raise
        entry = _Entry(time.time(), value)
        await self._write(system_id, resource, key, entry)
        if lock_key:
            await self._unlock(lock_key, token)
        return entry.served(stale=False)

    async def _await_holder(self, system_id: str, resource: Named, key: str, lock_key: str,
                            fallback: _Entry | None) -> Fetched[Any] | None:
        """Poll for another replica's entry while its lock lasts; None when we should fetch ourselves."""
        deadline = time.monotonic() + self.policy.lock_ms / 1000
        pause = POLL_FIRST_S
        while True:
            if (landed := await self._landed(key, fallback)) is not None:
                return landed
            held = await self._backend(self.cache.get(lock_key))
            if held is not None and held.startswith(ERROR_PREFIX):
                exc = error_from(tuple(orjson.loads(held[len(ERROR_PREFIX):])))
                if fallback is not None and self._usable(system_id, resource, fallback):
                    self.metrics_of(system_id).stale()
                    return fallback.served(stale=True, error=exc)
                raise exc
            if held is None:  # released: its entry may have landed between our two reads
                return await self._landed(key, fallback)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)

    def _usable(self, system_id: str, resource: Named, entry: _Entry) -> bool:
        """Still within ttl + max_stale (the backend drops it then, but a read may race that)."""
        bound = self.policy.fresh_s(system_id, resource.name) + self.policy.stale_s(system_id)
        return time.time() - entry.fetched_at <= bound

    # --- background refresh ----------------------------------------------------------------

    def _refresh_soon(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str, entry: _Entry) -> None:
        if key in self._refreshing or key in self._filling:
            return
        task = asyncio.create_task(self._refresh(system_id, resource, args, key, entry))
        self._refreshing[key] = task
        task.add_done_callback(lambda done: self._forget(self._refreshing, key, done))

    async def _refresh(self, system_id: str, resource: Named, args: tuple[Any, ...], key: str, entry: _Entry) -> None:
        lock_key, token = f"{key}:lock", secrets.token_hex(8).encode()
        if not await self._lock(lock_key, token):
            return  # another replica is refreshing it
        self.metrics_of(system_id).refresh()
        try:
            value = await self._call(system_id, resource, args)
        except UpstreamError as exc:
            # keep serving the entry, now saying why it is stale (unless someone wrote a newer one)
            current = await self._read(key)
            if current is None or current.fetched_at <= entry.fetched_at:
                marked = _Entry(entry.fetched_at, entry.value, error_info(exc), entry.invalidated)
                await self._write(system_id, resource, key, marked)
            await self._mark_failed(lock_key, exc)  # and no other refresh, on any replica, for a moment
            return
        except Exception:
            log.exception("refreshing %s failed", key)
            await self._unlock(lock_key, token)
            return
        await self._write(system_id, resource, key, _Entry(time.time(), value))
        await self._unlock(lock_key, token)

    # --- events ----------------------------------------------------------------------------

    async def put(self, system_id: str, resource: Named, args: tuple[Any, ...], value: Any) -> None:
        """Store a vendor's answer obtained otherwise (an event carrying the new data)."""
        await self._write(system_id, resource, cache_key(system_id, resource.name, args), _Entry(time.time(), value))

    async def invalidate(self, system_id: str, resource: Named, args: tuple[Any, ...] = ()) -> None:
        """An event says this answer changed: the next read fetches it (falling back to it if the vendor fails).

        The entry is marked, not deleted, so stale-if-error still has the last good answer.
        """
        key = cache_key(system_id, resource.name, args)
        entry = await self._read(key)
        if entry is not None and not entry.invalidated:
            await self._write(system_id, resource, key, _Entry(entry.fetched_at, entry.value, entry.error, True))

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

    async def _read(self, key: str) -> _Entry | None:
        """The entry, if any; concurrent reads of one key share one backend read."""
        task = self._reading.get(key)
        if task is None:
            task = asyncio.create_task(self._backend(self.cache.get(key)))
            self._reading[key] = task
            task.add_done_callback(lambda done: self._forget(self._reading, key, done))
        raw = await asyncio.shield(task)
        return None if raw is None else _Entry.load(raw)

    async def _write(self, system_id: str, resource: Named, key: str, entry: _Entry) -> None:
        age_s = time.time() - entry.fetched_at
        keep_s = self.policy.fresh_s(system_id, resource.name) + self.policy.stale_s(system_id) - age_s
        if keep_s > 0:
            await self._backend(self.cache.set(key, entry.dump(), keep_s))

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
    def _forget(tasks: dict[str, Any], key: str, done: asyncio.Task[Any]) -> None:
        if tasks.get(key) is done:
            del tasks[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody awaited any more is not "never retrieved"
