"""Where the upstream cache keeps its entries, so that reading a page costs the page, not the list.

An entry is one vendor answer (gateway/upstream.py): when it was fetched, the error of its last
failed refresh, whether an event invalidated it, and the answer. A list answer (a `Batch` of a
`Records` resource, e.g. the occupancy of every place of a system) is kept record by record under
the resource's key, so that a request can read the records of the facilities on its page
(`Want`) and get a `Slice`:

    MemoryEntries  the decoded entry itself, in this process, with its records indexed by key once
                   when written: a read is a dictionary lookup per wanted record, no encoding
    RedisEntries   one Redis hash per entry (shared by every replica):
                       m          the entry's metadata (JSON: format, fetched_at, error, invalidated, kind)
                       t          fetched_at again, as the entry's version for compare-and-set
                       v          a whole answer that is not a list (JSON, gateway/upstream_codec.py)
                       i:<key>    the records of a list with that key ([[position, record], ...])
                       e:<ref>    the records the adapter could not read, by their reference
                   a page reads its fields with one HMGET; writes, marks and patches (an event's
                   records put in place of theirs: `patch`) are scripts on one key (so a Redis
                   Cluster keeps an entry on one node, no hash tag needed)
    BytesEntries   any other `Cache`: the whole entry as one JSON value

Nothing here unpickles: a value read from a store every replica shares must never be able to run
code. What cannot be decoded (another format, a pickle someone planted, a type the codec does not
know) is a miss.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from redis.exceptions import ResponseError

from adapters.models import Batch, RecordError
from gateway.cache import Cache, MemoryCache, RedisCache
from gateway.upstream_codec import Undecodable, Unencodable, from_json, to_json

log = logging.getLogger("parkgate.upstream")

ENTRY_FORMAT = 2  # 1 was pickle
KeyOf = Callable[[Any], Hashable]
ErrorInfo = tuple[str, str, str]  # (code, system id, detail)


@dataclass(frozen=True, slots=True)
class Want:
    """A slice of a list answer: the records with these keys, and the unreadable ones with these refs."""

    keys: tuple[Hashable, ...] = ()
    refs: tuple[str, ...] = ()


#: the entry's metadata only (invalidating or marking it)
NOTHING = Want()


@dataclass(slots=True)
class Slice:
    """The part of a list answer a `Want` named: records by key, unreadable records by reference."""

    items: dict[Hashable, Any] = field(default_factory=dict)
    errors: dict[str, RecordError] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordIndex:
    """A list answer's records by key (the last of a key wins, as the loaders index them)."""

    items: dict[Hashable, Any]
    errors: dict[str, RecordError]

    @classmethod
    def of(cls, batch: Batch[Any], key_of: KeyOf) -> RecordIndex:
        return cls({key_of(item): item for item in batch.items}, {error.record_ref: error for error in batch.errors})

    def slice(self, want: Want) -> Slice:
        items, errors = self.items, self.errors
        return Slice({k: items[k] for k in want.keys if k in items}, {r: errors[r] for r in want.refs if r in errors})


@dataclass(frozen=True, slots=True)
class Entry:
    fetched_at: float  # epoch seconds (wall clock: shared by replicas)
    value: Any  # the whole answer, or the `Slice` of it a read wanted
    error: ErrorInfo | None = None  # the last failed refresh
    invalidated: bool = False  # an event said it changed: fetch before serving, fall back to it
    index: RecordIndex | None = None  # a list answer's records by key, where the store keeps it

    def sliced(self, want: Want | None, key_of: KeyOf | None) -> Entry:
        """This entry with its value cut to `want` (a value that is not a list stays whole)."""
        if want is None or isinstance(self.value, Slice):
            return self
        index = self.index
        if index is None:
            if not isinstance(self.value, Batch) or key_of is None:
                return self
            index = RecordIndex.of(self.value, key_of)
        return replace(self, value=index.slice(want), index=None)


def list_key(value: Any, key_of: KeyOf | None) -> KeyOf | None:
    """The key to keep `value`'s records by, when it is a list answer of a keyed resource."""
    return key_of if key_of is not None and isinstance(value, Batch) else None


def indexed(entry: Entry, key_of: KeyOf | None) -> Entry:
    """`entry` with its records indexed by key when it is a list answer of a keyed resource: done
    once where an entry is kept in the process, not by every request that reads it."""
    key_of = list_key(entry.value, key_of)
    return entry if key_of is None else replace(entry, index=RecordIndex.of(entry.value, key_of))


class EntryStore(ABC):
    """Entries by key, each kept `keep_s` seconds. Raises on backend failure; the cache decides."""

    @abstractmethod
    async def read(self, key: str, want: Want | None) -> Entry | None:
        """The entry (its value whole, or the slice `want` names), or None if absent or unreadable."""

    @abstractmethod
    async def write(self, key: str, entry: Entry, keep_s: float, key_of: KeyOf | None) -> None: ...

    @abstractmethod
    async def mark(self, key: str, fetched_at: float, error: ErrorInfo | None, invalidated: bool, keep_s: float) -> None:
        """Set the entry's error and invalidation, if it is still the one fetched at `fetched_at`."""

    @abstractmethod
    async def patch(self, key: str, fetched_at: float, records: dict[Hashable, Any], key_of: KeyOf,
                    keep_s: float) -> bool:
        """Put `records` (by key) in the list entry in place of its records with those keys, keeping
        their positions, if it is still the one fetched at `fetched_at` and holds every one of the
        keys; the entry's age and marks stay as they are. False when it did not (the caller invalidates)."""


def entry_store(cache: Cache) -> EntryStore:
    if isinstance(cache, MemoryCache):
        return MemoryEntries(cache)
    if isinstance(cache, RedisCache):
        return RedisEntries(cache)
    return BytesEntries(cache)


class MemoryEntries(EntryStore):
    """The entries themselves, in this process's SimpleMemoryCache (which stores values as given)."""

    def __init__(self, cache: MemoryCache) -> None:
        self.backend = cache.backend

    async def read(self, key: str, want: Want | None) -> Entry | None:
        entry = await self.backend.get(key)
        if not isinstance(entry, Entry):  # a lock or error marker shares the namespace, never a key
            return None
        return entry.sliced(want, None)

    async def write(self, key: str, entry: Entry, keep_s: float, key_of: KeyOf | None) -> None:
        await self.backend.set(key, indexed(entry, key_of), ttl=max(0.001, keep_s))

    async def mark(self, key: str, fetched_at: float, error: ErrorInfo | None, invalidated: bool, keep_s: float) -> None:
        entry = await self.backend.get(key)
        if isinstance(entry, Entry) and entry.fetched_at == fetched_at and keep_s > 0:
            await self.backend.set(key, replace(entry, error=error, invalidated=invalidated), ttl=max(0.001, keep_s))

    async def patch(self, key: str, fetched_at: float, records: dict[Hashable, Any], key_of: KeyOf,
                    keep_s: float) -> bool:
        entry = await self.backend.get(key)
        patched = _patched(entry if isinstance(entry, Entry) else None, fetched_at, records, key_of, keep_s)
        if patched is None:
            return False
        await self.backend.set(key, patched, ttl=max(0.001, keep_s))
        return True


def _patched(entry: Entry | None, fetched_at: float, records: dict[Hashable, Any], key_of: KeyOf,
             keep_s: float) -> Entry | None:
    """`EntryStore.patch`'s new entry: None unless `entry` is still the one fetched at `fetched_at`,
    is kept a while longer, and `with_records` can put the records in it."""
    if entry is None or entry.fetched_at != fetched_at or keep_s <= 0:
        return None
    return with_records(entry, records, key_of)


def replaces(old: Any, new: Any) -> bool:
    """Whether `new` may take `old`'s place: a record that says when it was received (`received_at`)
    never replaces a later one (two replicas renewing one garage may finish in either order)."""
    old_at, new_at = getattr(old, "received_at", None), getattr(new, "received_at", None)
    return old_at is None or new_at is None or new_at >= old_at


def with_records(entry: Entry, records: dict[Hashable, Any], key_of: KeyOf) -> Entry | None:
    """`entry` with `records` in place of its records with those keys (each unless what is there is
    later); None unless it is a list holding them all."""
    if not isinstance(entry.value, Batch):
        return None
    index = entry.index or RecordIndex.of(entry.value, key_of)
    if not records.keys() <= index.items.keys():
        return None
    records = {k: record for k, record in records.items() if replaces(index.items[k], record)}
    if not records:
        return entry
    items = [records.get(key_of(item), item) for item in entry.value.items]
    return replace(entry, value=replace(entry.value, items=items),
                   index=RecordIndex({**index.items, **records}, index.errors) if entry.index is not None else None)


# --- Redis: one hash per entry -------------------------------------------------------------------

META, VERSION, WHOLE = "m", "t", "v"
ITEM, ERROR = "i:", "e:"
KIND_RECORDS, KIND_VALUE = "records", "value"
HSET_CHUNK = 1000  # fields and values per HSET inside the script (Lua's unpack has a limit)

# KEYS[1] the entry; ARGV[1] milliseconds to keep it, then field, value, field, value...
_WRITE = f"""
redis.call('DEL', KEYS[1])
local i = 2
while i <= #ARGV do
  local last = math.min(i + {HSET_CHUNK - 1}, #ARGV)
  redis.call('HSET', KEYS[1], unpack(ARGV, i, last))
  i = last + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
# KEYS[1] the entry; ARGV[1] the version it must still be (fetched_at), ARGV[2] its new metadata
_MARK = """
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'm', ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] the entry; ARGV[1] the version it must still be, then (field, its value as read, its new value)
# triples: every field must still hold what was read, else nothing is written
_PATCH = """
if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then
  return 0
end
for i = 2, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then
    return 0
  end
end
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
end
return 1
"""


def _field(prefix: str, key: Hashable) -> str:
    return prefix + orjson.dumps(to_json(key)).decode()


def _meta(entry: Entry, kind: str) -> bytes:
    return orjson.dumps({"f": ENTRY_FORMAT, "t": entry.fetched_at, "e": entry.error, "i": entry.invalidated, "k": kind})


def _version(fetched_at: float) -> str:
    return repr(float(fetched_at))


#: slices decoded last, kept with the bytes they came from (`RedisEntries.read`): at most this many
DECODED_SLICES = 512
#: a slice whose fields hold more than this many bytes is decoded afresh every time (not kept twice)
DECODED_SLICE_MAX_BYTES = 256 * 1024


class RedisEntries(EntryStore):
    def __init__(self, cache: RedisCache) -> None:
        self.cache = cache
        self.client: Any = cache.client
        self._write = self.client.register_script(_WRITE)
        self._mark = self.client.register_script(_MARK)
        self._patch = self.client.register_script(_PATCH)
        #: (key, want) -> (the fields' bytes as read, the entry decoded from them). A page's slice is read
        #: on every request; when its bytes are the ones decoded last time (nothing was written, marked or
        #: invalidated since: each changes the metadata's bytes at least), that entry is the answer. Reads
        #: coalesce within a moment (gateway/upstream.py `_read`); this spares the decoding between them,
        #: which is what a worker among several, with fewer requests at once each, paid most.
        self._decoded: OrderedDict[tuple[str, Want], tuple[list[bytes | None], Entry]] = OrderedDict()

    def _key(self, key: str) -> str:
        return f"{self.cache.namespace}:{key}"

    async def read(self, key: str, want: Want | None) -> Entry | None:
        fields: dict[str, bytes] | None
        try:
            if want is None:
                found: dict[bytes, bytes] = await self.cache.timed(self.client.hgetall(self._key(key)))
                fields = {name.decode(): value for name, value in found.items()}
            else:
                names = [META, WHOLE, *(_field(ITEM, k) for k in want.keys), *(_field(ERROR, r) for r in want.refs)]
                values = await self.cache.timed(self.client.hmget(self._key(key), names))
                decoded = self._decoded.get((key, want))
                if decoded is not None and decoded[0] == values:  # the bytes decoded last time
                    self._decoded.move_to_end((key, want))
                    return decoded[1]
                fields = {name: value for name, value in zip(names, values, strict=True) if value is not None}
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            fields = None  # not one of our hashes (an old pickled entry, or planted)
        try:
            if fields is not None:
                entry = _decode(fields, want)
                if want is not None and entry is not None:
                    self._keep_decoded(key, want, values, entry)
                return entry
        except (Undecodable, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.info("upstream cache entry %s unreadable (%s): dropped, a miss", key, exc)
        # Unreadable: gone, so that the fetch this miss makes stores a readable one in its place
        # (left there, it would look present to the replicas waiting for that fetch).
        await self.cache.timed(self.client.delete(self._key(key)))
        return None

    def _keep_decoded(self, key: str, want: Want, values: list[bytes | None], entry: Entry) -> None:
        if sum(len(value) for value in values if value is not None) > DECODED_SLICE_MAX_BYTES:
            return
        self._decoded[(key, want)] = (values, entry)
        self._decoded.move_to_end((key, want))
        if len(self._decoded) > DECODED_SLICES:
            self._decoded.popitem(last=False)

    async def write(self, key: str, entry: Entry, keep_s: float, key_of: KeyOf | None) -> None:
        try:
            mapping = _encode(entry, list_key(entry.value, key_of))
        except Unencodable as exc:
            log.warning("not caching %s: %s", key, exc)
            return
        args: list[Any] = [max(1, int(keep_s * 1000))]
        for name, value in mapping.items():
            args += (name, value)
        await self.cache.timed(self._write(keys=[self._key(key)], args=args))

    async def mark(self, key: str, fetched_at: float, error: ErrorInfo | None, invalidated: bool, keep_s: float) -> None:
        meta = orjson.loads(_meta(Entry(fetched_at, None, error, invalidated), KIND_VALUE))
        # the kind stays what it was: read it back with the version check, in the script's one step
        found = await self.cache.timed(self.client.hget(self._key(key), META))
        if found is None:
            return
        try:
            meta["k"] = orjson.loads(found)["k"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        await self.cache.timed(self._mark(keys=[self._key(key)], args=[_version(fetched_at), orjson.dumps(meta)]))

    async def patch(self, key: str, fetched_at: float, records: dict[Hashable, Any], key_of: KeyOf,
                    keep_s: float) -> bool:
        names = [_field(ITEM, record_key) for record_key in records]
        found = await self.cache.timed(self.client.hmget(self._key(key), [VERSION, *names]))
        if found[0] != _version(fetched_at).encode() or any(raw is None for raw in found[1:]):
            return False
        args: list[Any] = [_version(fetched_at)]
        try:
            for name, raw, record in zip(names, found[1:], records.values(), strict=True):
                old = _records(raw, Any)
                if not replaces(old[-1][1], record):
                    continue  # a later reading is there already (another replica's renewal)
                # the record takes the position(s) its key had, so that the whole list reads in the same order
                args += (name, raw, orjson.dumps([[position, to_json(record)] for position, _ in old]))
        except (Undecodable, Unencodable, orjson.JSONDecodeError, IndexError, KeyError, TypeError, ValueError) as exc:
            log.info("upstream cache entry %s not patched (%s)", key, exc)
            return False
        if len(args) == 1:
            return True
        return bool(await self.cache.timed(self._patch(keys=[self._key(key)], args=args)))


def _encode(entry: Entry, key_of: KeyOf | None) -> dict[str, bytes]:
    if key_of is None:
        return {META: _meta(entry, KIND_VALUE), VERSION: _version(entry.fetched_at).encode(),
                WHOLE: orjson.dumps(to_json(entry.value))}
    batch: Batch[Any] = entry.value
    items: dict[str, list[Any]] = {}
    for position, item in enumerate(batch.items):
        items.setdefault(_field(ITEM, key_of(item)), []).append([position, to_json(item)])
    for position, error in enumerate(batch.errors):
        items.setdefault(_field(ERROR, error.record_ref), []).append([position, to_json(error)])
    return {META: _meta(entry, KIND_RECORDS), VERSION: _version(entry.fetched_at).encode(),
            **{name: orjson.dumps(records) for name, records in items.items()}}


def _decode(fields: dict[str, bytes], want: Want | None) -> Entry | None:
    raw_meta = fields.get(META)
    if raw_meta is None:
        return None
    meta = orjson.loads(raw_meta)
    if not isinstance(meta, dict) or meta.get("f") != ENTRY_FORMAT:
        return None
    error = meta["e"]
    if error is not None:
        code, system_id, detail = (str(part) for part in error)
        error = (code, system_id, detail)
    fetched_at, invalidated = float(meta["t"]), bool(meta["i"])
    if meta["k"] == KIND_VALUE:
        return Entry(fetched_at, from_json(orjson.loads(fields[WHOLE])), error, invalidated)
    if want is not None:
        value: Any = Slice()
        for key in want.keys:
            if (raw := fields.get(_field(ITEM, key))) is not None:
                value.items[key] = _records(raw, Any)[-1][1]
        for ref in want.refs:
            if (raw := fields.get(_field(ERROR, ref))) is not None:
                value.errors[ref] = _records(raw, RecordError)[-1][1]
    else:
        items = sorted(p for name, raw in fields.items() if name.startswith(ITEM) for p in _records(raw, Any))
        errors = sorted(p for name, raw in fields.items() if name.startswith(ERROR) for p in _records(raw, RecordError))
        value = Batch(items=[record for _, record in items], errors=[error for _, error in errors])
    return Entry(fetched_at, value, error, invalidated)


def _records(raw: bytes, kind: Any) -> list[tuple[int, Any]]:
    decoded = [(int(position), from_json(record)) for position, record in orjson.loads(raw)]
    if kind is RecordError and not all(isinstance(record, RecordError) for _, record in decoded):
        raise Undecodable("an unreadable record that is not a RecordError")
    return decoded


# --- any other Cache: the whole entry as one value -------------------------------------------------


class BytesEntries(EntryStore):
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def read(self, key: str, want: Want | None) -> Entry | None:
        raw = await self.cache.get(key)
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("f") != ENTRY_FORMAT:
                return None
            error = tuple(str(p) for p in data["e"]) if data["e"] is not None else None
            entry = Entry(float(data["t"]), from_json(data["v"]), error, bool(data["i"]))  # type: ignore[arg-type]
        except (Undecodable, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        return entry  # whole: the cache cuts it to what it wants with the resource's key

    async def write(self, key: str, entry: Entry, keep_s: float, key_of: KeyOf | None) -> None:
        try:
            raw = orjson.dumps({"f": ENTRY_FORMAT, "t": entry.fetched_at, "e": entry.error, "i": entry.invalidated,
                                "v": to_json(entry.value)})
        except Unencodable as exc:
            log.warning("not caching %s: %s", key, exc)
            return
        await self.cache.set(key, raw, keep_s)

    async def mark(self, key: str, fetched_at: float, error: ErrorInfo | None, invalidated: bool, keep_s: float) -> None:
        entry = await self.read(key, None)
        if entry is not None and entry.fetched_at == fetched_at and keep_s > 0:
            await self.write(key, replace(entry, error=error, invalidated=invalidated), keep_s, None)

    async def patch(self, key: str, fetched_at: float, records: dict[Hashable, Any], key_of: KeyOf,
                    keep_s: float) -> bool:
        patched = _patched(await self.read(key, None), fetched_at, records, key_of, keep_s)
        if patched is None:
            return False
        await self.write(key, patched, keep_s, None)
        return True
