"""Figures batched on their way to prometheus_client (gateway/observability/batch.py) read the same
as figures written directly: every sample of the exposition, histogram buckets and sums included."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import MetricsConfig
from gateway.observability.metrics import LATENCY_BUCKETS, GatewayMetrics

# the bounds themselves, either side of them, nothing and far past the last one
seconds = st.one_of(st.sampled_from([0.0, *LATENCY_BUCKETS, 1e-9, 99.0]),
                    st.floats(min_value=0, max_value=60, allow_nan=False, allow_infinity=False))
operations = st.lists(st.tuples(st.sampled_from(["c1", "c2"]), st.sampled_from(["Facilities", "Plate"]),
                                st.sampled_from(["ok", "error"]), seconds, st.integers(0, 500)), max_size=60)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode()) for s in family.samples}


def record(metrics: GatewayMetrics, ops: list[tuple[str, str, str, float, int]]) -> None:
    for client, operation, outcome, took, cost in ops:
        metrics.operation(client, operation, outcome, "none", took)
        metrics.cost(client, cost)
        metrics.quota_admitted.child(client).inc()


@settings(max_examples=60, deadline=None)
@given(operations)
def test_a_batched_exposition_reads_as_figures_written_directly(ops: list[tuple[str, str, str, float, int]]) -> None:
    direct = GatewayMetrics(MetricsConfig())
    record(direct, ops)  # no event loop: each figure goes to prometheus_client at once

    async def batched() -> bytes:
        metrics = GatewayMetrics(MetricsConfig())
        record(metrics, ops)
        assert not ops or metrics.batch._counted, "inside the event loop the figures wait for a hand-over"
        return metrics.exposition()

    expected, got = samples(direct.exposition()), samples(asyncio.run(batched()))
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


async def test_figures_reach_prometheus_client_within_the_flush_interval_without_a_scrape() -> None:
    # With several workers another worker's exposition reads the shared files, never this batch.
    metrics = GatewayMetrics(MetricsConfig())
    metrics.batch.FLUSH_S = 0.05
    metrics.operation("c1", "Facilities", "ok", "none", 0.004)
    metrics.cost("c1", 7)
    raw = samples(generate_latest(metrics.registry))
    assert raw[("parkgate_graphql_cost_points_total", (("client", "c1"),))] == 0
    await asyncio.sleep(0.2)
    raw = samples(generate_latest(metrics.registry))
    assert raw[("parkgate_graphql_cost_points_total", (("client", "c1"),))] == 7
    labels = (("operation", "Facilities"), ("outcome", "ok"))
    assert raw[("parkgate_graphql_request_duration_seconds_count", labels)] == 1
    assert raw[("parkgate_graphql_request_duration_seconds_bucket", (("le", "0.005"), *labels))] == 1
    assert raw[("parkgate_graphql_request_duration_seconds_bucket", (("le", "0.0025"), *labels))] == 0


async def test_a_counter_refuses_to_go_down_where_it_is_counted() -> None:
    metrics = GatewayMetrics(MetricsConfig())
    with pytest.raises(ValueError, match="non-negative"):
        metrics.cost("c1", -1)
