"""Journals and their accounting formats: every file parses back, every journal balances, and the
sums in every format equal the ledger's totals (gross, tax, net per currency)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.models import Batch, Money, SystemKind
from adapters.operation_models import PaymentType, RevenueCategory, Transaction
from gateway.config import FacilityConfig
from gateway.directory import FacilityEntry, SystemRef
from gateway.finance.accounts import Account, FacilityFinance, FinanceConfig
from gateway.finance.formats import FORMATS, IIF_ENCODING
from gateway.finance.journal import JournalSet, build_journals
from gateway.finance.ledger import FacilityInfo, Ledger, LedgerEntry, check_range, local_window, place, totals
from tests.support.finance import PARSERS, nonzero, rows

D = Decimal
FACILITIES = {
    "berlin-hbf": FacilityInfo("berlin-hbf", "Parkhaus Hauptbahnhof, Süd", "Europe/Berlin"),
    "london-kx": FacilityInfo("london-kx", 'King\'s Cross "KX" Car Park', "Europe/London"),
}
CHART = FinanceConfig(
    journal_prefix="PG",
    facilities={
        "berlin-hbf": FacilityFinance(code="BHF", class_name="Berlin", location="Berlin, Hbf", cost_center="CC-BHF"),
        "london-kx": FacilityFinance(company_code="2000", yardi_property="lkx"),
    },
    payment_accounts={
        PaymentType.CARD: Account(number="1210", name="Card clearing", quickbooks="Clearing:Card"),
        PaymentType.CASH: Account(number="1000", name="Cash on hand"),
        PaymentType.MOBILE: Account(number="1220", name="Mobile payments clearing"),
        PaymentType.INVOICE: Account(number="1200", name="Accounts receivable"),
    },
)
REVENUE_NUMBERS = {a.number for a in CHART.revenue_accounts.values()}


def tx(facility: str, at: datetime, gross: str, tax: str, payment: PaymentType, category: RevenueCategory,
       currency: str = "EUR", vendor_id: str = "T1") -> LedgerEntry:
    t = Transaction(vendor_id, facility, at, Money(D(gross), currency), Money(D(tax), currency), payment, category,
                    "test")
    local = at.astimezone(ZoneInfo(FACILITIES[facility].time_zone)).date()
    return LedgerEntry(t, facility, local)


def sample_ledger() -> Ledger:
    day1 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    C, R = PaymentType, RevenueCategory
    entries = [
        tx("berlin-hbf", day1, "11.90", "1.90", C.CARD, R.TRANSIENT),  # 19 % VAT
        tx("berlin-hbf", day1, "5.95", "0.95", C.CASH, R.TRANSIENT),
        tx("berlin-hbf", day1, "119.00", "19.00", C.INVOICE, R.PERMIT),
        tx("berlin-hbf", day1, "24.00", "3.83", C.MOBILE, R.RESERVATION),
        tx("berlin-hbf", day1, "8.00", "0.00", C.CARD, R.TRANSIENT, currency="CHF"),  # a second currency that day
        tx("berlin-hbf", day2, "35.70", "5.70", C.INVOICE, R.VALIDATION),
        tx("berlin-hbf", day2, "-5.95", "-0.95", C.CARD, R.TRANSIENT),  # a refund
        tx("london-kx", day1, "18.00", "3.00", C.CARD, R.TRANSIENT, currency="GBP"),
        tx("london-kx", day2, "42.00", "7.00", C.MOBILE, R.RESERVATION, currency="GBP"),
        tx("london-kx", day2, "6.00", "1.00", C.CASH, R.TRANSIENT, currency="GBP"),
    ]
    return Ledger(date(2026, 11, 1), date(2026, 11, 2), dict(FACILITIES), entries)


def expected_totals(ledger: Ledger) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """gross, tax, net per currency, computed here without the code under test."""
    out: dict[str, list[Decimal]] = defaultdict(lambda: [D(0), D(0), D(0)])
    for e in ledger.entries:
        t = e.transaction
        sums = out[t.amount.currency]
        sums[0] += t.amount.amount
        sums[1] += t.tax.amount
        sums[2] += t.amount.amount - t.tax.amount
    return {currency: (s[0], s[1], s[2]) for currency, s in out.items()}


def check_every_format(ledger: Ledger, chart: FinanceConfig = CHART) -> JournalSet:
    journals = build_journals(ledger, chart)
    for journal in journals.journals:
        assert journal.debits == journal.credits
        assert all((line.debit > 0) != (line.credit > 0) for line in journal.lines)
    currency_of = {j.number: j.currency for j in journals.journals}
    assert len(currency_of) == len(journals.journals), "journal numbers are unique"
    want = nonzero(expected_totals(ledger))
    assert {t.currency: (t.gross, t.tax, t.net) for t in totals(e.transaction for e in ledger.entries)} == \
        expected_totals(ledger)
    for name, render in FORMATS.items():
        rendered = render(journals)
        assert rendered.extension in ("iif", "csv", "json")
        got = PARSERS[name](rendered.body, currency_of, chart).result()
        assert got == want, (name, got, want)
    return journals


def test_every_format_parses_back_balanced_with_the_ledger_totals() -> None:
    journals = check_every_format(sample_ledger())
    numbers = [j.number for j in journals.journals]
    # one per facility, local day and currency; the facility code and the currency when a day has two
    assert numbers == ["PG-BHF-20261101-CHF", "PG-BHF-20261101-EUR", "PG-london-kx-20261101", "PG-BHF-20261102",
                       "PG-london-kx-20261102"]
    first = next(j for j in journals.journals if j.number == "PG-BHF-20261101-EUR")
    lines = {line.account.number: (line.debit, line.credit) for line in first.lines}
    assert lines == {
        "1210": (D("11.90"), 0), "1000": (D("5.95"), 0), "1220": (D("24.00"), 0), "1200": (D("119.00"), 0),
        "4000": (0, D("15.00")), "4010": (0, D("20.17")), "4020": (0, D("100.00")), "2200": (0, D("25.68")),
    }
    assert first.debits == first.credits == D("160.85")


def test_a_refund_larger_than_the_sales_moves_the_line_to_the_other_side() -> None:
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    ledger = Ledger(at.date(), at.date(), dict(FACILITIES), [
        tx("berlin-hbf", at, "10.00", "1.60", PaymentType.CARD, RevenueCategory.TRANSIENT),
        tx("berlin-hbf", at, "-30.00", "-4.79", PaymentType.CARD, RevenueCategory.TRANSIENT),
        tx("berlin-hbf", at, "50.00", "7.98", PaymentType.CASH, RevenueCategory.PERMIT),
    ])
    journal = check_every_format(ledger).journals[0]
    lines = {line.account.number: (line.debit, line.credit) for line in journal.lines}
    assert lines["1210"] == (0, D("20.00")) and lines["4000"] == (D("16.81"), 0)


def test_iif_and_csv_keep_awkward_names_intact_or_harmless() -> None:
    journals = build_journals(sample_ledger(), CHART)
    iif = FORMATS["iif"](journals).body.decode(IIF_ENCODING)
    assert all(line.count("\t") == 8 for line in iif.split("\r\n") if line.startswith(("TRNS", "SPL")))
    assert "Süd" in iif and '"KX"' not in iif  # cp1252 keeps umlauts; quotes never reach QuickBooks
    names = {row["facility_name"] for row in rows(FORMATS["csv"](journals).body)}
    assert names == {f.name for f in FACILITIES.values()}  # commas and quotes round-trip through csv


def test_sap_fields_come_from_the_chart() -> None:
    journals = build_journals(sample_ledger(), CHART)
    sap = rows(FORMATS["sap"](journals).body)
    london = [r for r in sap if r["Reference"].startswith("PG-london-kx")]
    berlin = [r for r in sap if r["Reference"].startswith("PG-BHF")]
    assert {r["CompanyCode"] for r in london} == {"2000"} and {r["CompanyCode"] for r in berlin} == {"1000"}
    # the cost centre goes on revenue lines only (balance-sheet accounts take none)
    assert {r["CostCenter"] for r in berlin if r["GLAccount"] in REVENUE_NUMBERS} == {"CC-BHF"}
    assert {r["CostCenter"] for r in berlin if r["GLAccount"] not in REVENUE_NUMBERS} == {""}
    assert all(len(r["HeaderText"]) <= 25 and len(r["ItemText"]) <= 50 for r in sap)
    qbo = rows(FORMATS["qbo"](journals).body)
    assert {(r["Class"], r["Location"]) for r in qbo if r["Journal No"].startswith("PG-BHF")} == {("Berlin", "Berlin, Hbf")}
    assert {r["Account"] for r in qbo if r["Debits"] == "11.90"} == {"Clearing:Card"}
    yardi = rows(FORMATS["yardi"](journals).body)
    assert {r["Property"] for r in yardi} == {"BHF", "lkx"}


def test_no_transactions_no_journals() -> None:
    empty = Ledger(date(2026, 11, 1), date(2026, 11, 3), dict(FACILITIES))
    journals = build_journals(empty, CHART)
    assert journals.journals == ()
    document = orjson.loads(FORMATS["json"](journals).body)
    assert document["journals"] == [] and document["totals"] == []
    assert FORMATS["iif"](journals).body.decode().count("\r\n") == 3  # the header rows only


def test_the_chart_needs_an_account_for_every_member() -> None:
    with pytest.raises(ValueError, match="no account for CASH, MOBILE, INVOICE"):
        FinanceConfig(payment_accounts={PaymentType.CARD: Account(number="1210", name="Card")})
    with pytest.raises(ValueError, match="no account for VALIDATION"):
        FinanceConfig(revenue_accounts={c: Account(number="4000", name="Revenue") for c in list(RevenueCategory)[:3]})
    assert FinanceConfig().unknown_facilities({"berlin-hbf"}) == []
    assert CHART.unknown_facilities({"berlin-hbf"}) == ["london-kx"]


# --- the ledger: local days per facility -------------------------------------------------------------

def entry(facility_id: str, time_zone: str, vendor_id: str) -> FacilityEntry:
    config = FacilityConfig(name=facility_id, time_zone=time_zone, systems={"parcs": vendor_id})
    return FacilityEntry(facility_id, config, {SystemKind.PARCS: SystemRef("parcs", vendor_id)})


def test_place_keeps_each_transaction_in_its_facility_s_own_local_days() -> None:
    berlin, london, other = entry("berlin", "Europe/Berlin", "G1"), entry("london", "Europe/London", "G2"), "G9"
    first, last = date(2026, 11, 1), date(2026, 11, 2)
    windows = {e.id: local_window(e.config.time_zone, first, last) for e in (berlin, london)}
    assert windows["berlin"] == (datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 2, 23, tzinfo=UTC))

    def t(vendor_facility: str, at: datetime, currency: str = "EUR") -> Transaction:
        return Transaction(f"T{at:%d%H%M}{vendor_facility}", vendor_facility, at, Money(D("1.19"), "EUR"),
                           Money(D("0.19"), currency), PaymentType.CARD, RevenueCategory.TRANSIENT, "x")

    items = [
        t("G1", datetime(2026, 10, 31, 23, 30, tzinfo=UTC)),  # Berlin 1 Nov 00:30: in, day 1
        t("G2", datetime(2026, 10, 31, 23, 30, tzinfo=UTC)),  # London 31 Oct 23:30: out
        t("G1", datetime(2026, 11, 2, 23, 30, tzinfo=UTC)),  # Berlin 3 Nov 00:30: out
        t("G2", datetime(2026, 11, 2, 23, 30, tzinfo=UTC)),  # London 2 Nov 23:30: in, day 2
        t(other, datetime(2026, 11, 1, 12, tzinfo=UTC)),  # a garage nobody asked for
        t("G1", datetime(2026, 11, 1, 12, tzinfo=UTC), currency="GBP"),  # tax in another currency: an error
    ]
    placed, errors = place("parcs", Batch(items), [berlin, london], windows)
    assert [(p.facility_id, p.local_date) for p in placed] == [("berlin", first), ("london", last)]
    assert len(errors) == 1 and "GBP" in errors[0].message


def test_the_range_is_checked() -> None:
    check_range(date(2026, 1, 1), date(2026, 4, 2))  # 92 days
    with pytest.raises(ValueError, match="93 days"):
        check_range(date(2026, 1, 1), date(2026, 4, 3))
    with pytest.raises(ValueError, match="before"):
        check_range(date(2026, 1, 2), date(2026, 1, 1))


# --- property: whatever the transactions, journals balance and every format adds up -------------------

cents = st.integers(min_value=-50_000, max_value=500_000).filter(bool).map(lambda c: D(c).scaleb(-2))


@st.composite
def transactions(draw: st.DrawFn) -> LedgerEntry:
    gross = draw(cents)
    # tax between zero and the gross amount, with the gross amount's sign (a refund returns its tax)
    tax = D(draw(st.integers(min_value=0, max_value=abs(int(gross * 100))))).scaleb(-2).copy_sign(gross)
    facility = draw(st.sampled_from(sorted(FACILITIES)))
    at = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60 - 1)))
    return tx(facility, at, str(gross), str(tax), draw(st.sampled_from(list(PaymentType))),
              draw(st.sampled_from(list(RevenueCategory))), draw(st.sampled_from(["EUR", "GBP", "CHF"])),
              vendor_id=f"T{draw(st.integers(0, 10**6))}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(transactions(), max_size=40))
def test_journals_always_balance_and_every_format_matches_the_ledger(entries: list[LedgerEntry]) -> None:
    ledger = Ledger(date(2026, 10, 31), date(2026, 11, 4), dict(FACILITIES), entries)
    journals = check_every_format(ledger)
    keys = {(e.facility_id, e.local_date, e.transaction.amount.currency) for e in entries}
    assert len(journals.journals) <= len(keys)
