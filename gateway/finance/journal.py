"""Balanced daily journals: one per facility, local day and currency.

    debit   one line per payment type:     the gross amounts paid that way
    credit  one line per revenue category: the net amounts (gross - tax) earned that way
    credit  one line for the tax:          the tax in the gross amounts

gross = net + tax for every transaction, so debits equal credits exactly (Decimal, no rounding
anywhere). A line whose sum is negative (refunds outweighing sales) moves to the other side
with its absolute value, so no line ever carries a negative amount and the journal still
balances. A day without transactions has no journal (nor one whose sums all cancel out).

Journal numbers are deterministic, `<prefix>-<facility code>-<YYYYMMDD>` (with `-<currency>`
when the facility took more than one currency that day): exporting the same day twice yields
the same numbers, so an accounting system that refuses a duplicate number refuses a double import.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from adapters.operation_models import PaymentType, RevenueCategory
from gateway.finance.accounts import Account, FinanceConfig
from gateway.finance.ledger import FacilityInfo, Ledger, LedgerEntry, Totals, totals

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class JournalLine:
    account: Account
    debit: Decimal  # one of debit and credit is zero, the other positive
    credit: Decimal
    description: str
    #: the facility's cost centre / class applies (revenue lines), as opposed to balance-sheet lines
    revenue: bool = False

    @property
    def signed(self) -> Decimal:
        """Debit positive, credit negative (IIF, Yardi)."""
        return self.debit - self.credit


@dataclass(frozen=True, slots=True)
class Journal:
    number: str
    facility: FacilityInfo
    date: date  # the facility's local day
    currency: str
    memo: str
    lines: tuple[JournalLine, ...]
    count: int  # transactions in it

    @property
    def debits(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def credits(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)


@dataclass(frozen=True)
class JournalSet:
    """What an export renders: the journals of a ledger, and the ledger's totals they add up to."""

    first_day: date
    last_day: date
    journals: tuple[Journal, ...]
    totals: tuple[Totals, ...]
    record_errors: int
    chart: FinanceConfig


def side(account: Account, amount: Decimal, description: str, *, debit_normal: bool, revenue: bool = False
         ) -> JournalLine | None:
    """A line on its normal side, or on the other side with the absolute amount when negative."""
    if amount == 0:
        return None
    if (amount > 0) == debit_normal:
        return JournalLine(account, abs(amount), ZERO, description, revenue)
    return JournalLine(account, ZERO, abs(amount), description, revenue)


def journal_of(number: str, facility: FacilityInfo, day: date, currency: str, entries: list[LedgerEntry],
               chart: FinanceConfig) -> Journal:
    paid: dict[PaymentType, Decimal] = defaultdict(Decimal)
    earned: dict[RevenueCategory, Decimal] = defaultdict(Decimal)
    tax = ZERO
    for entry in entries:
        t = entry.transaction
        paid[t.payment_type] += t.amount.amount
        earned[t.revenue_category] += t.amount.amount - t.tax.amount
        tax += t.tax.amount
    when = day.isoformat()
    lines = [
        *(side(chart.payment_accounts[p], paid[p], f"{p.value.capitalize()} payments {when}", debit_normal=True)
          for p in PaymentType if p in paid),
        *(side(chart.revenue_accounts[c], earned[c], f"{c.value.capitalize()} revenue {when}", debit_normal=False,
               revenue=True) for c in RevenueCategory if c in earned),
        side(chart.tax_account, tax, f"Tax {when}", debit_normal=False),
    ]
    memo = f"Parking revenue {facility.name} {when} {currency} ({len(entries)} transactions)"
    journal = Journal(number, facility, day, currency, memo, tuple(line for line in lines if line is not None),
                      len(entries))
    assert journal.debits == journal.credits, f"journal {number} does not balance"  # gross = net + tax, always
    return journal


def build_journals(ledger: Ledger, chart: FinanceConfig) -> JournalSet:
    groups: dict[tuple[str, date, str], list[LedgerEntry]] = defaultdict(list)
    for entry in ledger.entries:
        groups[(entry.facility_id, entry.local_date, entry.transaction.amount.currency)].append(entry)
    currencies_per_day: dict[tuple[str, date], int] = defaultdict(int)
    for facility_id, day, _ in groups:
        currencies_per_day[(facility_id, day)] += 1
    order = {facility_id: index for index, facility_id in enumerate(ledger.facilities)}
    journals = []
    for facility_id, day, currency in sorted(groups, key=lambda k: (k[1], order.get(k[0], len(order)), k[0], k[2])):
        number = f"{chart.journal_prefix}-{chart.code(facility_id)}-{day:%Y%m%d}".lstrip("-")
        if currencies_per_day[(facility_id, day)] > 1:
            number += f"-{currency}"
        facility = ledger.facilities.get(facility_id) or FacilityInfo(facility_id, facility_id, "UTC")
        journal = journal_of(number, facility, day, currency, groups[(facility_id, day, currency)], chart)
        if journal.lines:  # sales and refunds that cancel out to the cent leave nothing to post
            journals.append(journal)
    return JournalSet(ledger.first_day, ledger.last_day, tuple(journals),
                      tuple(totals(e.transaction for e in ledger.entries)), len(ledger.errors), chart)
