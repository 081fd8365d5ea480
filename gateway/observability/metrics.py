"""Every figure parkgate gives Prometheus, in one place, with labels that stay bounded.

Label values come only from bounded sets: client ids (made by admins), system ids and event types
(from the configuration and the code), error codes (the catalog), outcomes (listed here), and
GraphQL operation names bounded by `OperationNames` (the first `max_operation_names` a process sees,
then `other`). Never a query's text, a plate, a key or a request id.

The request path never looks a label set up twice: each family's children are kept in a dict by
their label values (`_Family.child`), so counting is a dict lookup and an increment. With
`metrics.enabled: false` every child is `NOOP`: the request path still calls it, and nothing happens.

Several processes (`parkgate serve --workers N`): when PROMETHEUS_MULTIPROC_DIR is set in the
environment *before the process starts*, prometheus_client writes every value to a file there, and
the exposition (`exposition`) merges the files of every worker (`MultiProcessCollector`): any
worker's /metrics answers for all. Gauges say how to merge (`multiprocess_mode`): open subscriptions
add up over the live workers, a breaker shows the worst state any live worker sees. Whoever restarts
a worker calls `process_exited(pid)` so its live gauges leave the sums.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.config import MetricsConfig
from gateway.observability.batch import BatchedCounter, BatchedHistogram, FigureBatch

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: what the exposition answers with (the Prometheus text format)
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: the outcome of one GraphQL operation
OK, PARTIAL, ERROR, REFUSED = "ok", "partial", "error", "refused"
#: operation label for a document that never got as far as being prepared (it did not parse or validate)
UNPREPARED = "unprepared"
ANONYMOUS = "anonymous"
OTHER = "other"
MAX_NAME_LENGTH = 64
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")

#: seconds; a GraphQL answer from the cache takes a millisecond, a vendor round trip tens to hundreds
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BREAKER_STATES = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}


class Child(Protocol):
    def inc(self, amount: float = 1) -> None: ...
    def dec(self, amount: float = 1) -> None: ...
    def set(self, value: float) -> None: ...
    def observe(self, amount: float) -> None: ...


class _Noop:
    """A child that counts nothing (metrics turned off)."""

    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def observe(self, amount: float) -> None:
        return None


NOOP: Child = _Noop()


class _Family:
    """One metric family and its children, kept by label values (each wrapped by `batched`, when given:
    gateway/observability/batch.py)."""

    __slots__ = ("_batched", "_children", "_metric", "enabled")

    def __init__(self, metric: Any, enabled: bool, batched: Callable[[Any], Child] | None = None) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Child] = {}
        self.enabled = enabled
        self._batched = batched

    def child(self, *values: str) -> Child:
        found = self._children.get(values)
        if found is None:
            metric = self._metric.labels(*values) if values else self._metric  # a family without labels is its own child
            if not self.enabled:
                metric = NOOP
            elif self._batched is not None:
                metric = self._batched(metric)
            found = self._children[values] = metric
        return found


class OperationNames:
    """GraphQL operation names as a bounded label: the first `limit` distinct names, then `other`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._labels: dict[str, str] = {}

    def label(self, name: str | None) -> str:
        if name is None:
            return ANONYMOUS
        found = self._labels.get(name)
        if found is not None:
            return found
        if len(self._labels) >= self.limit or not _NAME.match(name):
            return OTHER
        label = self._labels[name] = name[:MAX_NAME_LENGTH]
        return label


@dataclass(frozen=True, slots=True)
class UpstreamCacheFigures:
    hit: Child
    miss: Child
    stale: Child
    coalesced: Child
    refresh: Child
    renew: Child


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class GatewayMetrics:
    """The families, registered in a registry of this gateway's own (not prometheus_client's global one)."""

    def __init__(self, config: MetricsConfig) -> None:
        # No `_created` series: in the text format each is one more gauge per counter child that
        # Prometheus stores and nobody charts (prometheus_client's switch is process-wide).
        disable_created_metrics()
        self.config = config
        self.enabled = config.enabled
        self.registry = CollectorRegistry(auto_describe=True)
        #: counters and histograms are batched on their way to prometheus_client (gateway/observability/batch.py)
        self.batch = FigureBatch()
        self.operations = OperationNames(config.max_operation_names)
        self.graphql_requests = self._counter(
            "parkgate_graphql_requests", "GraphQL operations answered, by client, operation name, outcome "
            "(ok, partial, error, refused) and the first error's code (none when there was no error).",
            ("client", "operation", "outcome", "code"))
        self.graphql_duration = self._histogram(
            "parkgate_graphql_request_duration_seconds", "Time to answer one GraphQL operation, by operation "
            "name and outcome.", ("operation", "outcome"), LATENCY_BUCKETS)
        # Cost per client as a counter (÷ requests: the average); no histogram of it: one more observe
        # per request is 2 µs, 2 % of a cached answer (bench/observability_bench.py).
        self.cost_points = self._counter(
            "parkgate_graphql_cost_points", "Query cost points charged for operations, by client.", ("client",))
        self._answered: dict[tuple[str, str, str, str], tuple[Child, Child]] = {}
        self.quota_admitted = self._counter(
            "parkgate_quota_admitted", "Operations the quota admitted, by client.", ("client",))
        self.quota_refused = self._counter(
            "parkgate_quota_refused", "Operations refused by the meter, by client and reason: requests or cost "
            "(429 RATE_LIMITED), ceiling (COST_LIMIT_EXCEEDED), unavailable (quotas could not be checked).",
            ("client", "reason"))
        self.response_cache = self._counter(
            "parkgate_response_cache", "Whole-answer cache lookups, by result (hit, miss).", ("result",))
        self.upstream_cache = self._counter(
            "parkgate_upstream_cache", "Vendor-answer cache reads by system and result: hit (fresh), miss, "
            "stale (served past its TTL), coalesced (waited for another request's call), refresh (background), "
            "renew (records an event changed, read alone into their cached list).",
            ("system", "result"))
        self.vendor_calls = self._counter(
            "parkgate_vendor_calls", "Calls to vendor systems by system and outcome: ok, or the failure "
            "(unavailable, timeout, error, rejected, circuit_open, throttled, queue_timeout).", ("system", "outcome"))
        self.vendor_retries = self._counter("parkgate_vendor_retries", "Retried vendor attempts, by system.", ("system",))
        self.vendor_duration = self._histogram(
            "parkgate_vendor_request_duration_seconds", "Time of each attempt on the wire to a vendor, by system.",
            ("system",), LATENCY_BUCKETS)
        self.breaker_state = self._gauge(
            "parkgate_vendor_breaker_state", "Circuit breaker toward each system: 0 closed, 1 half-open, 2 open "
            "(several workers: the worst).", ("system",), "livemax")
        self.webhooks_received = self._counter(
            "parkgate_webhooks_received", "Vendor webhook events by system and outcome (accepted, corrected, "
            "duplicate, unmapped).", ("system", "outcome"))
        self.webhook_deliveries = self._counter(
            "parkgate_webhook_deliveries", "Attempts to deliver partner webhooks by outcome: delivered, retrying, "
            "failed (for good), gone (410: the endpoint is disabled).", ("outcome",))
        self.subscriptions_open = self._gauge(
            "parkgate_subscriptions_open", "GraphQL subscriptions open now (WebSocket and SSE).", (), "livesum")
        self.events = self._counter(
            "parkgate_events", "Domain events published on the bus by this gateway, by type and system.",
            ("type", "system"))

    # --- families ---------------------------------------------------------------------------------

    def _counter(self, name: str, doc: str, labels: Sequence[str]) -> _Family:
        return _Family(Counter(name, doc, labels, registry=self.registry), self.enabled,
                       lambda child: BatchedCounter(child, self.batch))

    def _histogram(self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> _Family:
        return _Family(Histogram(name, doc, labels, registry=self.registry, buckets=buckets), self.enabled,
                       lambda child: BatchedHistogram(child, buckets, self.batch))

    def _gauge(self, name: str, doc: str, labels: Sequence[str], mode: Literal["livemax", "livesum"]) -> _Family:
        return _Family(Gauge(name, doc, labels, registry=self.registry, multiprocess_mode=mode), self.enabled)

    # --- the request path's shorthands --------------------------------------------------------------

    def operation(self, client: str, operation: str, outcome: str, code: str, seconds: float) -> None:
        """One GraphQL operation answered (`operation`: a label from `operations.label`, or UNPREPARED)."""
        key = (client, operation, outcome, code)
        children = self._answered.get(key)
        if children is None:
            children = self._answered[key] = (self.graphql_requests.child(*key),
                                              self.graphql_duration.child(operation, outcome))
        children[0].inc()
        children[1].observe(seconds)

    def cost(self, client: str, actual: int) -> None:
        self.cost_points.child(client).inc(actual)

    def upstream_cache_figures(self, system_id: str) -> UpstreamCacheFigures:
        """One system's upstream-cache counters (gateway/upstream.py's `CacheFigures`)."""
        family = self.upstream_cache
        return UpstreamCacheFigures(family.child(system_id, "hit"), family.child(system_id, "miss"),
                                    family.child(system_id, "stale"), family.child(system_id, "coalesced"),
                                    family.child(system_id, "refresh"), family.child(system_id, "renew"))

    # --- exposition -------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's figures, or every worker's when several run."""
        self.batch.flush()
        if multiprocess():
            merged = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)


def process_exited(pid: int) -> None:
    """A worker is gone: its live gauges leave the merged figures (call from whoever restarts workers)."""
    if multiprocess():
        prometheus_multiprocess.mark_process_dead(pid)
