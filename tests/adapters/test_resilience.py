"""Upstream resilience (adapters/http.py): timeouts, retries, circuit breaker, concurrency and rate limits.

Against real servers over real HTTP on loopback: the APDS simulator, and a tiny scripted vendor
that fails, delays and counts as each test needs.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.apds import ApdsAdapter
from adapters.apds.simulator import ROOT, VENDOR_IDS, ApdsSimulator, create_simulator
from adapters.base import SystemSpec
from adapters.breaker import BreakerState, CircuitBreaker, CircuitOpen
from adapters.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from adapters.http import VendorHTTP, retry_after_seconds
from adapters.models import QuoteRequest, SystemKind
from adapters.outbound_limit import OutboundThrottled, TokenBucket
from adapters.simulated.harness import FaultMode
from adapters.simulated.world import World
from tests.support.servers import serve

TOKEN = "apds-sandbox-token"
PLACES = "GET /apds/v1/places"


# --- test beds --------------------------------------------------------------------------------


class Vendor:
    """A scripted vendor: answers `script` in order (status, headers), then 200; counts and times."""

    def __init__(self, script: list[tuple[int, dict[str, str]]] | None = None, delay_s: float = 0.0) -> None:
        self.script = list(script or [])
        self.delay_s = delay_s
        self.hits = 0
        self.arrivals: list[float] = []
        self.in_flight = 0
        self.peak = 0
        self.app = Starlette(routes=[Route("/{path:path}", self.endpoint, methods=["GET", "POST"])])

    async def endpoint(self, request: Request) -> Response:
        self.hits += 1
        self.arrivals.append(time.monotonic())
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.script:
                status, headers = self.script.pop(0)
                return Response(status_code=status, headers=headers)
            return JSONResponse({"ok": True, "path": request.url.path})
        finally:
            self.in_flight -= 1


@asynccontextmanager
async def vendor(v: Vendor, **options: Any) -> AsyncIterator[VendorHTTP]:
    async with serve(v.app) as url:
        http = VendorHTTP("scripted", url, **options)
        try:
            yield http
        finally:
            await http.aclose()


def after_requests(app: ASGIApp, n: int, then: Callable[[], None]) -> ASGIApp:
    """`app`, calling `then()` once it has answered `n` requests."""
    seen = 0

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal seen
        await app(scope, receive, send)
        if scope["type"] == "http":
            seen += 1
            if seen == n:
                then()

    return wrapped


@asynccontextmanager
async def apds(
    wrap: Callable[[ApdsSimulator], ASGIApp] | None = None, **spec: Any
) -> AsyncIterator[tuple[ApdsSimulator, ApdsAdapter]]:
    sim = create_simulator(World(seed=11), "parcs-central", {"token": TOKEN})
    async with serve(wrap(sim) if wrap else sim.app) as url:
        adapter = ApdsAdapter(SystemSpec(
            id="parcs-central", kind=SystemKind.PARCS, dialect="apds", base_url=url + ROOT,
            credentials={"token": TOKEN}, **spec,
        ))
        try:
            yield sim, adapter
        finally:
            await adapter.aclose()


def quote() -> QuoteRequest:
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return QuoteRequest(VENDOR_IDS["berlin-hbf"], t0, t0 + timedelta(minutes=60))


# --- retries ----------------------------------------------------------------------------------


async def test_a_read_retries_through_a_transient_outage_of_the_simulator() -> None:
    def down_then_up(sim: ApdsSimulator) -> ASGIApp:
        sim.control.set_fault(FaultMode.DOWN)
        return after_requests(sim.app, 2, lambda: sim.control.set_fault(FaultMode.OK))

    async with apds(down_then_up) as (sim, adapter):
        started = time.monotonic()
        batch = await adapter.facilities()
        elapsed = time.monotonic() - started
    assert len(batch.items) == 4 and batch.errors == []
    assert sim.control.requests[PLACES] == 3  # two 503s, then the answer
    assert adapter.http.counters.retries == 2
    assert adapter.http.breaker.state is BreakerState.CLOSED
    assert 0.15 <= elapsed < 1.0  # backed off (50-100 ms, then 100-150 ms), not hammered


async def test_a_post_is_retried_only_when_the_adapter_says_it_is_idempotent() -> None:
    v = Vendor([(503, {})] * 10)
    async with vendor(v) as http:
        with pytest.raises(UpstreamUnavailable):
            await http.request("POST", "/bookings", json={"id": 1})
        assert v.hits == 1  # a write is never sent twice
        with pytest.raises(UpstreamUnavailable):
            await http.request("POST", "/search", json={"q": 1}, idempotent=True)
        assert v.hits == 1 + 3
        with pytest.raises(UpstreamUnavailable):
            await http.request("GET", "/things", idempotent=False)
        assert v.hits == 1 + 3 + 1


async def test_apds_quotes_are_retried_as_reads_and_an_error_is_not() -> None:
    async with apds() as (sim, adapter):
        await adapter.quotes([quote()])  # the right specifications it books under, read once and kept
        sim.control.reset_stats()
        sim.control.set_fault(FaultMode.DOWN)
        with pytest.raises(UpstreamUnavailable):
            await adapter.quotes([quote()])
        assert sim.control.requests["POST /apds/v1/quotes"] == 3
        sim.control.set_fault(FaultMode.ERROR)  # a 500 is a failure of the request itself: not retried
        with pytest.raises(UpstreamError) as caught:
            await adapter.rates()
        assert type(caught.value) is UpstreamError
        assert sim.control.requests["GET /apds/v1/rates"] == 1


async def test_retry_after_is_honoured() -> None:
    v = Vendor([(429, {"retry-after": "0.3"}), (503, {"retry-after": "0.2"})])
    async with vendor(v) as http:
        started = time.monotonic()
        response = await http.request("GET", "/occupancy")
        elapsed = time.monotonic() - started
    assert response.status_code == 200 and v.hits == 3
    gaps = [b - a for a, b in zip(v.arrivals, v.arrivals[1:])]
    assert gaps[0] >= 0.29 and gaps[1] >= 0.19  # the vendor's wait, not our 50 ms backoff
    assert elapsed < 1.0


async def test_a_retry_after_beyond_the_deadline_fails_now_with_the_vendors_answer() -> None:
    v = Vendor([(429, {"retry-after": "30"})])
    async with vendor(v, timeout_s=0.5) as http:
        started = time.monotonic()
        with pytest.raises(UpstreamRejected) as caught:
            await http.request("GET", "/occupancy")
        elapsed = time.monotonic() - started
    assert caught.value.status == 429 and v.hits == 1
    assert elapsed < 0.2  # no pointless wait for a retry that could not happen in time
    assert http.breaker.state is BreakerState.CLOSED and http.breaker.consecutive_failures == 0


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    in_10_s = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8 <= (retry_after_seconds(in_10_s) or 0) <= 10


async def test_an_unreachable_system_is_unavailable_and_retried() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused
    http = VendorHTTP("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as caught:
            await http.request("GET", "/x")
    finally:
        await http.aclose()
    assert type(caught.value) is UpstreamUnavailable  # not a timeout: it said no at once
    assert http.counters.requests == 3 and http.counters.retries == 2


# --- timeouts ---------------------------------------------------------------------------------


async def test_a_slow_system_times_out_within_the_deadline_and_is_not_retried() -> None:
    async with apds(timeout_s=0.3) as (sim, adapter):
        sim.control.set_fault(FaultMode.SLOW, delay_ms=700)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await adapter.facilities()
        elapsed = time.monotonic() - started
        assert sim.control.requests[PLACES] == 1
    assert 0.28 <= elapsed < 0.45


async def test_the_deadline_covers_the_retries() -> None:
    v = Vendor([(503, {})] * 10, delay_s=0.15)
    async with vendor(v, timeout_s=0.4, retries=5) as http:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as caught:
            await http.request("GET", "/x")
        elapsed = time.monotonic() - started
    assert elapsed < 0.45
    assert v.hits == 2  # 150 ms, backoff, 150 ms: no time for a third
    assert isinstance(caught.value, UpstreamUnavailable | UpstreamTimeout)


# --- circuit breaker --------------------------------------------------------------------------


async def test_the_breaker_opens_fails_fast_probes_once_and_closes() -> None:
    async with apds(retries=0, breaker_failures=3, breaker_reset_s=0.25) as (sim, adapter):
        http = adapter.http
        sim.control.set_fault(FaultMode.DOWN)
        for _ in range(3):
            with pytest.raises(UpstreamUnavailable):
                await adapter.facilities()
        assert http.breaker.state is BreakerState.OPEN and http.breaker.opens == 1
        calls = sim.control.requests[PLACES]
        assert calls == 3

        started = time.monotonic()
        with pytest.raises(CircuitOpen) as caught:  # an UpstreamUnavailable, without a request
            await adapter.facilities()
        assert time.monotonic() - started < 0.01
        assert isinstance(caught.value, UpstreamUnavailable) and "circuit open" in caught.value.detail
        assert sim.control.requests[PLACES] == calls

        await asyncio.sleep(0.26)
        assert http.breaker.state is BreakerState.HALF_OPEN
        results = await asyncio.gather(*(adapter.facilities() for _ in range(5)), return_exceptions=True)
        assert sim.control.requests[PLACES] == calls + 1  # exactly one probe went through
        assert sum(isinstance(r, CircuitOpen) for r in results) == 4
        assert http.breaker.state is BreakerState.OPEN and http.breaker.opens == 2  # the probe failed: open again

        sim.control.set_fault(FaultMode.OK)
        with pytest.raises(CircuitOpen):
            await adapter.facilities()
        await asyncio.sleep(0.26)
        batch = await adapter.facilities()  # the probe (one page of four places at 50 a page)
        assert len(batch.items) == 4
        assert http.breaker.state is BreakerState.CLOSED
        assert len((await adapter.occupancy()).items) == 4
        assert http.metrics["breaker"]["opens"] == 2
        assert http.counters.failures["circuit_open"] == 6


async def test_rejections_do_not_open_the_breaker_and_server_errors_do() -> None:
    v = Vendor([(404, {})] * 6 + [(500, {})] * 3)
    async with vendor(v, breaker_failures=3, breaker_reset_s=10) as http:
        for _ in range(6):
            with pytest.raises(UpstreamRejected):
                await http.request("GET", "/x")
        assert http.breaker.state is BreakerState.CLOSED
        for _ in range(3):
            with pytest.raises(UpstreamError):
                await http.request("GET", "/x")
        assert http.breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpen):
            await http.request("GET", "/x")
    assert v.hits == 9


async def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    clock = [0.0]
    breaker = CircuitBreaker("s", failures=1, reset_s=5, clock=lambda: clock[0])
    breaker.failure(None, "UPSTREAM_UNAVAILABLE: down")
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.admit()
    clock[0] = 5.0
    probe = breaker.admit()
    assert probe is not None and breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.admit()  # one probe at a time
    breaker.release(probe)  # cancelled: tells nothing
    second = breaker.admit()
    assert second is not None
    breaker.success(second)
    assert breaker.state is BreakerState.CLOSED and breaker.admit() is None
    assert (breaker.opens, breaker.probes, breaker.rejected) == (1, 2, 2)


async def test_a_call_under_way_stops_retrying_once_the_breaker_opens() -> None:
    v = Vendor([(503, {})] * 20, delay_s=0.05)
    async with vendor(v, breaker_failures=2, breaker_reset_s=10, retries=4, timeout_s=2.0) as http:
        # Two calls fail fast (not idempotent) and open the circuit while a read is backing off.
        read = asyncio.create_task(http.request("GET", "/slow-read"))
        await asyncio.sleep(0.01)
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                await http.request("POST", "/write")
        assert http.breaker.state is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable):
            await read
    assert v.hits <= 2 + 2  # the read made at most two of its five attempts, the writes one each


# --- concurrency and rate -------------------------------------------------------------------


async def test_no_more_calls_in_flight_than_max_concurrency() -> None:
    v = Vendor(delay_s=0.05)
    async with vendor(v, max_concurrency=3) as http:
        results = await asyncio.gather(*(http.request("GET", f"/x/{i}") for i in range(12)))
    assert all(r.status_code == 200 for r in results)
    assert v.peak == 3 and http.limit.peak_in_flight == 3
    assert http.metrics["peak_in_flight"] == 3 and http.metrics["in_flight"] == 0


async def test_waiting_for_a_free_slot_is_bounded_by_the_deadline() -> None:
    v = Vendor(delay_s=0.4)
    async with vendor(v, max_concurrency=1, timeout_s=0.2) as http:
        started = time.monotonic()
        sent, queued = await asyncio.gather(
            http.request("GET", "/a"), http.request("GET", "/b"), return_exceptions=True
        )
        assert time.monotonic() - started < 0.75  # not 0.8 s of two calls in a row: the queue wait is bounded too
    assert isinstance(sent, UpstreamTimeout) and isinstance(queued, UpstreamTimeout)
    # The slot frees when the first call's deadline passes, at about the second's own deadline: the
    # second either never got a slot ("no free slot") or got it too late to be answered.
    queue_waits = sum("no free slot" in e.detail for e in (sent, queued))
    assert 1 <= v.hits <= 2 - queue_waits  # a late slot may time out before its request is even sent
    assert http.counters.failures.get("queue_timeout", 0) == queue_waits
    assert http.breaker.consecutive_failures == 2 - queue_waits  # the vendor's slowness counts, our queue does not


async def test_apds_adapter_gets_its_limits_from_the_spec() -> None:
    async with apds(max_concurrency=2, rate_limit_per_s=50.0, retries=1, breaker_failures=7) as (_, adapter):
        http = adapter.http
        assert http.limit.max_concurrency == 2 and http.limit.bucket is not None
        assert http.limit.bucket.rate_per_s == 50.0
        assert http.retries == 1 and http.breaker.failure_threshold == 7


async def test_the_rate_limit_spaces_calls() -> None:
    v = Vendor()
    async with vendor(v, rate_limit_per_s=20.0) as http:
        await http.request("GET", "/warm-up")  # the connection, and the first token
        v.arrivals.clear()
        started = time.monotonic()
        await asyncio.gather(*(http.request("GET", "/x") for _ in range(8)))
        elapsed = time.monotonic() - started
    gaps = [b - a for a, b in zip(v.arrivals, v.arrivals[1:])]
    assert min(gaps) >= 0.025  # spaced, not a burst (unlimited, they arrive within a millisecond)
    assert elapsed >= 8 * 0.05 - 0.02
    assert 7 / (v.arrivals[-1] - v.arrivals[0]) <= 20 * 1.1  # the contract's rate, give or take timer jitter


async def test_a_rate_wait_longer_than_the_deadline_fails_fast() -> None:
    v = Vendor()
    async with vendor(v, rate_limit_per_s=2.0, timeout_s=0.3) as http:
        await http.request("GET", "/x")
        started = time.monotonic()
        with pytest.raises(OutboundThrottled) as caught:
            await http.request("GET", "/x")
        assert time.monotonic() - started < 0.05
        assert isinstance(caught.value, UpstreamUnavailable) and "rate limit toward the vendor" in caught.value.detail
        assert http.breaker.consecutive_failures == 0  # our own limit says nothing about the vendor
    assert v.hits == 1


def test_token_bucket_with_a_burst() -> None:
    clock = [100.0]
    bucket = TokenBucket(10.0, burst=3, clock=lambda: clock[0])
    assert [bucket.reserve(1.0) for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.1)]
    assert bucket.reserve(0.05) is None  # would wait 0.2 s: refused, nothing taken
    clock[0] += 1.0
    assert bucket.reserve(0.0) == 0.0


# --- metrics ----------------------------------------------------------------------------------


async def test_metrics_count_calls_requests_retries_failures_and_latency() -> None:
    async with vendor(Vendor([(503, {}), (404, {}), (500, {})], delay_s=0.01), breaker_failures=5) as http:
        with pytest.raises(UpstreamRejected):
            await http.request("GET", "/a")  # 503, retried, then 404
        with pytest.raises(UpstreamError):
            await http.request("GET", "/b")  # 500
        await http.request("GET", "/c")
        metrics = http.metrics
    assert metrics["calls"] == 3 and metrics["requests"] == 4 and metrics["retries"] == 1
    assert metrics["failures"] == {"rejected": 1, "error": 1}
    assert metrics["latency_ms"]["count"] == 4
    assert metrics["latency_ms"]["max"] >= 10 and metrics["latency_ms"]["sum"] >= 40
    assert metrics["breaker"]["state"] == "CLOSED" and metrics["breaker"]["opens"] == 0
