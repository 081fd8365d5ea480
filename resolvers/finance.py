"""Finance: the money that moved at the facilities a client may see, by local day, with totals.

The same ledger the accounting exports are built from (gateway/finance/ledger.py): dates are
calendar days in each facility's own time zone, so "1 to 30 November" means the same
transactions here as in a QuickBooks or SAP file for that range, and the totals agree.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, TypeAlias

import strawberry

from adapters.errors import UpstreamError
from adapters.operation_models import PaymentType as DomainPaymentType
from adapters.operation_models import RevenueCategory as DomainRevenueCategory
from gateway.auth.scopes import Scope
from gateway.errors import bad_input, from_upstream
from gateway.finance.ledger import LedgerEntry, load_transactions, totals
from gateway.kernel.context import Info
from gateway.kernel.costs import cost, list_size
from gateway.kernel.permissions import needs
from resolvers.common import Money, PageInfo, offset_page
from resolvers.writes import visible_facility

# Aliases of the domain enums, made GraphQL enums in place (see resolvers/common.py).
PaymentType: TypeAlias = DomainPaymentType
strawberry.enum(PaymentType, description="How money arrived: CARD (pay station, lane or processor token), CASH, MOBILE (a payment app), INVOICE (billed to an account).")
RevenueCategory: TypeAlias = DomainRevenueCategory
strawberry.enum(RevenueCategory, description="What the money was for: TRANSIENT parking, a RESERVATION, a PERMIT, a VALIDATION a hotel or merchant pays for.")


@strawberry.type(description="One money movement at a facility, from its PARCS.")
class Transaction:
    id: strawberry.ID = strawberry.field(description="Gateway id: `<facility id>:<id in the PARCS>`.")
    facility_id: strawberry.ID = strawberry.field(description="The facility.")
    occurred_at: datetime = strawberry.field(description="When it happened (UTC).")
    local_date: date = strawberry.field(description="The facility's calendar day it belongs to (its own time zone).")
    amount: Money = strawberry.field(description="Gross amount, tax included.")
    tax: Money = strawberry.field(description="The tax in the amount.")
    net: Money = strawberry.field(description="Amount less tax.")
    payment_type: PaymentType = strawberry.field(description="How it was paid.")
    revenue_category: RevenueCategory = strawberry.field(description="What it was for.")
    description: str = strawberry.field(description="The PARCS's description.")
    reference: str | None = strawberry.field(description="The session, reservation, permit or validation it settles, in the PARCS's ids.")

    @classmethod
    def of(cls, entry: LedgerEntry) -> Transaction:
        t = entry.transaction
        net = type(t.amount)(t.amount.amount - t.tax.amount, t.amount.currency)
        return cls(id=strawberry.ID(f"{entry.facility_id}:{t.vendor_id}"), facility_id=strawberry.ID(entry.facility_id),
                   occurred_at=t.occurred_at, local_date=entry.local_date, amount=Money.of(t.amount),
                   tax=Money.of(t.tax), net=Money.of(net), payment_type=t.payment_type,
                   revenue_category=t.revenue_category, description=t.description, reference=t.reference)


@strawberry.type(description="Totals of the matching transactions in one currency (every page, not just this one).")
class TransactionTotal:
    currency: str = strawberry.field(description="ISO 4217 currency.")
    count: int = strawberry.field(description="How many transactions.")
    gross: Money = strawberry.field(description="Sum of gross amounts.")
    tax: Money = strawberry.field(description="Sum of tax.")
    net: Money = strawberry.field(description="Gross less tax.")


@strawberry.type(description="One transaction in a list.")
class TransactionEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this transaction.")
    node: Transaction = strawberry.field(description="The transaction.")


@strawberry.type(description="A page of transactions, oldest first, with totals over every page.")
class TransactionConnection:
    edges: list[TransactionEdge] = strawberry.field(description="The transactions of this page.")
    page_info: PageInfo = strawberry.field(description="Paging.")
    total_count: int = strawberry.field(description="Transactions matching the filter, on every page.")
    totals: list[TransactionTotal] = strawberry.field(description="Sums per currency over every matching transaction.")


@strawberry.type
class FinanceQueries:
    @strawberry.field(description="Transactions by local date range (each facility's own time zone; both days included, "
                                  "at most 92 days), facility, payment type and revenue category, with totals.",
                      directives=needs(Scope.FINANCE_READ) + cost(weight=20)
                      + list_size(slicing_arguments=["first"], sized_fields=["edges"]))
    async def transactions(
        self, info: Info,
        from_: Annotated[date, strawberry.argument(name="from", description="First local day, e.g. 2026-11-01.")],
        to: Annotated[date, strawberry.argument(description="Last local day, included.")],
        facility_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only this facility.")] = None,
        payment_type: Annotated[PaymentType | None, strawberry.argument(description="Only this payment type.")] = None,
        revenue_category: Annotated[RevenueCategory | None, strawberry.argument(description="Only this revenue category.")] = None,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 50,
        after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
    ) -> TransactionConnection | None:
        ctx = info.context
        entries = [visible_facility(ctx, str(facility_id))] if facility_id is not None else ctx.visible_entries()
        try:
            ledger = await load_transactions(ctx.runtime, entries, from_, to, ctx.loaders.deadline)
        except ValueError as exc:
            raise bad_input(f"{exc}", argument="to") from None
        except UpstreamError as exc:
            raise from_upstream(exc) from None
        matching = [e for e in ledger.entries
                    if (payment_type is None or e.transaction.payment_type is payment_type)
                    and (revenue_category is None or e.transaction.revenue_category is revenue_category)]
        edges, page_info = offset_page("transactions", matching, first, after)
        return TransactionConnection(
            edges=[TransactionEdge(cursor=cursor, node=Transaction.of(e)) for cursor, e in edges],
            page_info=page_info,
            total_count=len(matching),
            totals=[TransactionTotal(currency=t.currency, count=t.count,
                                     gross=Money(amount=format(t.gross, "f"), currency=t.currency),
                                     tax=Money(amount=format(t.tax, "f"), currency=t.currency),
                                     net=Money(amount=format(t.net, "f"), currency=t.currency))
                    for t in totals(e.transaction for e in matching)],
        )
