"""What an operator watches parkgate with: Prometheus figures, OpenTelemetry traces, request logs.

    metrics.py        every figure, its labels (bounded), and the exposition (one process or several)
    batch.py          figures made on the request path, handed to prometheus_client together
    metrics_http.py   GET /metrics (Prometheus text) and /metrics.json, behind the configured access
    hop.py            the vendor hop observed: adapters/http.py's `HopObserver`, fed to metrics and traces
    tracing.py        spans, W3C `traceparent` in and out, OTLP export when configured
    request_log.py    a request's id (X-Request-Id, checked, or made) and its one log line
    logs.py           the log format: JSON in production, readable text in the sandbox

The request path reaches these through `Runtime.observability` (one `Observability` per runtime),
never through module globals: two gateways in one process (tests, benches) count apart.
docs/observability.md is the operator's side of the same map.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.tracing import Tracing


@dataclass
class Observability:
    """The figures and the traces of one gateway; `tracing` is None when traces are off (the default)."""

    metrics: GatewayMetrics
    tracing: Tracing | None

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Observability:
        settings = config.observability
        return cls(GatewayMetrics(settings.metrics),
                   Tracing.from_config(settings.tracing) if settings.tracing.enabled else None)
