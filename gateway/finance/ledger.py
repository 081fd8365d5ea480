"""The money of a range of local days, per facility, read from every PARCS behind them.

A finance day is a facility's own calendar day: a Berlin garage's 1 November runs from
midnight to midnight Berlin time, whatever the gateway's clock. Each PARCS system is asked once,
over the union of its facilities' UTC windows, and each transaction is then kept only inside
its own facility's window (`load_transactions`).

These reads bypass the upstream cache: a journal must see every transaction the vendor has,
not an answer that was fresh a minute ago. They share the operation's deadline (gateway/deadline.py):
a system still answering then raises `UpstreamTimeout`. A failing system raises its `UpstreamError`
(the callers turn it into a coded error: a ledger missing one system's money is never passed off as
the whole); a malformed record becomes a `RecordError` in the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from adapters.models import Batch, RecordError, SystemKind
from adapters.operation_models import Transaction
from gateway.deadline import Deadline
from gateway.directory import FacilityEntry

if TYPE_CHECKING:
    from gateway.runtime import Runtime

#: the longest range one request may ask for: a quarter
MAX_DAYS = 92
#: at most this many facilities are named to a PARCS that filters by facility (more: it is asked for all)
MAX_NAMED = 100


@dataclass(frozen=True, slots=True)
class FacilityInfo:
    """What a journal needs to know about a facility."""

    id: str
    name: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    transaction: Transaction
    facility_id: str
    local_date: date  # the facility's calendar day the transaction belongs to


@dataclass
class Ledger:
    first_day: date
    last_day: date
    #: the facilities asked for, in the order asked (also those without a PARCS or a transaction)
    facilities: dict[str, FacilityInfo]
    #: oldest first
    entries: list[LedgerEntry] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Totals:
    currency: str
    count: int
    gross: Decimal
    tax: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.tax


def totals(transactions: Iterable[Transaction]) -> list[Totals]:
    """Count, gross, tax and net per currency, sorted by currency (the figures every export must match)."""
    sums: dict[str, tuple[int, Decimal, Decimal]] = {}
    for t in transactions:
        count, gross, tax = sums.get(t.amount.currency, (0, Decimal(0), Decimal(0)))
        sums[t.amount.currency] = (count + 1, gross + t.amount.amount, tax + t.tax.amount)
    return [Totals(currency, *sums[currency]) for currency in sorted(sums)]


#: the books parkgate can be asked about (a year 1 or 9999 date is a typo, and breaks time zone arithmetic)
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)


def check_range(first_day: date, last_day: date) -> None:
    """ValueError with a message a client can act on when the range is reversed or too long."""
    if not (EARLIEST <= first_day and last_day <= LATEST):
        raise ValueError(f"Dates must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}.")
    if last_day < first_day:
        raise ValueError(f"`to` ({last_day.isoformat()}) is before `from` ({first_day.isoformat()}).")
    days = (last_day - first_day).days + 1
    if days > MAX_DAYS:
        raise ValueError(f"The range is {days} days; at most {MAX_DAYS} days can be read at once.")


def local_window(time_zone: str, first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """[since, until) in UTC covering the local days first_day..last_day in `time_zone`."""
    zone = ZoneInfo(time_zone)
    since = datetime.combine(first_day, time(0), zone).astimezone(UTC)
    until = datetime.combine(last_day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return since, until


def facility_info(entry: FacilityEntry) -> FacilityInfo:
    return FacilityInfo(entry.id, entry.config.name, entry.config.time_zone)


async def load_transactions(runtime: Runtime, entries: Sequence[FacilityEntry], first_day: date,
                            last_day: date, deadline: Deadline) -> Ledger:
    """The transactions of `entries` on the local days first_day..last_day (inclusive)."""
    check_range(first_day, last_day)
    ledger = Ledger(first_day, last_day, {entry.id: facility_info(entry) for entry in entries})
    by_system: dict[str, list[FacilityEntry]] = {}
    for entry in entries:
        ref = entry.ref(SystemKind.PARCS)
        if ref is not None:
            by_system.setdefault(ref.system_id, []).append(entry)
    systems = list(by_system)
    # Every system at once; the first failure (in configuration order) is the one reported.
    results = await asyncio.gather(*(system_ledger(runtime, s, by_system[s], first_day, last_day, deadline)
                                     for s in systems),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
        entries_of_system, errors = result
        ledger.entries.extend(entries_of_system)
        ledger.errors.extend(errors)
    ledger.entries.sort(key=lambda e: (e.transaction.occurred_at, e.facility_id, e.transaction.vendor_id))
    return ledger


async def system_ledger(runtime: Runtime, system_id: str, entries: Sequence[FacilityEntry], first_day: date,
                        last_day: date, deadline: Deadline) -> tuple[list[LedgerEntry], list[RecordError]]:
    windows = {entry.id: local_window(entry.config.time_zone, first_day, last_day) for entry in entries}
    since = min(w[0] for w in windows.values())
    until = max(w[1] for w in windows.values())
    adapter = runtime.systems.parcs(system_id)
    named = some_of(runtime, system_id, entries)
    batch: Batch[Transaction] = await deadline.bound(
        system_id, runtime.systems.track(system_id, adapter.transactions(since, until, named)))
    return place(system_id, batch, entries, windows)


def some_of(runtime: Runtime, system_id: str, entries: Sequence[FacilityEntry]) -> list[str] | None:
    """The system's ids of `entries` when they are only some of its facilities (one facility's ledger,
    a client limited to a few), so that a dialect that can is asked for theirs only; None: all of them."""
    named = {ref.vendor_id for entry in entries if (ref := entry.ref(SystemKind.PARCS)) is not None}
    runs = sum(1 for entry in runtime.directory.entries
               if (ref := entry.ref(SystemKind.PARCS)) is not None and ref.system_id == system_id)
    return sorted(named) if len(named) < runs and len(named) <= MAX_NAMED else None


def place(system_id: str, batch: Batch[Transaction], entries: Sequence[FacilityEntry],
          windows: dict[str, tuple[datetime, datetime]]) -> tuple[list[LedgerEntry], list[RecordError]]:
    """Each transaction at its gateway facility and local day; those of other facilities, or outside
    their facility's own window, are left out."""
    by_vendor_id: dict[str, list[FacilityEntry]] = {}
    for entry in entries:
        ref = entry.ref(SystemKind.PARCS)
        assert ref is not None
        by_vendor_id.setdefault(ref.vendor_id, []).append(entry)
    placed: list[LedgerEntry] = []
    errors = list(batch.errors)
    for t in batch.items:
        if t.amount.currency != t.tax.currency:
            errors.append(RecordError(system_id, t.vendor_id,
                                      f"tax in {t.tax.currency} on an amount in {t.amount.currency}"))
            continue
        if not (_cents(t.amount.amount) and _cents(t.tax.amount)):
            # a fraction of a cent cannot be booked: rounded per line it would unbalance a journal
            errors.append(RecordError(system_id, t.vendor_id, f"amount {t.amount.amount} or tax {t.tax.amount} "
                                                              "is not in whole cents"))
            continue
        for entry in by_vendor_id.get(t.vendor_facility_id, ()):
            since, until = windows[entry.id]
            if since <= t.occurred_at < until:
                local = t.occurred_at.astimezone(ZoneInfo(entry.config.time_zone)).date()
                placed.append(LedgerEntry(t, entry.id, local))
    return placed, errors


def _cents(amount: Decimal) -> bool:
    return amount == amount.quantize(Decimal("0.01"))
