"""Accounting files read back, written independently of gateway/finance/formats.py: one parser per
format, each checking that every journal in the file balances, each giving what the file says it
booked per currency (gross, tax, net), so that tests can compare that with the ledger."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

import orjson

from gateway.finance.accounts import FinanceConfig
from gateway.finance.formats import IIF_ENCODING, QBO_COLUMNS, SAP_COLUMNS, YARDI_COLUMNS

D = Decimal


def qb_names(chart: FinanceConfig) -> dict[str, str]:
    """QuickBooks account name -> account number."""
    return {a.quickbooks_name: a.number for a in
            (*chart.payment_accounts.values(), *chart.revenue_accounts.values(), chart.tax_account)}


class Sums:
    """What a parsed file says, per currency: gross (payment accounts), tax, net (revenue accounts)."""

    def __init__(self, chart: FinanceConfig) -> None:
        self.by_currency: dict[str, list[Decimal]] = defaultdict(lambda: [D(0), D(0), D(0)])
        self.payment = {a.number for a in chart.payment_accounts.values()}
        self.revenue = {a.number for a in chart.revenue_accounts.values()}
        self.tax = chart.tax_account.number

    def add(self, currency: str, account_number: str, signed: Decimal) -> None:
        sums = self.by_currency[currency]
        if account_number in self.payment:
            sums[0] += signed
        elif account_number == self.tax:
            sums[1] -= signed
        else:
            assert account_number in self.revenue, account_number
            sums[2] -= signed

    def result(self) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        return {c: (s[0], s[1], s[2]) for c, s in self.by_currency.items() if any(s)}


def nonzero(totals: dict[str, tuple[Decimal, Decimal, Decimal]]) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    return {c: s for c, s in totals.items() if any(s)}


def two_decimals(text: str) -> Decimal:
    assert text.lstrip("-").count(".") == 1 and len(text.split(".")[1]) == 2, text
    return D(text)


def rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


# --- parsers: one per format, each checking the balance of every journal ---------------------------


def parse_iif(body: bytes, currency_of: dict[str, str], chart: FinanceConfig) -> Sums:
    lines = body.decode(IIF_ENCODING).split("\r\n")
    assert lines[-1] == ""
    headers: dict[str, list[str]] = {}
    sums, block, blocks = Sums(chart), [], 0
    for raw in lines[:-1]:
        fields = raw.split("\t")
        if fields[0].startswith("!"):
            headers[fields[0][1:]] = fields
            continue
        if fields[0] == "ENDTRNS":
            assert block and block[0]["_kind"] == "TRNS" and all(r["_kind"] == "SPL" for r in block[1:])
            assert sum(two_decimals(r["AMOUNT"]) for r in block) == 0, block  # every block balances
            assert len({r["DOCNUM"] for r in block}) == 1
            blocks += 1
            block = []
            continue
        row = dict(zip(headers[fields[0]], fields, strict=True))
        row["_kind"] = fields[0]
        assert row["TRNSTYPE"] == "GENERAL JOURNAL"
        datetime.strptime(row["DATE"], "%m/%d/%Y")
        sums.add(currency_of[row["DOCNUM"]], qb_names(chart)[row["ACCNT"]], two_decimals(row["AMOUNT"]))
        block.append(row)
    assert headers["TRNS"][:2] == ["!TRNS", "TRNSID"] and headers["SPL"][:2] == ["!SPL", "SPLID"]
    assert headers["ENDTRNS"] == ["!ENDTRNS"] and not block
    assert blocks == len(currency_of)
    return sums


def parse_qbo(body: bytes, currency_of: dict[str, str], chart: FinanceConfig) -> Sums:
    assert next(csv.reader(io.StringIO(body.decode()))) == list(QBO_COLUMNS)
    sums, balance = Sums(chart), defaultdict(D)
    for row in rows(body):
        datetime.strptime(row["Journal Date"], "%m/%d/%Y")
        debit = two_decimals(row["Debits"]) if row["Debits"] else D(0)
        credit = two_decimals(row["Credits"]) if row["Credits"] else D(0)
        assert (debit > 0) != (credit > 0), row  # exactly one side per row
        balance[row["Journal No"]] += debit - credit
        sums.add(currency_of[row["Journal No"]], qb_names(chart)[row["Account"]], debit - credit)
    assert set(balance) == set(currency_of) and all(b == 0 for b in balance.values()), balance
    return sums


def parse_sap(body: bytes, currency_of: dict[str, str], chart: FinanceConfig) -> Sums:
    assert next(csv.reader(io.StringIO(body.decode()))) == list(SAP_COLUMNS)
    sums, balance, items = Sums(chart), defaultdict(D), defaultdict(list)
    for row in rows(body):
        amount = two_decimals(row["Amount"])
        assert amount > 0 and row["DocumentType"] == "SA" and row["PostingKey"] in ("40", "50")
        assert row["Currency"] == currency_of[row["Reference"]]
        datetime.strptime(row["PostingDate"], "%Y%m%d")
        signed = amount if row["PostingKey"] == "40" else -amount
        balance[row["Reference"]] += signed
        items[row["Reference"]].append(int(row["LineItem"]))
        sums.add(row["Currency"], row["GLAccount"], signed)
    assert all(b == 0 for b in balance.values()) and set(balance) == set(currency_of)
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in items.values())
    return sums


def parse_yardi(body: bytes, currency_of: dict[str, str], chart: FinanceConfig) -> Sums:
    assert next(csv.reader(io.StringIO(body.decode()))) == list(YARDI_COLUMNS)
    sums, balance = Sums(chart), defaultdict(D)
    for row in rows(body):
        day = datetime.strptime(row["Date"], "%m/%d/%Y")
        assert row["PostMonth"] == f"{day:%m/%Y}" and row["Type"] == "J"
        balance[row["Reference"]] += two_decimals(row["Amount"])
        sums.add(currency_of[row["Reference"]], row["Account"], D(row["Amount"]))
    assert all(b == 0 for b in balance.values()) and set(balance) == set(currency_of)
    return sums


def parse_csv(body: bytes, currency_of: dict[str, str], chart: FinanceConfig) -> Sums:
    sums, balance = Sums(chart), defaultdict(D)
    for row in rows(body):
        date.fromisoformat(row["date"])
        signed = two_decimals(row["debit"]) - two_decimals(row["credit"])
        assert row["currency"] == currency_of[row["journal_number"]]
        balance[row["journal_number"]] += signed
        sums.add(row["currency"], row["account_number"], signed)
    assert all(b == 0 for b in balance.values()) and set(balance) == set(currency_of)
    return sums


def parse_json(body: bytes, currency_of: dict[str, str], chart: FinanceConfig) -> Sums:
    document = orjson.loads(body)
    sums = Sums(chart)
    assert {j["number"]: j["currency"] for j in document["journals"]} == currency_of
    for journal in document["journals"]:
        debit = sum(two_decimals(line["debit"]) for line in journal["lines"])
        credit = sum(two_decimals(line["credit"]) for line in journal["lines"])
        assert debit == credit == two_decimals(journal["totals"]["debit"]) == two_decimals(journal["totals"]["credit"])
        for line in journal["lines"]:
            sums.add(journal["currency"], line["account"], D(line["debit"]) - D(line["credit"]))
    # the file's own totals are the ledger's
    stated = {t["currency"]: (D(t["gross"]), D(t["tax"]), D(t["net"])) for t in document["totals"]}
    assert nonzero(stated) == sums.result()
    return sums


PARSERS = {"iif": parse_iif, "qbo": parse_qbo, "sap": parse_sap, "yardi": parse_yardi, "csv": parse_csv,
           "json": parse_json}
