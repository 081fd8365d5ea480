"""Per-client quotas: a request rate and a cost budget per window, one quota across all replicas.

A client's plan (gateway config `plans`) gives its limits; `Client.quota_overrides` replaces
single fields of it (`effective_plan`). Every request is admitted or refused by one
`QuotaEnforcer` per gateway process:

    decision = await quotas.admit(client.id, plan, estimated_cost)   # charge 1 request + the estimate
    ... execute ...
    await quotas.settle(client.id, plan, estimated_cost, actual_cost, decision=decision)  # refund the rest

Strategy: the fixed window of the `limits` library (its `incr_expire` Lua script: INCRBY, and
EXPIRE when the key is created). A charge is admitted when
the counter after the increment is within the limit, so the increment itself is the atomic
check: with any number of replicas sharing Redis, the requests admitted in one window are at
most the quota, and exactly the quota when more are tried. A refused charge is taken back at
once (the counter never stays above the limit), and a refused request charges nothing in either
dimension (it counts in `Usage.refusals`). Tolerances, stated:

- window boundaries: a window starts at the first charge after the previous one expired (not on
  the clock), so up to 2 × quota can pass within less than one window length around a boundary
  (the classic fixed-window burst);
- while another request's over-limit charge is in flight (one Redis round trip), a request that
  would have fitted may be refused: under contention the cost budget can be under-used by at
  most one estimate, never over-used;
- a refund never takes a counter below zero, never creates a key, and never lands in a later
  window than the one charged (with `decision=`), so `remaining` never exceeds the limit;
- when every charge in a window has been refunded (counter back to 0), the next charge starts a
  new window (that is how the library's script sets expiries).

Keys (Redis, prefix default "parkgate:quota"): `parkgate:quota:{<client id>}:requests`, `…:cost`,
`…:refusals`, plain integers with a TTL. The client id in braces is a hash tag: on a Redis Cluster a
client's three counters sit in one slot, so an admission is one script on one node, and clients
spread over the nodes. The keys do not depend on the plan, so changing a client's plan or overrides
keeps what it has used.

On Redis an admission is one script charging both counters as the `limits` library's fixed-window
script (`incr_expire.lua`) charges one, and answering their TTLs: one round trip
(gateway/quota_counters.py), on the gateway's connection (gateway/redis_connect.py: one server, a
cluster or a Sentinel's master alike); in memory, and as the fallback, the same rules run on a
dict.

Redis unreachable: `on_redis_error="open"` hands over to a per-process in-memory limiter (one
warning per outage; N replicas then admit up to N × quota), `"closed"` raises
`QuotaUnavailable` (answer 503). Either way Redis is probed again every `probe_interval_s` in
the background and used as soon as it answers; socket timeouts are short (0.5 s) and a
failed Redis is not tried again per request until a probe succeeds. `status` says which state
the enforcer is in, for /readyz.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from limits.errors import StorageError

from gateway.errors import StoreUnavailable
from gateway.quota_counters import Counters, MemoryCounters, RedisCounters

if TYPE_CHECKING:
    from gateway.config import GatewayConfig, PlanConfig

log = logging.getLogger("parkgate.quotas")

Dimension = Literal["requests", "cost"]
Status = Literal["redis", "local-fallback", "unavailable", "memory"]
Backend = Literal["redis", "local", "memory"]

DEFAULT_PREFIX = "parkgate:quota"
MAX_WINDOW_S = 86_400

__all__ = [
    "OVERRIDABLE",
    "Decision",
    "Plan",
    "QuotaEnforcer",
    "QuotaUnavailable",
    "Usage",
    "WindowState",
    "Windows",
    "check_overrides",
    "effective_plan",
    "rate_limit_headers",
]


# --- plans ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Plan:
    name: str
    requests: int  # requests per window
    cost: int  # cost points per window
    window_s: int = 60
    max_query_cost: int  # ceiling for one query's estimated cost (COST_LIMIT_EXCEEDED above it)
    max_subscriptions: int = 20

    def __post_init__(self) -> None:
        for name in OVERRIDABLE:
            problem = _override_problem(name, getattr(self, name))
            if problem:
                raise ValueError(f"plan {self.name!r}: {problem}")

    @classmethod
    def from_config(cls, name: str, config: PlanConfig) -> Plan:
        return cls(name=name, **{f: getattr(config, f) for f in OVERRIDABLE})

    @classmethod
    def all_from_config(cls, config: GatewayConfig) -> dict[str, Plan]:
        return {name: cls.from_config(name, plan) for name, plan in config.plans.items()}


#: the fields a client's `quota_overrides` may replace
OVERRIDABLE: tuple[str, ...] = ("requests", "cost", "window_s", "max_query_cost", "max_subscriptions")


def _override_problem(name: str, value: Any) -> str | None:
    if name not in OVERRIDABLE:
        return f"{name!r} is not a quota setting (known: {', '.join(OVERRIDABLE)})"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} must be an integer"
    if value < 0:
        return f"{name} must not be negative"
    if name == "window_s" and not 1 <= value <= MAX_WINDOW_S:
        return f"window_s must be between 1 and {MAX_WINDOW_S}"
    return None


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, int]:
    """For the admin API: the overrides as given, or ValueError naming every problem."""
    problems = [p for name, value in overrides.items() if (p := _override_problem(name, value))]
    if problems:
        raise ValueError("; ".join(problems))
    return dict(overrides)


def effective_plan(plan: Plan, overrides: Mapping[str, int]) -> Plan:
    """The plan with a client's overrides applied, field by field.

    Unknown names and invalid values are ignored (logged at debug), never raised: a stale
    override stored long ago must not break the client's requests. Reject them when they are
    written, with `check_overrides`.
    """
    if not overrides:
        return plan
    valid = {}
    for name, value in overrides.items():
        if (problem := _override_problem(name, value)) is None:
            valid[name] = value
        else:
            log.debug("plan %s: override ignored: %s", plan.name, problem)
    # built as from_config builds it (replace(plan, **valid) would be the same, but mypy checks a
    # **dict against every field, `name` included)
    return Plan(name=plan.name, **{f: valid.get(f, getattr(plan, f)) for f in OVERRIDABLE}) if valid else plan


# --- what callers get back ------------------------------------------------------------


class WindowState(NamedTuple):
    """One dimension's window: enough for an IETF `RateLimit` item (a tuple: three are made per request)."""

    limit: int
    remaining: int
    reset_after_s: int  # whole seconds until the window resets, 1..window_s


class Windows(NamedTuple):
    """Both windows of a client (a tuple: made on every request, like WindowState)."""

    requests: WindowState
    cost: WindowState


class Decision(NamedTuple):
    """The quota's answer to one request (a tuple: a frozen dataclass sets each of its seven fields
    through object.__setattr__, on every request)."""

    admitted: bool
    refused_by: Dimension | None  # which limit refused; None when admitted
    retry_after_s: int  # >= 1 when refused, 0 when admitted
    requests: WindowState  # both windows after the charge (after the take-back when refused)
    cost: WindowState
    backend: Backend  # where the charge was made: settle refunds there
    #: when the charged cost window expires (epoch s): a refund never lands in a later window
    cost_window_expires_at: float = 0.0


@dataclass(frozen=True)
class Usage:
    """A client's current window: admitted requests, cost charged (net of refunds), refusals."""

    requests: int
    cost: int
    refusals: int
    window_started_at: datetime | None  # None when the client has no current window
    window_s: int


class QuotaUnavailable(StoreUnavailable):
    """Redis cannot be reached and `on_redis_error` is "closed": refuse the request with 503."""


def rate_limit_headers(windows: Windows | Decision, plan: Plan) -> dict[str, str]:
    """IETF `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers), plus
    `Retry-After` for a refusal."""
    headers = {
        "RateLimit-Policy": _policy(plan.requests, plan.cost, plan.window_s),
        "RateLimit": (f'"requests";r={windows.requests.remaining};t={windows.requests.reset_after_s}, '
                      f'"cost";r={windows.cost.remaining};t={windows.cost.reset_after_s}'),
    }
    if isinstance(windows, Decision) and not windows.admitted:
        headers["Retry-After"] = str(windows.retry_after_s)
    return headers


@functools.lru_cache(maxsize=256)
def _policy(requests: int, cost: int, window_s: int) -> str:
    """A plan's `RateLimit-Policy` value: the same on every request of the plan, so made once."""
    return f'"requests";q={requests};w={window_s}, "cost";q={cost};w={window_s}'


def _window(limit: int, count: int, ttl_s: float, window_s: int) -> WindowState:
    # Two per request: comparisons rather than min/max calls, and the tuple made without the
    # NamedTuple's Python-level __new__ (each a few hundred ns on the machines we measure on).
    reset = window_s
    if ttl_s > 0:
        reset = math.ceil(ttl_s)  # >= 1
        if reset > window_s:  # noqa: PLR1730 — a comparison costs less than a call to min (above)
            reset = window_s
    remaining = limit - count
    if remaining < 0:
        remaining = 0
    elif remaining > limit:
        remaining = limit
    return _tuple_new(WindowState, (limit, remaining, reset))


#: a NamedTuple made without its Python-level __new__ (WindowState, Decision: every request makes them)
_tuple_new = tuple.__new__


def _redis_errors() -> tuple[type[BaseException], ...]:
    from gateway.redis_connect import REDIS_FAILURES  # a cluster's errors too: not all are RedisErrors

    return (*REDIS_FAILURES, StorageError, OSError, TimeoutError)


# --- the enforcer -----------------------------------------------------------------------

T = TypeVar("T")


class QuotaEnforcer:
    """One per gateway process. Memory when `redis_url` is None (sandbox, single process)."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        on_redis_error: Literal["open", "closed"] = "open",
        prefix: str = DEFAULT_PREFIX,
        probe_interval_s: float = 5.0,
        redis_timeout_s: float = 0.5,
    ) -> None:
        if on_redis_error not in ("open", "closed"):
            raise ValueError("on_redis_error must be 'open' or 'closed'")
        self.on_redis_error = on_redis_error
        self.probe_interval_s = probe_interval_s
        #: a cap on one whole operation, beyond the socket timeouts (NOSCRIPT reload included)
        self.op_timeout_s = 3 * redis_timeout_s
        self._redis = RedisCounters(redis_url, prefix, redis_timeout_s) if redis_url else None
        self._memory = MemoryCounters()  # the backend without Redis, the fallback with it
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._probe_task: asyncio.Task[None] | None = None
        self._during_outage = 0

    @classmethod
    def from_config(cls, config: GatewayConfig) -> QuotaEnforcer:
        """Redis when the gateway's store is Redis (same server, `{store.prefix}quota` keys)."""
        if config.store.backend == "redis":
            return cls(config.store.redis_url, on_redis_error=config.quotas.on_redis_error,
                       prefix=f"{config.store.prefix}quota")
        return cls()

    # -- state, for /readyz --------------------------------------------------------------

    @property
    def status(self) -> Status:
        if self._redis is None:
            return "memory"
        if self._down_since is None:
            return "redis"
        return "local-fallback" if self.on_redis_error == "open" else "unavailable"

    async def ping(self) -> Status:
        """Check Redis now (for /readyz) and return the status."""
        if self._redis is not None:
            if self._down_since is None:
                try:
                    async with asyncio.timeout(self.op_timeout_s):
                        await self._redis.ping()
                except _redis_errors() as exc:
                    self._went_down(exc)
            else:
                self._next_probe = 0.0
                self._probe_soon()
                if self._probe_task is not None:
                    await asyncio.shield(self._probe_task)
        return self.status

    async def aclose(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
        if self._redis is not None:
            await self._redis.aclose()

    # -- the quota operations --------------------------------------------------------------

    async def admit(self, client_id: str, plan: Plan, estimated_cost: int) -> Decision:
        """Charge one request and `estimated_cost` points, or refuse and charge nothing."""
        if estimated_cost < 0:
            raise ValueError("estimated_cost must not be negative")
        if self._redis is None:  # in memory only: nothing to fall back from (no closure, one frame less)
            return await self._admit(self._memory, "memory", client_id, plan, estimated_cost)
        return await self._call(lambda counters, backend: self._admit(counters, backend, client_id, plan, estimated_cost))

    async def settle(self, client_id: str, plan: Plan, estimated_cost: int, actual_cost: int, *,
                     decision: Decision | None = None) -> WindowState:
        """Refund `estimated_cost - actual_cost` when positive; the cost window after it.

        Pass the admit's `decision`: the refund then goes where the charge was made (Redis or
        the local fallback) and never into a later window. A cost above the estimate is not
        charged after the fact (the estimate is the cost model's upper bound).
        """
        refund = estimated_cost - actual_cost
        if decision is not None and not decision.admitted:
            refund = 0  # nothing was charged
        ck = _key(client_id, "cost")
        not_after = decision.cost_window_expires_at + plan.window_s / 2 if decision is not None else 0.0

        async def op(counters: Counters, backend: Backend) -> WindowState:
            if refund > 0 and (decision is None or decision.backend == backend):
                _, [(count, ttl)], _ = await counters.run(refunds=[(ck, refund, not_after)])
            else:
                _, _, [(count, ttl)] = await counters.run(reads=[ck])
            return _window(plan.cost, count, ttl, plan.window_s)

        if decision is not None and decision.backend == "local" and self._redis is not None:
            return await op(self._memory, "local")  # charged locally during an outage: refund there
        return await self._call(op)

    async def state(self, client_id: str, plan: Plan) -> Windows:
        """Both current windows, for the `rateLimit` field; charges nothing."""

        async def op(counters: Counters, backend: Backend) -> Windows:
            _, _, [(rn, rt), (cn, ct)] = await counters.run(reads=[_key(client_id, "requests"), _key(client_id, "cost")])
            return Windows(_window(plan.requests, rn, rt, plan.window_s), _window(plan.cost, cn, ct, plan.window_s))

        return await self._call(op)

    async def usage(self, client_id: str, plan: Plan) -> Usage:
        """The client's current window (requests window: its start needs the plan's length)."""

        async def op(counters: Counters, backend: Backend) -> Usage:
            _, _, [(rn, rt), (cn, _), (fn, _)] = await counters.run(
                reads=[_key(client_id, "requests"), _key(client_id, "cost"), _key(client_id, "refusals")])
            started = (datetime.fromtimestamp(time.time() + rt - plan.window_s, UTC) if rt > 0 else None)
            return Usage(requests=rn, cost=cn, refusals=fn, window_started_at=started, window_s=plan.window_s)

        return await self._call(op)

    async def _admit(self, counters: Counters, backend: Backend, client_id: str, plan: Plan, cost: int) -> Decision:
        w = plan.window_s
        rk, ck = _charged_keys(client_id)
        [(rn, rt), (cn, ct)], _, _ = await counters.run(charges=[(rk, 1, w), (ck, cost, w)])
        now = time.time()
        refused: Dimension | None = "requests" if rn > plan.requests else "cost" if cn > plan.cost else None
        if refused is None:
            return _tuple_new(Decision, (True, None, 0, _window(plan.requests, rn, rt, w), _window(plan.cost, cn, ct, w),
                                          backend, now + ct))
        # Take both charges back (each only within the window it went into) and count the refusal
        # in a counter that expires with the requests window.
        [_], [(rn, rt), (cn, ct)], _ = await counters.run(
            charges=[(_key(client_id, "refusals"), 1, max(1, math.ceil(rt)) if rt > 0 else w)],
            refunds=[(rk, 1, now + rt + w / 2), (ck, cost, now + ct + w / 2)],
        )
        requests, cost_state = _window(plan.requests, rn, rt, w), _window(plan.cost, cn, ct, w)
        retry = (requests if refused == "requests" else cost_state).reset_after_s
        return Decision(False, refused, retry, requests, cost_state, backend, now + ct)

    # -- Redis, the fallback and the way back --------------------------------------------

    async def _call(self, op: Callable[[Counters, Backend], Awaitable[T]]) -> T:
        if self._redis is None:
            return await op(self._memory, "memory")
        if self._down_since is None:
            try:
                async with asyncio.timeout(self.op_timeout_s):
                    return await op(self._redis, "redis")
            except _redis_errors() as exc:
                self._went_down(exc)
        else:
            self._probe_soon()
        self._during_outage += 1
        if self.on_redis_error == "closed":
            raise QuotaUnavailable("the quota store (Redis) cannot be reached")
        return await op(self._memory, "local")

    def _went_down(self, exc: BaseException) -> None:
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        self._next_probe = self._down_since + self.probe_interval_s
        self._during_outage = 0
        what = ("failing open: this replica enforces quotas locally (per replica) until Redis answers"
                if self.on_redis_error == "open" else "failing closed: requests are refused (503) until Redis answers")
        log.warning("quota store unreachable (%s: %s); %s", type(exc).__name__, exc, what)

    def _probe_soon(self) -> None:
        if (self._probe_task is None or self._probe_task.done()) and time.monotonic() >= self._next_probe:
            self._probe_task = asyncio.create_task(self._probe(), name="quota-redis-probe")

    async def _probe(self) -> None:
        assert self._redis is not None
        try:
            async with asyncio.timeout(self.op_timeout_s):
                await self._redis.ping()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - any failure just means "still down"
            self._next_probe = time.monotonic() + self.probe_interval_s
            return
        if self._down_since is not None:
            log.warning("quota store reachable again after %.1f s (%d requests %s meanwhile); back on Redis",
                        time.monotonic() - self._down_since, self._during_outage,
                        "limited locally" if self.on_redis_error == "open" else "refused")
            self._down_since = None


def _key(client_id: str, what: str) -> str:
    """`{client id}:what`: a client's counters share a hash tag (one slot of a Redis Cluster)."""
    return f"{{{client_id}}}:{what}"


@functools.lru_cache(maxsize=4096)
def _charged_keys(client_id: str) -> tuple[str, str]:
    """A client's requests and cost counters: the two keys every admission charges, made once."""
    return _key(client_id, "requests"), _key(client_id, "cost")
