"""Per-client quotas (gateway/quotas.py) against the memory backend and a real Redis.

Two enforcers on one Redis stand for two replicas (and once, two OS processes): together they
admit exactly the quota. A Redis of the test's own is stopped and started again to watch the
enforcer fail open or closed and come back without a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from gateway.quotas import (
    Decision,
    Plan,
    QuotaEnforcer,
    QuotaUnavailable,
    check_overrides,
    effective_plan,
    rate_limit_headers,
)
from tests.support import REPO
from tests.support.processes import OwnRedis
from tests.support.waiting import wait_until

PLAN = Plan(name="test", requests=5, cost=100, window_s=30, max_query_cost=60, max_subscriptions=2)

Make = Callable[..., QuotaEnforcer]


@pytest_asyncio.fixture
async def make(redis_url: str) -> AsyncIterator[Make]:
    """Enforcers on the shared test Redis (or memory), each test with keys of its own."""
    prefix = f"test-quota-{uuid.uuid4().hex[:8]}"
    made: list[QuotaEnforcer] = []

    def factory(backend: str = "redis", url: str | None = None, **options: Any) -> QuotaEnforcer:
        options.setdefault("prefix", prefix)
        enforcer = QuotaEnforcer(None if backend == "memory" else (url or redis_url), **options)
        made.append(enforcer)
        return enforcer

    yield factory
    for enforcer in made:
        await enforcer.aclose()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


# --- plans ------------------------------------------------------------------------------


def test_overrides_replace_plan_fields_by_name() -> None:
    plan = effective_plan(PLAN, {"requests": 50, "window_s": 10, "unknown": 3, "cost": -1})
    assert (plan.requests, plan.cost, plan.window_s, plan.max_query_cost) == (50, 100, 10, 60)
    assert effective_plan(PLAN, {}) is PLAN
    assert check_overrides({"cost": 7}) == {"cost": 7}
    with pytest.raises(ValueError, match="'unknown' is not a quota setting.*window_s must be between"):
        check_overrides({"unknown": 3, "window_s": 0})
    with pytest.raises(ValueError):
        Plan(name="bad", requests=1, cost=1, window_s=0, max_query_cost=1)


# --- memory and Redis behave the same ------------------------------------------------


async def test_requests_refused_past_the_quota_and_charge_nothing(make: Make, backend: str) -> None:
    quotas = make(backend)
    assert quotas.status == ("memory" if backend == "memory" else "redis")
    admitted = [await quotas.admit("c1", PLAN, 10) for _ in range(PLAN.requests)]
    assert all(d.admitted for d in admitted)
    assert [d.requests.remaining for d in admitted] == [4, 3, 2, 1, 0]
    assert admitted[-1].cost.remaining == 50
    refused = await quotas.admit("c1", PLAN, 10)
    assert (refused.admitted, refused.refused_by) == (False, "requests")
    assert 1 <= refused.retry_after_s <= PLAN.window_s
    assert refused.requests.remaining == 0 and refused.cost.remaining == 50  # no cost charged
    usage = await quotas.usage("c1", PLAN)
    assert (usage.requests, usage.cost, usage.refusals, usage.window_s) == (5, 50, 1, 30)
    assert usage.window_started_at is not None and abs(usage.window_started_at.timestamp() - time.time()) < 3
    assert (await quotas.usage("nobody", PLAN)).window_started_at is None


async def test_cost_refused_when_the_estimate_does_not_fit(make: Make, backend: str) -> None:
    quotas = make(backend)
    assert (await quotas.admit("c2", PLAN, 60)).admitted
    refused = await quotas.admit("c2", PLAN, 41)
    assert (refused.admitted, refused.refused_by) == (False, "cost")
    assert 1 <= refused.retry_after_s <= PLAN.window_s
    assert refused.cost.remaining == 40 and refused.requests.remaining == 4  # neither dimension charged
    assert (await quotas.admit("c2", PLAN, 40)).admitted  # exactly the rest still fits
    windows = await quotas.state("c2", PLAN)
    assert (windows.requests.remaining, windows.cost.remaining) == (3, 0)
    assert (await quotas.usage("c2", PLAN)).refusals == 1


async def test_settle_refunds_to_limit_minus_actual(make: Make, backend: str) -> None:
    quotas = make(backend)
    decision = await quotas.admit("c3", PLAN, 60)
    assert decision.cost.remaining == 40
    after = await quotas.settle("c3", PLAN, 60, 25, decision=decision)
    assert after.remaining == PLAN.cost - 25
    assert (await quotas.state("c3", PLAN)).cost.remaining == 75
    # no refund when the actual cost is not lower; a second settle of the same charge cannot
    # push `remaining` above the limit
    assert (await quotas.settle("c3", PLAN, 10, 30)).remaining == 75
    assert (await quotas.settle("c3", PLAN, 60, 0)).remaining == 100
    assert (await quotas.settle("c3", PLAN, 60, 0)).remaining == 100
    assert (await quotas.usage("c3", PLAN)).cost == 0
    # a refused request was never charged: nothing to refund
    small = Plan(name="small", requests=1, cost=100, window_s=30, max_query_cost=100)
    await quotas.admit("c4", small, 50)
    refused = await quotas.admit("c4", small, 50)
    assert not refused.admitted
    assert (await quotas.settle("c4", small, 50, 0, decision=refused)).remaining == 50


async def test_a_refund_never_lands_in_a_later_window(make: Make, backend: str) -> None:
    quotas = make(backend)
    plan = Plan(name="short", requests=10, cost=100, window_s=1, max_query_cost=100)
    decision = await quotas.admit("c5", plan, 80)
    await asyncio.sleep(1.2)  # the window expires; the next charge opens a new one
    assert (await quotas.usage("c5", plan)).window_started_at is None
    assert (await quotas.settle("c5", plan, 80, 0, decision=decision)).remaining == 100
    assert (await quotas.usage("c5", plan)).cost == 0  # no key created by the refund
    assert (await quotas.admit("c5", plan, 30)).cost.remaining == 70
    assert (await quotas.settle("c5", plan, 80, 0, decision=decision)).remaining == 70  # not into this one


async def test_memory_and_redis_give_the_same_answers(make: Make) -> None:
    async def scenario(quotas: QuotaEnforcer) -> list[Any]:
        seen: list[Any] = []
        for estimate, actual in [(30, 10), (50, 50), (70, 0), (20, 5), (90, 1), (1, 0), (1, 1), (1, 0)]:
            d = await quotas.admit("same", PLAN, estimate)
            seen.append((d.admitted, d.refused_by, d.requests.remaining, d.cost.remaining))
            if d.admitted:
                seen.append((await quotas.settle("same", PLAN, estimate, actual, decision=d)).remaining)
        windows = await quotas.state("same", PLAN)
        usage = await quotas.usage("same", PLAN)
        seen.append((windows.requests.remaining, windows.cost.remaining, usage.requests, usage.cost, usage.refusals))
        return seen

    assert await scenario(make("memory")) == await scenario(make("redis"))



async def test_an_admission_is_one_round_trip_one_script(make: Make, own_redis: OwnRedis) -> None:
    import redis

    quotas = make(url=own_redis.url)
    assert (await quotas.admit("one", PLAN, 5)).admitted  # connects and loads the scripts
    server = redis.Redis.from_url(own_redis.url)
    try:
        server.config_resetstat()
        reads = int(server.info("stats")["total_reads_processed"])
        decision = await quotas.admit("one", PLAN, 5)
        after = int(server.info("stats")["total_reads_processed"])
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in server.info("commandstats").items()}
        assert after - reads - 1 == 1  # less the INFO that read `after`
        assert calls["evalsha"] == 1 and calls["incrby"] == 2 and calls["pttl"] == 2  # both counters, their TTLs
        assert (decision.requests.remaining, decision.cost.remaining) == (PLAN.requests - 2, PLAN.cost - 10)
        assert 0 < decision.cost.reset_after_s <= PLAN.window_s
        server.script_flush()  # a Redis that forgot the scripts (restarted, or flushed by someone else)
        again = await quotas.admit("one", PLAN, 5)
        assert again.admitted and again.backend == "redis" and again.requests.remaining == PLAN.requests - 3
    finally:
        server.close()


BUSY = Plan(name="busy", requests=1000, cost=10**6, window_s=30, max_query_cost=10)


async def test_admissions_of_one_moment_share_a_round_trip_and_each_gets_its_own_count(
        make: Make, own_redis: OwnRedis) -> None:
    """40 requests of one client admitted at the same moment (a burst on one connection pool):
    charged in one script in arrival order, each seeing the counters after its own charge."""
    import redis

    quotas = make(url=own_redis.url)
    assert (await quotas.admit("busy", BUSY, 1)).admitted  # connects and loads the scripts
    server = redis.Redis.from_url(own_redis.url)
    try:
        server.config_resetstat()
        decisions = await asyncio.gather(*(quotas.admit("busy", BUSY, 2) for _ in range(40)))
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in server.info("commandstats").items()}
    finally:
        server.close()
    assert all(d.admitted and d.backend == "redis" for d in decisions)
    assert [d.requests.remaining for d in decisions] == list(range(BUSY.requests - 2, BUSY.requests - 42, -1))
    assert [d.cost.remaining for d in decisions] == list(range(BUSY.cost - 3, BUSY.cost - 83, -2))
    assert calls["incrby"] == 80 and calls["evalsha"] == 2  # 64 keys a script at most: 32 requests, then 8


async def test_refunds_of_one_moment_share_a_round_trip_and_each_gets_its_own_count(
        make: Make, own_redis: OwnRedis) -> None:
    """30 settlements of one client at the same moment (executed queries cheaper than estimated):
    refunded in one script in arrival order, each seeing the cost window after its own refund; one
    whose charge went into an earlier window takes nothing back from this one."""
    import redis

    quotas = make(url=own_redis.url)
    decisions = await asyncio.gather(*(quotas.admit("settling", BUSY, 10) for _ in range(30)))
    assert all(d.admitted and d.backend == "redis" for d in decisions)
    earlier = decisions[0]._replace(cost_window_expires_at=time.time() - 3 * BUSY.window_s)
    server = redis.Redis.from_url(own_redis.url)
    try:
        server.config_resetstat()
        windows = await asyncio.gather(quotas.settle("settling", BUSY, 10, 10 - 5, decision=earlier),
                                       *(quotas.settle("settling", BUSY, 10, 4, decision=d) for d in decisions[1:]))
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in server.info("commandstats").items()}
    finally:
        server.close()
    charged = BUSY.cost - 300
    assert windows[0].remaining == charged  # its window is gone: nothing refunded into this one
    assert [w.remaining for w in windows[1:]] == list(range(charged + 6, charged + 6 * 30, 6))
    assert calls["evalsha"] == 1 and calls["decrby"] == 29
    assert (await quotas.usage("settling", BUSY)).cost == 300 - 6 * 29


async def test_a_burst_past_the_quota_admits_exactly_the_quota(make: Make, own_redis: OwnRedis) -> None:
    quotas = make(url=own_redis.url)
    decisions = await asyncio.gather(*(quotas.admit("burst", PLAN, 1) for _ in range(12)))
    assert [d.admitted for d in decisions] == [True] * PLAN.requests + [False] * (12 - PLAN.requests)
    assert all(d.refused_by == "requests" for d in decisions if not d.admitted)
    assert (await quotas.usage("burst", PLAN)).requests == PLAN.requests


async def test_on_a_cluster_a_clients_counters_share_a_slot(make: Make, redis_cluster: Any) -> None:
    quotas = make(url=redis_cluster.url)
    decisions = [await quotas.admit(f"client-{n}", PLAN, 10) for n in range(6)]  # clients spread over the masters
    assert all(d.admitted and d.backend == "redis" for d in decisions)
    # clients admitted at the same moment: a script per client (per slot), never one across slots
    together = await asyncio.gather(*(quotas.admit(f"pair-{n}", PLAN, 10) for n in range(6) for _ in range(2)))
    assert all(d.admitted and d.backend == "redis" for d in together)
    assert (await quotas.settle("client-0", PLAN, 10, 4, decision=decisions[0])).remaining == PLAN.cost - 4
    usage = await quotas.usage("client-0", PLAN)
    assert (usage.requests, usage.cost) == (1, 4)

async def test_on_a_cluster_a_burst_wider_than_redis_pys_pool_stays_on_redis(make: Make, redis_cluster: Any) -> None:
    """redis-py gives a cluster client 100 connections per node and refuses the 101st command at once
    (MaxConnectionsError). The gateway's clients open what a burst needs, as on one server: quotas do
    not fall back to local counting because many requests of one busy client came at once."""
    quotas = make(url=redis_cluster.url)
    decision = await quotas.admit("busy", PLAN, 10)
    windows = await asyncio.gather(*(quotas.state("busy", PLAN) for _ in range(250)))  # one node, one slot
    assert quotas.status == "redis"
    assert {w.cost.remaining for w in windows} == {PLAN.cost - 10} and decision.backend == "redis"


def test_headers_follow_the_ietf_draft() -> None:
    from gateway.quotas import WindowState

    refused = Decision(False, "requests", 12, WindowState(5, 0, 12), WindowState(100, 40, 12), "redis")
    assert rate_limit_headers(refused, PLAN) == {
        "RateLimit-Policy": '"requests";q=5;w=30, "cost";q=100;w=30',
        "RateLimit": '"requests";r=0;t=12, "cost";r=40;t=12',
        "Retry-After": "12",
    }


# --- replicas: one quota, not two ---------------------------------------------------------

HAMMER = Plan(name="hammer", requests=100, cost=10**9, window_s=30, max_query_cost=10)


async def hammer(quotas: QuotaEnforcer, plan: Plan, client: str, hits: int, cost: int = 1, workers: int = 20) -> list[Decision]:
    decisions: list[Decision] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            decisions.append(await quotas.admit(client, plan, cost))

    await asyncio.gather(*(worker(hits // workers) for _ in range(workers)))
    return decisions


async def test_two_replicas_admit_exactly_the_quota(make: Make) -> None:
    """300 + 300 concurrent hits through two enforcers on one Redis, well inside a 30 s
    window: 100 admitted in total, not 200. (Across a window boundary a fixed window lets
    another quota through at once: see test_each_window_admits_the_quota_again.)"""
    one, two = make(), make()
    a, b = await asyncio.gather(hammer(one, HAMMER, "h", 300), hammer(two, HAMMER, "h", 300))
    admitted = [d for d in a + b if d.admitted]
    assert len(admitted) == HAMMER.requests
    assert sum(d.admitted for d in a) > 0 and sum(d.admitted for d in b) > 0  # both took part
    usage = await one.usage("h", HAMMER)
    assert (usage.requests, usage.refusals) == (100, 500)
    assert sorted(d.requests.remaining for d in admitted) == list(range(HAMMER.requests))


async def test_two_replicas_never_overspend_the_cost_budget(make: Make) -> None:
    """Cost charges of 7 against 1000 points: never more than the budget; under contention a
    charge may be refused while another one's over-limit charge is being taken back (a brief
    under-use), which the next uncontended request gets back."""
    plan = Plan(name="costly", requests=10**6, cost=1000, window_s=30, max_query_cost=10)
    one, two = make(), make()
    a, b = await asyncio.gather(hammer(one, plan, "k", 200, cost=7), hammer(two, plan, "k", 200, cost=7))
    spent = 7 * sum(d.admitted for d in a + b)
    assert spent <= 1000
    while (await one.admit("k", plan, 7)).admitted:
        spent += 7
    assert spent == 7 * (1000 // 7)
    assert (await two.state("k", plan)).cost.remaining == 1000 % 7


WORKER = """
import asyncio, json, sys, time
from gateway.quotas import Plan, QuotaEnforcer

async def main(url, prefix, start_at):
    quotas = QuotaEnforcer(url, prefix=prefix, on_redis_error="closed")
    plan = Plan(name="hammer", requests=100, cost=10**9, window_s=30, max_query_cost=10)
    admitted = 0
    async def worker():
        nonlocal admitted
        for _ in range(15):
            decision = await quotas.admit("proc", plan, 1)  # awaited first: `x += await ...` loses updates
            admitted += decision.admitted
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await asyncio.gather(*(worker() for _ in range(20)))
    print(json.dumps(admitted))
    await quotas.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


async def test_two_processes_admit_exactly_the_quota(redis_url: str) -> None:
    prefix = f"test-quota-{uuid.uuid4().hex[:8]}"
    start_at = time.time() + 3  # both processes are up and start hammering together
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, redis_url, prefix, str(start_at),
                                                  cwd=REPO, stdout=asyncio.subprocess.PIPE,
                                                  stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    outputs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    admitted = [json.loads(out) for out, _ in outputs]
    assert sum(admitted) == 100, admitted  # 2 × 300 hits, one quota of 100
    quotas = QuotaEnforcer(redis_url, prefix=prefix)
    try:
        assert (await quotas.usage("proc", HAMMER)).refusals == 500
    finally:
        await quotas.aclose()


async def test_each_window_admits_the_quota_again(make: Make) -> None:
    """The fixed window's stated tolerance: a window starts with the first hit after the last
    one expired, so a full quota just before a reset and another just after pass within a
    moment of each other (up to 2 × quota in less than one window)."""
    plan = Plan(name="boundary", requests=5, cost=1000, window_s=1, max_query_cost=10)
    one, two = make(), make()
    first = await hammer(one, plan, "b", 20, workers=4) + await hammer(two, plan, "b", 20, workers=4)
    assert sum(d.admitted for d in first) == 5
    await asyncio.sleep(max(d.requests.reset_after_s for d in first) + 0.2)
    second = await hammer(two, plan, "b", 20, workers=4)
    assert sum(d.admitted for d in second) == 5


# --- Redis outages ------------------------------------------------------------------------


async def every_operation(quotas: QuotaEnforcer, plan: Plan) -> list[Any]:
    """admit, settle, state, usage: their results, or the one exception they may raise."""
    results: list[Any] = []
    for call in (lambda: quotas.admit("o", plan, 5), lambda: quotas.settle("o", plan, 5, 1),
                 lambda: quotas.state("o", plan), lambda: quotas.usage("o", plan)):
        try:
            results.append(await call())
        except QuotaUnavailable as exc:
            results.append(exc)
    return results


async def test_fail_open_falls_back_locally_and_comes_back(make: Make, own_redis: OwnRedis,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    plan = Plan(name="outage", requests=10, cost=1000, window_s=30, max_query_cost=10)
    quotas = make(url=own_redis.url, on_redis_error="open", probe_interval_s=0.2)
    assert (await quotas.admit("o", plan, 5)).backend == "redis"
    assert await quotas.ping() == "redis"
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="parkgate.quotas"):
        started = time.monotonic()
        decisions = [await quotas.admit("o", plan, 5) for _ in range(12)]
        assert time.monotonic() - started < 2  # refused connections fail fast; no retry storm
        assert quotas.status == "local-fallback"
        assert [d.backend for d in decisions] == ["local"] * 12
        assert sum(d.admitted for d in decisions) == 10  # the local limiter enforces the plan
        for result in await every_operation(quotas, plan):
            assert not isinstance(result, Exception)
        assert await quotas.ping() == "local-fallback"
        assert len([r for r in caplog.records if "unreachable" in r.message]) == 1  # once per outage
        own_redis.start(empty=True)  # what was counted there is gone, as after a restart without persistence
        await wait_until(lambda: _is_redis(quotas), timeout_s=10, every_s=0.05)
    assert [r for r in caplog.records if "reachable again" in r.message]
    decision = await quotas.admit("o", plan, 5)
    assert decision.backend == "redis" and decision.admitted
    # a charge taken locally during the outage is refunded locally, not in Redis
    local = decisions[0]
    await quotas.settle("o", plan, 5, 0, decision=local)
    assert (await quotas.state("o", plan)).cost.remaining == decision.cost.remaining


async def _is_redis(quotas: QuotaEnforcer) -> bool:
    plan = Plan(name="probe", requests=1000, cost=1000, window_s=30, max_query_cost=10)
    await quotas.admit("probe", plan, 0)  # traffic is what triggers the background probe
    return quotas.status == "redis"


async def test_fail_closed_refuses_and_comes_back(make: Make, own_redis: OwnRedis) -> None:
    plan = Plan(name="outage", requests=10, cost=1000, window_s=30, max_query_cost=10)
    quotas = make(url=own_redis.url, on_redis_error="closed", probe_interval_s=0.2)
    assert (await quotas.admit("o", plan, 5)).admitted
    own_redis.stop()
    for _ in range(3):
        results = await every_operation(quotas, plan)
        assert all(isinstance(r, QuotaUnavailable) for r in results), results
    assert quotas.status == "unavailable"
    assert await quotas.ping() == "unavailable"
    own_redis.start(empty=True)
    await wait_until(lambda: _ping_is(quotas, "redis"), timeout_s=10, every_s=0.05)
    assert (await quotas.admit("o", plan, 5)).backend == "redis"


async def _ping_is(quotas: QuotaEnforcer, status: str) -> bool:
    return await quotas.ping() == status


async def test_a_redis_that_never_answers_cannot_hang_requests(make: Make) -> None:
    """A listener that accepts and never replies (a black-holed Redis): the socket timeout
    (0.5 s) ends the wait, the enforcer stops asking, requests go on."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(100)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        plan = Plan(name="silent", requests=10, cost=1000, window_s=30, max_query_cost=10)
        open_ = make(url=url, on_redis_error="open")
        closed = make(url=url, on_redis_error="closed")
        started = time.monotonic()
        assert (await open_.admit("s", plan, 1)).backend == "local"
        with pytest.raises(QuotaUnavailable):
            await closed.admit("s", plan, 1)
        assert time.monotonic() - started < 2.5
        started = time.monotonic()
        for _ in range(20):  # no longer asked until a probe succeeds
            assert (await open_.admit("s", plan, 1)).backend == "local"
            with pytest.raises(QuotaUnavailable):
                await closed.admit("s", plan, 1)
        assert time.monotonic() - started < 0.5
        assert (open_.status, closed.status) == ("local-fallback", "unavailable")
