"""The chart of accounts journals post to: the `finance:` section of the configuration.

    payment_accounts   debit side: where the money arrived, one account per PaymentType
    revenue_accounts   credit side: what it was for, net of tax, one account per RevenueCategory
    tax_account        credit side: the tax contained in the gross amounts
    facilities         per facility: a short journal code, QuickBooks class/location, SAP company
                       code and cost centre, Yardi property

Every payment type and revenue category must have an account: a journal line with nowhere to
go would be a journal that does not balance. The defaults are a plain SKR-like numbering that
works out of the box in the sandbox; an operator maps them to its own ledger.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from adapters.operation_models import PaymentType, RevenueCategory
from gateway.config_model import ConfigModel

#: prefix + facility code + date must stay short: QuickBooks and SAP cap reference fields
PREFIX_PATTERN = r"^[A-Za-z0-9_-]{0,10}$"
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,63}$"


class Account(ConfigModel):
    number: str = Field(min_length=1, max_length=20, description="The G/L account number, e.g. 1210 (SAP, Yardi, CSV).")
    name: str = Field(min_length=1, max_length=100, description="The account's name, e.g. Card clearing.")
    quickbooks: str | None = Field(
        None, description="The account's full name in QuickBooks (Parent:Child for a sub-account); default: `name`."
    )

    @field_validator("number", "name", "quickbooks")
    @classmethod
    def printable(cls, value: str | None) -> str | None:
        # Tabs and line breaks would break IIF rows (and are never part of an account's name).
        if value is not None and re.search(r"[\t\r\n]", value):
            raise ValueError("must not contain tabs or line breaks")
        return value

    @property
    def quickbooks_name(self) -> str:
        return self.quickbooks or self.name

    @property
    def label(self) -> str:
        return f"{self.number} {self.name}"


class FacilityFinance(ConfigModel):
    """How one facility appears in the books; everything optional."""

    code: str | None = Field(
        None, pattern=CODE_PATTERN, description="Short code in journal numbers (e.g. BHF); default: the facility id."
    )
    class_name: str | None = Field(None, max_length=100, description="QuickBooks class (IIF CLASS, QBO Class).")
    location: str | None = Field(None, max_length=100, description="QuickBooks Online location.")
    company_code: str | None = Field(None, max_length=4, description="SAP company code; default: finance.company_code.")
    cost_center: str | None = Field(None, max_length=10, description="SAP cost centre of the revenue lines.")
    yardi_property: str | None = Field(None, max_length=8, description="Yardi property code; default: the journal code.")


DEFAULT_PAYMENT_ACCOUNTS: dict[PaymentType, Account] = {
    PaymentType.CARD: Account(number="1210", name="Card clearing"),
    PaymentType.CASH: Account(number="1000", name="Cash on hand"),
    PaymentType.MOBILE: Account(number="1220", name="Mobile payments clearing"),
    PaymentType.INVOICE: Account(number="1200", name="Accounts receivable"),
}
DEFAULT_REVENUE_ACCOUNTS: dict[RevenueCategory, Account] = {
    RevenueCategory.TRANSIENT: Account(number="4000", name="Parking revenue - transient"),
    RevenueCategory.RESERVATION: Account(number="4010", name="Parking revenue - reservations"),
    RevenueCategory.PERMIT: Account(number="4020", name="Parking revenue - permits"),
    RevenueCategory.VALIDATION: Account(number="4030", name="Parking revenue - validations"),
}
DEFAULT_TAX_ACCOUNT = Account(number="2200", name="VAT payable")


class FinanceConfig(ConfigModel):
    journal_prefix: str = Field(
        "PG", pattern=PREFIX_PATTERN, description="Starts every journal number: <prefix>-<facility code>-<YYYYMMDD>."
    )
    company_code: str = Field("1000", min_length=1, max_length=4, description="SAP company code of every journal.")
    sap_document_type: str = Field("SA", min_length=2, max_length=2, description="SAP document type (SA: G/L posting).")
    payment_accounts: dict[PaymentType, Account] = Field(
        default_factory=lambda: dict(DEFAULT_PAYMENT_ACCOUNTS),
        description="Debit side: one account per payment type (CARD, CASH, MOBILE, INVOICE).",
    )
    revenue_accounts: dict[RevenueCategory, Account] = Field(
        default_factory=lambda: dict(DEFAULT_REVENUE_ACCOUNTS),
        description="Credit side, net of tax: one account per revenue category (TRANSIENT, RESERVATION, PERMIT, VALIDATION).",
    )
    tax_account: Account = Field(DEFAULT_TAX_ACCOUNT, description="Credit side: the tax in the gross amounts.")
    facilities: dict[str, FacilityFinance] = Field(
        default_factory=dict, description="Per facility id: journal code, class, location, company code, cost centre."
    )

    @model_validator(mode="after")
    def every_member_has_an_account(self) -> FinanceConfig:
        problems = []
        missing = [p.value for p in PaymentType if p not in self.payment_accounts]
        if missing:
            problems.append(f"payment_accounts: no account for {', '.join(missing)}")
        missing = [c.value for c in RevenueCategory if c not in self.revenue_accounts]
        if missing:
            problems.append(f"revenue_accounts: no account for {', '.join(missing)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def facility(self, facility_id: str) -> FacilityFinance:
        return self.facilities.get(facility_id) or FacilityFinance()

    def code(self, facility_id: str) -> str:
        return self.facility(facility_id).code or facility_id

    def unknown_facilities(self, known: set[str] | frozenset[str]) -> list[str]:
        """Facility ids under `finance.facilities` that the configuration does not have (a typo)."""
        return sorted(set(self.facilities) - set(known))
