"""Domain records (adapters' dataclasses) to JSON-able values and back, for stored results.

An idempotent write keeps its first result to answer retries with; that result must survive
Redis, so it is stored as JSON: Decimals as strings, datetimes as ISO 8601, enums by value.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    return value


def load(cls: type[T], data: Any) -> T:
    """The dataclass `cls` rebuilt from `dump`'s output."""
    hints = _hints(cls)
    return cls(**{name: _load(hints[name], raw) for name, raw in data.items() if name in hints})


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _load(hint: Any, raw: Any) -> Any:
    if raw is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _load(inner, raw)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(hint)
        values = [_load(inner, v) for v in raw]
        return tuple(values) if origin is tuple else values
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return load(hint, raw)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(raw)
    if hint is Decimal:
        return Decimal(raw)
    if hint is datetime:
        return datetime.fromisoformat(raw)
    return raw
