"""Reading an APDS list, as the adapter and its operations mixin both do: the pages as they
arrived, and what a malformed record raises (it becomes a RecordError; anything else is a bug
and should surface). Apart from both so that neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.apds.wire import WireError

# What a mapper can raise on a malformed record; anything else is a bug and should surface.
RECORD_FAULTS = (WireError, LookupError, TypeError, ValueError, ArithmeticError)


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Any]
    received_at: datetime  # when this page's response arrived
