"""Journals rendered for the accounting systems operators use; docs/exports.md shows each one.

    iif    QuickBooks Desktop: tab-separated TRNS/SPL blocks, signed amounts (each block sums to 0)
    qbo    QuickBooks Online journal import CSV: one row per line, Debits and Credits columns
    sap    SAP-style G/L document CSV: header fields repeated per line, posting keys 40/50
    yardi  Yardi-style GL journal CSV (Voyager ETL-like): signed amounts, post month
    csv    plain CSV: one row per journal line
    json   journals with their lines and totals, plus the ledger's totals per currency

Every renderer returns a `Rendered` (bytes, media type, file extension). Amounts always have
two decimals and are formatted from Decimal, never through a float; CSV goes through the csv
module so that names with commas or quotes stay one field.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

from gateway.finance.journal import Journal, JournalLine, JournalSet

CENT = Decimal("0.01")
CSV_MEDIA = "text/csv; charset=utf-8"
# QuickBooks Desktop reads IIF files as Windows ANSI text, with Windows line ends.
IIF_MEDIA = "text/plain; charset=windows-1252"
IIF_ENCODING = "cp1252"


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    media_type: str
    extension: str


def money(amount: Decimal) -> str:
    """`12.5` -> `12.50`: two decimals, no exponent, no float on the way."""
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_UP):f}"


def blank_zero(amount: Decimal) -> str:
    return money(amount) if amount else ""


def us_date(day: Any) -> str:
    return f"{day:%m/%d/%Y}"


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


# --- QuickBooks Desktop IIF --------------------------------------------------------------------

IIF_COLUMNS = ("TRNSTYPE", "DATE", "ACCNT", "CLASS", "AMOUNT", "DOCNUM", "MEMO")
IIF_NOISE = re.compile(r"[\t\r\n\"]+")


def iif_field(value: str) -> str:
    # IIF has no quoting: a tab or line break would split the row, a quote confuses QuickBooks.
    return IIF_NOISE.sub(" ", value).strip()


def render_iif(journals: JournalSet) -> Rendered:
    rows = [
        ["!TRNS", "TRNSID", *IIF_COLUMNS],
        ["!SPL", "SPLID", *IIF_COLUMNS],
        ["!ENDTRNS"],
    ]
    for journal in journals.journals:
        klass = journals.chart.facility(journal.facility.id).class_name or ""
        for index, line in enumerate(journal.lines):
            # The first line is the transaction (its memo is the entry's), the others its splits.
            kind, memo = ("TRNS", journal.memo) if index == 0 else ("SPL", line.description)
            rows.append([kind, "", "GENERAL JOURNAL", us_date(journal.date), line.account.quickbooks_name, klass,
                         money(line.signed), journal.number, memo])
        rows.append(["ENDTRNS"])
    text = "".join("\t".join(iif_field(str(field)) for field in row) + "\r\n" for row in rows)
    return Rendered(text.encode(IIF_ENCODING, errors="replace"), IIF_MEDIA, "iif")


# --- QuickBooks Online journal import ------------------------------------------------------------

QBO_COLUMNS = ("Journal No", "Journal Date", "Account", "Debits", "Credits", "Description", "Name", "Location", "Class")


def render_qbo(journals: JournalSet) -> Rendered:
    def rows() -> Iterable[list[str]]:
        for journal in journals.journals:
            facility = journals.chart.facility(journal.facility.id)
            for line in journal.lines:
                yield [journal.number, us_date(journal.date), line.account.quickbooks_name, blank_zero(line.debit),
                       blank_zero(line.credit), line.description, "", facility.location or "",
                       facility.class_name or ""]

    return Rendered(csv_bytes(QBO_COLUMNS, rows()), CSV_MEDIA, "csv")


# --- SAP-style G/L document ----------------------------------------------------------------------

SAP_COLUMNS = ("CompanyCode", "DocumentDate", "PostingDate", "DocumentType", "Currency", "Reference", "HeaderText",
               "LineItem", "PostingKey", "GLAccount", "Amount", "CostCenter", "ItemText")
SAP_DEBIT, SAP_CREDIT = "40", "50"
# SAP's field lengths (BKPF-BKTXT, BSEG-SGTXT): longer texts are cut, never the amounts or references.
SAP_HEADER_TEXT, SAP_ITEM_TEXT = 25, 50


def render_sap(journals: JournalSet) -> Rendered:
    chart = journals.chart

    def rows() -> Iterable[list[str]]:
        for journal in journals.journals:
            facility = chart.facility(journal.facility.id)
            day = f"{journal.date:%Y%m%d}"
            header_text = f"Parking {journal.date:%d.%m.%Y} {chart.code(journal.facility.id)}"[:SAP_HEADER_TEXT]
            for item, line in enumerate(journal.lines, start=1):
                yield [facility.company_code or chart.company_code, day, day, chart.sap_document_type,
                       journal.currency, journal.number, header_text, str(item),
                       SAP_DEBIT if line.debit else SAP_CREDIT, line.account.number, money(line.debit or line.credit),
                       (facility.cost_center or "") if line.revenue else "", line.description[:SAP_ITEM_TEXT]]

    return Rendered(csv_bytes(SAP_COLUMNS, rows()), CSV_MEDIA, "csv")


# --- Yardi-style GL journal ----------------------------------------------------------------------

YARDI_COLUMNS = ("Type", "Property", "Date", "PostMonth", "Reference", "Account", "Amount", "Description", "Notes")


def render_yardi(journals: JournalSet) -> Rendered:
    chart = journals.chart

    def rows() -> Iterable[list[str]]:
        for journal in journals.journals:
            facility = chart.facility(journal.facility.id)
            prop = facility.yardi_property or chart.code(journal.facility.id)
            for line in journal.lines:
                yield ["J", prop, us_date(journal.date), f"{journal.date:%m/%Y}", journal.number, line.account.number,
                       money(line.signed), line.description, journal.memo]

    return Rendered(csv_bytes(YARDI_COLUMNS, rows()), CSV_MEDIA, "csv")


# --- plain CSV and JSON ----------------------------------------------------------------------------

CSV_COLUMNS = ("journal_number", "date", "facility_id", "facility_name", "currency", "account_number",
               "account_name", "debit", "credit", "description")


def render_csv(journals: JournalSet) -> Rendered:
    rows = ([j.number, j.date.isoformat(), j.facility.id, j.facility.name, j.currency, line.account.number,
             line.account.name, money(line.debit), money(line.credit), line.description]
            for j in journals.journals for line in j.lines)
    return Rendered(csv_bytes(CSV_COLUMNS, rows), CSV_MEDIA, "csv")


def line_json(line: JournalLine) -> dict[str, Any]:
    return {"account": line.account.number, "accountName": line.account.name, "debit": money(line.debit),
            "credit": money(line.credit), "description": line.description}


def journal_json(journal: Journal) -> dict[str, Any]:
    return {
        "number": journal.number,
        "date": journal.date.isoformat(),
        "facilityId": journal.facility.id,
        "facilityName": journal.facility.name,
        "currency": journal.currency,
        "memo": journal.memo,
        "transactionCount": journal.count,
        "lines": [line_json(line) for line in journal.lines],
        "totals": {"debit": money(journal.debits), "credit": money(journal.credits)},
    }


def render_json(journals: JournalSet) -> Rendered:
    document = {
        "from": journals.first_day.isoformat(),
        "to": journals.last_day.isoformat(),
        "journals": [journal_json(journal) for journal in journals.journals],
        "totals": [{"currency": t.currency, "count": t.count, "gross": money(t.gross), "tax": money(t.tax),
                    "net": money(t.net)} for t in journals.totals],
        "recordErrors": journals.record_errors,
    }
    return Rendered(orjson.dumps(document), "application/json", "json")


FORMATS: dict[str, Callable[[JournalSet], Rendered]] = {
    "iif": render_iif,
    "qbo": render_qbo,
    "sap": render_sap,
    "yardi": render_yardi,
    "csv": render_csv,
    "json": render_json,
}
