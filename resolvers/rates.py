"""Rates and quotes: what parking at a facility costs, from the PARCS that runs it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import strawberry

from adapters import models
from adapters.errors import UpstreamError
from gateway.directory import SystemRef
from gateway.errors import ErrorCode, GatewayError, bad_input, from_upstream
from gateway.kernel.context import RequestContext
from gateway.kernel.costs import list_size
from gateway.quote_tokens import QuotedPrice
from gateway.systems import RATES
from resolvers.common import Money, RateKind
from resolvers.writes import aware

MAX_QUOTE_WINDOW = timedelta(days=30)
DEFAULT_QUOTE_VALIDITY = timedelta(minutes=15)  # for a PARCS that gives no expiry
QUOTE_PAST_TOLERANCE = timedelta(minutes=15)


@strawberry.type(description="One line of a tariff.")
class RateLine:
    kind: RateKind = strawberry.field(description="FLAT, TIERED or INCREMENTING.")
    description: str = strawberry.field(description="The line as the operator describes it, e.g. \"First 30 minutes free\".")
    amount: Money = strawberry.field(description="The line's amount.")
    period_minutes: int | None = strawberry.field(description="INCREMENTING: the amount is charged per started period of this length.")
    up_to_minutes: int | None = strawberry.field(description="TIERED: the amount applies to stays up to this length.")
    max_amount: Money | None = strawberry.field(description="Cap per 24 hours, where the tariff has one.")


@strawberry.type(description="A facility's tariff.")
class RateTable:
    currency: str = strawberry.field(description="ISO 4217 currency of every amount in the table.")
    valid_from: datetime | None = strawberry.field(description="Since when the tariff applies, where the PARCS says.")
    lines: list[RateLine] = strawberry.field(description="The tariff's lines, in the PARCS's order.",
                                             directives=list_size(assumed_size=10))

    @classmethod
    def of(cls, table: models.RateTable) -> RateTable:
        return cls(
            currency=table.currency,
            valid_from=table.valid_from,
            lines=[
                RateLine(
                    kind=line.kind,
                    description=line.description,
                    amount=Money.of(line.amount),
                    period_minutes=line.period_minutes,
                    up_to_minutes=line.up_to_minutes,
                    max_amount=Money.of(line.max_amount),
                )
                for line in table.lines
            ],
        )


@strawberry.type(description="A price for parking at a facility during a window, or the reason there is none.")
class Quote:
    start: datetime = strawberry.field(description="Start of the window (UTC).")
    end: datetime = strawberry.field(description="End of the window (UTC).")
    duration_minutes: int = strawberry.field(description="Length of the window in minutes.")
    available: bool = strawberry.field(description="True when the facility can be booked and priced for the window.")
    price: Money | None = strawberry.field(description="Total price for the window; null when unavailable.")
    expires_at: datetime | None = strawberry.field(description="The price holds until then.")
    unavailable_reason: str | None = strawberry.field(description="Why there is no price (e.g. CLOSED, FULLY_BOOKED), as the PARCS says.")
    id: str | None = strawberry.field(description="Book this price with `createReservation(input: {quoteId})` until `expiresAt`; null when unavailable.")


async def load_rates(ctx: RequestContext, ref: SystemRef | None, info: Any = None) -> RateTable | None:
    if ref is None:
        return None
    tables = await ctx.load_record(ref.system_id, RATES, ref.vendor_id, info=info)
    table = tables.items.get(ref.vendor_id)
    if table is None:
        bad = tables.errors.get(ref.vendor_id)
        if bad is not None:
            raise GatewayError(ErrorCode.UPSTREAM_ERROR, f"Source {ref.system_id!r} sent an unreadable tariff: {bad.message}",
                               system=ref.system_id)
        return None
    return RateTable.of(table)


def check_window(start: datetime, end: datetime, now: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise bad_input("`start` and `end` need a UTC offset, e.g. 2026-11-27T09:00:00Z.")
    aware(start, "start")
    aware(end, "end")
    if end <= start:
        raise bad_input("`end` must be after `start`.")
    if end - start > MAX_QUOTE_WINDOW:
        raise bad_input("A quote window can be at most 30 days long.")
    if start < now - QUOTE_PAST_TOLERANCE:
        raise bad_input("`start` is in the past.")


async def load_quote(ctx: RequestContext, facility_id: str, ref: SystemRef | None, start: datetime,
                     end: datetime) -> Quote | None:
    check_window(start, end, ctx.now)
    if ref is None:
        return None
    request = models.QuoteRequest(ref.vendor_id, start, end)
    result = await ctx.loaders.quotes.load((ref.system_id, request))
    if isinstance(result, UpstreamError):
        raise from_upstream(result)
    quote_id = None
    if result.price is not None:
        expires = result.expires_at or ctx.now + DEFAULT_QUOTE_VALIDITY
        quote_id = ctx.runtime.quote_tokens.issue(QuotedPrice(facility_id, start, end, result.price.amount,
                                                              result.price.currency, expires))
    return Quote(
        start=start,
        end=end,
        duration_minutes=int((end - start).total_seconds() // 60),
        available=result.price is not None,
        price=Money.of(result.price),
        expires_at=result.expires_at,
        unavailable_reason=result.unavailable_reason,
        id=quote_id,
    )
