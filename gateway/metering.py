"""Metering at the edge: what an operation costs, whether the client may spend it, what it spent.

Follow an operation forward:
    charge = await meter.admit(principal, analysis)   # ceiling, then quota: 1 request + estimate
    ... execute ...
    done = await meter.settle(charge, actual_cost)      # refund estimate − actual (Shopify-style)
    done.headers, done.extensions                       # RateLimit-Policy / RateLimit, extensions.cost

A request that is refused before it runs (a document that does not parse, validate or fit the
limits, a query over the cost ceiling) still counts as one request, with no cost: refusing takes
work too, and must not be free to ask for (`count_refused`).

What clients see agrees: the `RateLimit` header and `extensions.cost.throttleStatus` show the
windows after settlement; the `rateLimit` field (resolved during execution) shows them after the
up-front charge, so header remaining = field remaining + (requested − actual) cost.
A client without quotas (authentication turned off) is not metered.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gateway.auth.authenticate import Principal
from gateway.cost import Analysis
from gateway.errors import RETRY_AFTER_S, ErrorCode
from gateway.observability.metrics import GatewayMetrics
from gateway.quotas import (
    Decision,
    Plan,
    QuotaEnforcer,
    QuotaUnavailable,
    Windows,
    WindowState,
    effective_plan,
    rate_limit_headers,
)
from gateway.usage_log import UsageLog


@dataclass(frozen=True)
class MeterRefusal(Exception):
    """The operation is not run: over the per-query ceiling, out of quota, or quotas unavailable."""

    code: ErrorCode
    message: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"errors": [{"message": self.message, "extensions": {"code": self.code.value, **self.extensions}}]}


class MeterCharge(NamedTuple):
    """What was charged up front for one operation (None fields: not metered; a tuple: one is made
    per request, and a frozen dataclass's fields cost a call each to set)."""

    principal: Principal
    plan: Plan | None
    requested: int
    decision: Decision | None


class Settled(NamedTuple):
    """The windows after settling, as clients see them: RateLimit headers and `extensions.cost`."""

    headers: dict[str, str]
    extensions: dict[str, Any]


def cost_extension(plan: Plan, requested: int, actual: int | None, cost: WindowState) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "maxQueryCost": plan.max_query_cost,
        "throttleStatus": {
            "maximumAvailable": plan.cost,
            "currentlyAvailable": cost.remaining,
            "resetAfterSeconds": cost.reset_after_s,
            "windowSeconds": plan.window_s,
        },
    }


class Meter:
    def __init__(self, quotas: QuotaEnforcer, plans: dict[str, Plan], usage_log: UsageLog | None = None,
                 metrics: GatewayMetrics | None = None) -> None:
        self.quotas = quotas
        self.plans = plans
        #: what the admin console charts: each charge, refund and 429 (gateway/usage_log.py)
        self.usage_log = usage_log or UsageLog()
        #: admissions and refusals per client, for Prometheus (None: not counted)
        self.metrics = metrics

    def plan_of(self, principal: Principal) -> Plan | None:
        if principal.via == "none":
            return None
        base = self.plans.get(principal.plan) or self.plans["standard"]
        return effective_plan(base, principal.quota_overrides)

    def admit(self, principal: Principal, analysis: Analysis, known_cost: int | None = None) -> Awaitable[MeterCharge]:
        """Refuse over the ceiling or out of quota; else charge the estimate — or `known_cost`, when
        the answer is already known (a response-cache hit), so nothing is left to settle.
        (`admit_cost`'s coroutine itself: one frame less on every request.)"""
        return self.admit_cost(principal, analysis.cost, known_cost)

    async def admit_cost(self, principal: Principal, estimate: int, known_cost: int | None = None) -> MeterCharge:
        """`admit` for work whose cost is a number rather than a query (e.g. an export file)."""
        plan = self.plan_of(principal)
        charged = estimate if known_cost is None else known_cost
        if plan is None:
            return MeterCharge(principal, None, charged, None)
        if estimate > plan.max_query_cost:
            headers = await self.count_refused(principal)
            if self.metrics is not None:
                self.metrics.quota_refused.child(principal.client_id, "ceiling").inc()
            raise MeterRefusal(
                ErrorCode.COST_LIMIT_EXCEEDED,
                f"The query's estimated cost {estimate} is over this client's ceiling of {plan.max_query_cost}: "
                "ask for fewer items (`first`) or fewer fields.",
                status=400,
                headers=headers,
                extensions={"cost": estimate, "maxQueryCost": plan.max_query_cost},
            )
        decision = await self._decide(principal, plan, charged)
        return MeterCharge(principal, plan, charged, decision)

    async def count_refused(self, principal: Principal) -> dict[str, str]:
        """Count a request refused before it ran as one request with no cost; its RateLimit headers.
        A MeterRefusal (429, or 503 when quotas cannot be checked) when that one request is over the quota."""
        plan = self.plan_of(principal)
        if plan is None:
            return {}
        decision = await self._decide(principal, plan, 0)
        return rate_limit_headers(Windows(decision.requests, decision.cost), plan)

    async def _decide(self, principal: Principal, plan: Plan, charged: int) -> Decision:
        """The quota's decision on one request costing `charged`; a MeterRefusal when it is not admitted."""
        metrics = self.metrics
        try:
            decision = await self.quotas.admit(principal.client_id, plan, charged)
        except QuotaUnavailable:
            if metrics is not None:
                metrics.quota_refused.child(principal.client_id, "unavailable").inc()
            raise MeterRefusal(ErrorCode.GATEWAY_UNAVAILABLE, "Quotas cannot be checked right now; try again shortly.",
                               status=503, headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        if not decision.admitted:
            self.usage_log.throttled(principal.client_id, decision.refused_by or "requests", decision.retry_after_s)
            if metrics is not None:
                metrics.quota_refused.child(principal.client_id, decision.refused_by or "requests").inc()
            what = "requests" if decision.refused_by == "requests" else "query cost points"
            limit = plan.requests if decision.refused_by == "requests" else plan.cost
            raise MeterRefusal(
                ErrorCode.RATE_LIMITED,
                f"Rate limited: this client's plan allows {limit} {what} per {plan.window_s} s. "
                f"Retry after {decision.retry_after_s} s.",
                status=429,
                headers=rate_limit_headers(decision, plan),
                extensions={"refusedBy": decision.refused_by, "retryAfterSeconds": decision.retry_after_s,
                            "cost": cost_extension(plan, charged, None, decision.cost)},
            )
        self.usage_log.note(principal.client_id, requests=1, cost=charged)
        if metrics is not None:
            metrics.quota_admitted.child(principal.client_id).inc()
        return decision

    async def settle(self, charge: MeterCharge, actual: int) -> Settled:
        if charge.plan is None or charge.decision is None:
            return Settled({}, {})
        if actual >= charge.requested:  # nothing to refund: the windows are as the charge left them (a hit)
            decision = charge.decision
            return Settled(rate_limit_headers(decision, charge.plan),
                           cost_extension(charge.plan, charge.requested, actual, decision.cost))
        try:
            cost = await self.quotas.settle(charge.principal.client_id, charge.plan, charge.requested, actual,
                                            decision=charge.decision)
            self.usage_log.note(charge.principal.client_id, requests=0, cost=actual - charge.requested)
        except QuotaUnavailable:
            cost = charge.decision.cost  # the refund is lost with the outage; report what we know
        windows = Windows(charge.decision.requests, cost)
        return Settled(rate_limit_headers(windows, charge.plan), cost_extension(charge.plan, charge.requested, actual, cost))
