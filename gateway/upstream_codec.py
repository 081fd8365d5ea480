"""Vendor answers as JSON for a cache every replica shares, and back: data only, never code.

The upstream cache used to pickle its entries, so that whoever could write to Redis could run code
in every gateway reading it. This codec reads nothing but JSON, and rebuilds only the types it
names in `ALLOWED`: the adapters' record dataclasses and enums (adapters/models.py,
adapters/operation_models.py). Anything else — a pickle, a tag it does not know, a field a class
does not have — is `Undecodable`, which the cache treats as a miss.

    None, bool, int, float, str, list     as themselves (an int beyond 64 bits: {"$int": "..."},
                                          inf and nan: {"$float": "inf"})
    tuple                                 {"$tuple": [...]}
    dict                                  {"$dict": [[key, value], ...]}   (keys of any encodable type)
    set, frozenset                        {"$set": [...]}
    Decimal                               {"$dec": "1.50"}                 (exact, as written)
    datetime, date, timedelta             {"$dt": ISO 8601}, {"$date": ISO 8601}, {"$td": [days, seconds, microseconds]}
    an allowed enum                       {"$enum": "Trend", "v": "RISING"}
    an allowed dataclass                  {"$": "OccupancyReading", "f": {field: value, ...}}
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from adapters import models, operation_models


class Undecodable(ValueError):
    """Bytes that are not an entry this codec wrote (another format, a pickle, an unknown type)."""


class Unencodable(TypeError):
    """A value of a type the codec does not carry (the cache then keeps nothing for it)."""


INT64 = (-(2**63), 2**64 - 1)  # the integers orjson writes as numbers


def _allowed() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in (models, operation_models):
        for name, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == module.__name__ and (
                    dataclasses.is_dataclass(value) or issubclass(value, enum.Enum)):
                found[name] = value
    return found


#: every type the cache may rebuild, by name: the adapters' records and enums, nothing else
ALLOWED: dict[str, type] = _allowed()
_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.init)
    for cls in ALLOWED.values() if dataclasses.is_dataclass(cls)
}


def to_json(value: Any) -> Any:
    """`value` as JSON-able data, tagged so that `from_json` can rebuild it exactly."""
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, enum.Enum):  # StrEnum is a str: tag it first
            return _enum(value)
        if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
            return {"$int": str(value)}  # beyond what JSON numbers carry here
        if isinstance(value, float) and not math.isfinite(value):
            return {"$float": repr(value)}  # inf, -inf, nan: not JSON
        return value
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, enum.Enum):
        return _enum(value)
    cls = type(value)
    fields = _FIELDS.get(cls)
    if fields is not None:
        return {"$": cls.__name__, "f": {name: to_json(getattr(value, name)) for name in fields}}
    if isinstance(value, tuple):
        return {"$tuple": [to_json(v) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[to_json(k), to_json(v)] for k, v in value.items()]}
    if isinstance(value, set | frozenset):
        return {"$set": [to_json(v) for v in value]}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}  # exact, unlike total_seconds()
    raise Unencodable(f"the upstream cache does not carry {cls.__module__}.{cls.__qualname__}")


def _enum(value: enum.Enum) -> dict[str, Any]:
    if ALLOWED.get(type(value).__name__) is not type(value):
        raise Unencodable(f"the upstream cache does not carry the enum {type(value).__qualname__}")
    return {"$enum": type(value).__name__, "v": value.value}


def from_json(data: Any) -> Any:
    """The value `to_json` made; `Undecodable` for anything it would not have made."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [from_json(v) for v in data]
    if not isinstance(data, dict) or len(data) > 2:
        raise Undecodable("not a value of the upstream cache")
    try:
        if "$" in data:
            cls = ALLOWED.get(data["$"])
            if cls is None or cls not in _FIELDS:
                raise Undecodable(f"no record type {data['$']!r}")
            raw = data["f"]
            if not isinstance(raw, dict) or not set(raw) <= set(_FIELDS[cls]):
                raise Undecodable(f"fields of {data['$']!r} that it does not have")
            return cls(**{name: from_json(v) for name, v in raw.items()})
        (tag, raw), *_ = data.items()
        decode = _TAGGED.get(tag)
        if decode is None:
            raise Undecodable(f"no tag {tag!r}")
        return decode(data, raw)
    except Undecodable:
        raise
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:  # a tag with the wrong shape
        raise Undecodable(str(exc)) from exc


def _enum_of(data: dict[str, Any], name: Any) -> Any:
    cls = ALLOWED.get(name)
    if cls is None or not issubclass(cls, enum.Enum):
        raise Undecodable(f"no enum {name!r}")
    return cls(data["v"])


_TAGGED: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "$tuple": lambda _, raw: tuple(from_json(v) for v in raw),
    "$dict": lambda _, raw: {_hashable(from_json(k)): from_json(v) for k, v in raw},
    "$set": lambda _, raw: {_hashable(from_json(v)) for v in raw},
    "$dec": lambda _, raw: Decimal(_text(raw)),
    "$dt": lambda _, raw: datetime.fromisoformat(_text(raw)),
    "$date": lambda _, raw: date.fromisoformat(_text(raw)),
    "$td": lambda _, raw: timedelta(days=int(raw[0]), seconds=int(raw[1]), microseconds=int(raw[2])),
    "$int": lambda _, raw: int(_text(raw)),
    "$float": lambda _, raw: float(_text(raw)),
    "$enum": _enum_of,
}


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise Undecodable("a tagged value that is not text")
    return raw


def _hashable(value: Any) -> Any:
    if isinstance(value, list):  # only a tuple could have been a key
        raise Undecodable("a list as a key")
    return value


def dumps(value: Any) -> bytes:
    return orjson.dumps(to_json(value))


def loads(raw: bytes) -> Any:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Undecodable("not JSON") from exc
    return from_json(data)
