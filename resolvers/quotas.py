"""Quotas a client can see for itself (`rateLimit`) and admins can see for any client (usage)."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from gateway.kernel.context import Info
from gateway.quotas import Plan, Usage, WindowState


@strawberry.type(description="One quota window.")
class QuotaWindow:
    limit: int = strawberry.field(description="What the window allows.")
    remaining: int = strawberry.field(description="What is left in it.")
    reset_at: datetime = strawberry.field(description="When the window resets (UTC).")

    @classmethod
    def of(cls, window: WindowState, now: datetime) -> QuotaWindow:
        return cls(limit=window.limit, remaining=window.remaining, reset_at=now + timedelta(seconds=window.reset_after_s))


@strawberry.type(description=(
    "Where this client stands, as charged for this very query: its estimated cost is already taken. "
    "The RateLimit header and extensions.cost show the same windows after settling on the actual cost."
))
class RateLimit:
    plan: str = strawberry.field(description="The client's quota plan.")
    cost: int = strawberry.field(description="The estimated cost of this query, charged up front.")
    limit: int = strawberry.field(description="Cost points per window.")
    remaining: int = strawberry.field(description="Cost points left in the window after this query's charge.")
    reset_at: datetime = strawberry.field(description="When the cost window resets (UTC).")
    requests: QuotaWindow = strawberry.field(description="The request-rate window.")
    max_query_cost: int = strawberry.field(description="The ceiling for one query's estimated cost.")
    max_subscriptions: int = strawberry.field(description="Subscriptions the client may hold open at once.")
    window_seconds: int = strawberry.field(description="Length of both windows in seconds.")


@strawberry.type(name="QuotaPlan", description="A quota plan, as configured, or as it applies to one client after overrides.")
class QuotaPlan:
    name: str = strawberry.field(description="The plan's name.")
    requests: int = strawberry.field(description="Requests per window.")
    cost: int = strawberry.field(description="Cost points per window.")
    window_seconds: int = strawberry.field(description="Length of the window in seconds.")
    max_query_cost: int = strawberry.field(description="Ceiling for one query's estimated cost.")
    max_subscriptions: int = strawberry.field(description="Subscriptions open at once.")

    @classmethod
    def of(cls, plan: Plan) -> QuotaPlan:
        return cls(name=plan.name, requests=plan.requests, cost=plan.cost, window_seconds=plan.window_s,
                   max_query_cost=plan.max_query_cost, max_subscriptions=plan.max_subscriptions)


@strawberry.type(description="A client's use of its current window.")
class QuotaUsage:
    requests: int = strawberry.field(description="Requests admitted.")
    cost: int = strawberry.field(description="Cost points charged, net of refunds.")
    refusals: int = strawberry.field(description="Requests refused for quota.")
    window_started_at: datetime | None = strawberry.field(description="When the window began; null when there is none.")
    window_seconds: int = strawberry.field(description="Length of the window.")

    @classmethod
    def of(cls, usage: Usage) -> QuotaUsage:
        return cls(requests=usage.requests, cost=usage.cost, refusals=usage.refusals,
                   window_started_at=usage.window_started_at, window_seconds=usage.window_s)


@strawberry.input(description="Per-client overrides of its plan; omitted fields follow the plan.")
class QuotaOverridesInput:
    requests: int | None = strawberry.field(default=None, description="Requests per window.")
    cost: int | None = strawberry.field(default=None, description="Cost points per window.")
    window_s: int | None = strawberry.field(default=None, name="windowSeconds", description="Window length in seconds.")
    max_query_cost: int | None = strawberry.field(default=None, description="Ceiling for one query's estimated cost.")
    max_subscriptions: int | None = strawberry.field(default=None, description="Subscriptions open at once.")

    def as_dict(self) -> dict[str, int]:
        return {name: value for name, value in vars(self).items() if value is not None}


@strawberry.type
class QuotaQueries:
    @strawberry.field(description="This client's quota windows; null when quotas do not apply (authentication off).")
    def rate_limit(self, info: Info) -> RateLimit | None:
        charge = info.context.charge
        if charge is None or charge.plan is None or charge.decision is None:
            return None
        plan, decision, now = charge.plan, charge.decision, info.context.now
        return RateLimit(
            plan=plan.name, cost=charge.requested, limit=decision.cost.limit, remaining=decision.cost.remaining,
            reset_at=now + timedelta(seconds=decision.cost.reset_after_s),
            requests=QuotaWindow.of(decision.requests, now), max_query_cost=plan.max_query_cost,
            max_subscriptions=plan.max_subscriptions, window_seconds=plan.window_s,
        )
