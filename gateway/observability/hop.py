"""The vendor hop as metrics and traces see it: adapters/http.py's `HopObserver` for one system.

Per call: a count by outcome, the breaker's state after it, and, when tracing is on, the caller's
trace context as `traceparent` on the request; a CLIENT span of its own only when the current
trace is sampled. Per attempt on the wire: its time, in the latency histogram. Children are
looked up once, here, never per call.
"""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from adapters.breaker import BreakerState
from adapters.http import redacted_url
from gateway.observability.metrics import BREAKER_STATES, GatewayMetrics
from gateway.observability.tracing import Tracing

CALL_OUTCOMES = ("ok", "unavailable", "timeout", "error", "rejected", "circuit_open", "throttled", "queue_timeout",
                 "cancelled")


class HopObservation:
    """The `HopObserver` of one system's hop."""

    def __init__(self, system_id: str, base_url: str, metrics: GatewayMetrics, tracing: Tracing | None) -> None:
        self.system_id = system_id
        self.base_url = base_url.rstrip("/")
        self.tracing = tracing
        self._calls = {outcome: metrics.vendor_calls.child(system_id, outcome) for outcome in CALL_OUTCOMES}
        self._duration = metrics.vendor_duration.child(system_id)
        self._retries = metrics.vendor_retries.child(system_id)
        self._breaker = metrics.breaker_state.child(system_id)
        self._breaker.set(BREAKER_STATES["CLOSED"])
        self._last_state = BreakerState.CLOSED

    def call_started(self, method: str, path: str, headers: dict[str, str]) -> Any:
        tracing = self.tracing
        if tracing is None:
            return None
        if not trace.get_current_span().is_recording():
            tracing.inject(headers)  # unsampled: the caller's context goes on, no span of ours
            return None
        span = tracing.tracer.start_span(
            f"{method} {self.system_id}", kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "parkgate.system": self.system_id,
                        "url.full": redacted_url(httpx.URL(self.base_url + path))})
        token = otel_context.attach(trace.set_span_in_context(span))
        tracing.inject(headers)
        return span, token

    def call_ended(self, started: Any, outcome: str, breaker: BreakerState) -> None:
        self._calls[outcome].inc()
        if breaker is not self._last_state:
            self._last_state = breaker
            self._breaker.set(BREAKER_STATES[breaker.value])
        if started is not None:
            span, token = started
            otel_context.detach(token)
            span.set_attribute("parkgate.outcome", outcome)
            if outcome != "ok":
                span.set_status(Status(StatusCode.ERROR, outcome))
            span.end()

    def attempt(self, seconds: float) -> None:
        self._duration.observe(seconds)

    def retry(self) -> None:
        self._retries.inc()
