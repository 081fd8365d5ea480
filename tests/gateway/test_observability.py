"""What an operator watches: /metrics scraped and read with prometheus_client's own parser as
requests, throttles, cache hits and vendor failures happen; a request's id in its response header,
its log line and its errors; who may read the figures (gateway/observability/)."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from gateway.card_numbers import looks_like_card_number
from gateway.observability.logs import JSONFormatter
from gateway.observability.metrics import ANONYMOUS, OTHER, OperationNames
from gateway.observability.request_log import request_id
from gateway.sandbox import build_sandbox
from tests.support import REPO
from tests.support.bed import Bed
from tests.support.servers import bound_socket, serve

OCCUPANCY = "query Occupancy { facility(id: \"berlin-hbf\") { occupancy { free sensed { occupied } } } }"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, url: str, **kwargs: Any) -> Samples:
    """Every sample of /metrics, read by prometheus_client's parser: (name, labels) -> value."""
    response = await http.get(f"{url}/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")  # the text exposition format
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when it does not exist yet (a label set never counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def post(bed: Bed, query: str, key: str, **headers: str) -> httpx.Response:
    return await bed.http.post(f"{bed.url}/graphql", json={"query": query},
                               headers={"authorization": f"Bearer {key}", **headers})


async def test_a_scrape_parses_and_counts_requests_cost_and_quota(bed: Bed) -> None:
    client_id, key = await bed.new_client(["facilities:read", "occupancy:read"])
    before = await scrape(bed.http, bed.url)
    for _ in range(3):
        assert (await post(bed, OCCUPANCY, key)).status_code == 200
    after = await scrape(bed.http, bed.url)
    counted = {"client": client_id, "operation": "Occupancy", "outcome": "ok", "code": "none"}
    assert value(after, "parkgate_graphql_requests_total", **counted) - value(before, "parkgate_graphql_requests_total", **counted) == 3
    assert value(after, "parkgate_quota_admitted_total", client=client_id) == 3
    assert value(after, "parkgate_graphql_cost_points_total", client=client_id) > 0
    took = {"operation": "Occupancy", "outcome": "ok"}
    assert (value(after, "parkgate_graphql_request_duration_seconds_count", **took)
            - value(before, "parkgate_graphql_request_duration_seconds_count", **took)) == 3
    # the first asked the vendors; the two after were answered from the response cache
    assert value(after, "parkgate_response_cache_total", result="hit") - value(before, "parkgate_response_cache_total", result="hit") >= 2
    assert value(after, "parkgate_vendor_calls_total", system="guidance", outcome="ok") > value(before, "parkgate_vendor_calls_total", system="guidance", outcome="ok")
    assert value(after, "parkgate_vendor_request_duration_seconds_count", system="guidance") > 0
    # no query text, key or request id in any label
    for name, labels in after:
        for _, label in labels:
            assert key not in label and "facility" not in label and len(label) <= 64, (name, labels)


async def test_a_throttled_client_shows_as_429s(bed: Bed) -> None:
    client_id, key = await bed.new_client(["facilities:read"], overrides={"requests": 2})
    before = await scrape(bed.http, bed.url)
    statuses = [(await bed.http.post(f"{bed.url}/graphql", json={"query": "query Names { facilities(first: 1) { totalCount } }"},
                                     headers={"authorization": f"Bearer {key}",
                                              "accept": "application/graphql-response+json"})).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    after = await scrape(bed.http, bed.url)
    assert value(after, "parkgate_quota_refused_total", client=client_id, reason="requests") == 2
    assert value(after, "parkgate_quota_admitted_total", client=client_id) == 2
    refused = {"client": client_id, "operation": "Names", "outcome": "refused", "code": "RATE_LIMITED"}
    assert value(after, "parkgate_graphql_requests_total", **refused) - value(before, "parkgate_graphql_requests_total", **refused) == 2


async def test_cache_hits_and_vendor_failures_are_counted_per_system(bed: Bed) -> None:
    _, key = await bed.new_client(["facilities:read", "occupancy:read"])
    sensed = "query Sensed { facility(id: \"berlin-hbf\") { occupancy { sensed { occupied } } } }"
    served = "query Served { facility(id: \"berlin-hbf\") { occupancy { free } } }"
    before = await scrape(bed.http, bed.url)
    assert (await post(bed, sensed, key)).status_code == 200  # the vendor is asked: a miss
    assert (await post(bed, served, key)).status_code == 200  # another answer from the same vendor data: a hit
    cached = await scrape(bed.http, bed.url)
    assert value(cached, "parkgate_upstream_cache_total", system="guidance", result="miss") > value(before, "parkgate_upstream_cache_total", system="guidance", result="miss")
    assert value(cached, "parkgate_upstream_cache_total", system="guidance", result="hit") > value(before, "parkgate_upstream_cache_total", system="guidance", result="hit")
    await bed.clear_cache()
    await bed.fault("guidance", "error")
    failed = (await post(bed, sensed, key)).json()
    assert failed["errors"][0]["extensions"]["code"] == "UPSTREAM_ERROR", failed
    after = await scrape(bed.http, bed.url)
    assert value(after, "parkgate_vendor_calls_total", system="guidance", outcome="error") > value(cached, "parkgate_vendor_calls_total", system="guidance", outcome="error")
    partial = {"operation": "Sensed", "outcome": "partial"}
    assert (value(after, "parkgate_graphql_request_duration_seconds_count", **partial)
            > value(cached, "parkgate_graphql_request_duration_seconds_count", **partial))


async def test_the_json_view_moved_to_metrics_json(bed: Bed) -> None:
    view = (await bed.http.get(f"{bed.url}/metrics.json")).json()
    assert set(view["systems"]["parcs-central"]) >= {"http", "cache"}


async def test_a_request_id_is_in_the_header_the_log_line_and_the_errors(bed: Bed, caplog: pytest.LogCaptureFixture) -> None:
    client_id, key = await bed.new_client(["facilities:read"])
    mine = f"req-{uuid.uuid4().hex}"
    with caplog.at_level(logging.INFO, logger="parkgate.request"):
        # a field the client may not read: an error at its path, the rest answered
        answer = await post(bed, "query Mixed { facilities(first: 1) { totalCount } facility(id: \"berlin-hbf\") "
                                 "{ occupancy { free } } }", key, **{"x-request-id": mine})
    assert answer.headers["x-request-id"] == mine
    errors = answer.json()["errors"]
    assert errors and all(error["extensions"]["requestId"] == mine for error in errors)
    lines = [record for record in caplog.records if getattr(record, "request_id", None) == mine]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    line = json.loads(JSONFormatter().format(lines[0]))
    assert line["request_id"] == mine and line["client_id"] == client_id and line["operation"] == "Mixed"
    assert line["status"] == 200 and line["cost"] >= 1 and line["error_code"] == "FORBIDDEN" and line["duration_ms"] > 0
    assert key not in json.dumps(line)


async def test_an_unusable_request_id_is_replaced_and_edge_errors_carry_it(bed: Bed) -> None:
    answer = await bed.http.post(f"{bed.url}/graphql", json={"query": "{ facilities { totalCount } }"},
                                 headers={"x-request-id": "no spaces\tor tabs", "authorization": "Bearer nope"})
    assert answer.status_code == 401
    made = answer.headers["x-request-id"]
    assert made != "no spaces\tor tabs" and len(made) == 32
    assert answer.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "requestId": made}


@given(st.one_of(st.text(max_size=300), st.from_regex(r"[0-9.:-]{12,40}", fullmatch=True),
                 st.sampled_from(["4111111111111111", "4111-1111-1111-1111", "req-4111.1111.1111.1111"])))
def test_request_ids_are_the_callers_only_when_sane(offered: str) -> None:
    made = request_id(offered)
    sane = (0 < len(offered) <= 128 and all(c.isascii() and (c.isalnum() or c in "._:-") for c in offered)
            and not looks_like_card_number(offered))  # echoed and logged: never a card number
    assert (made == offered) is sane
    assert 1 <= len(made) <= 128 and all(c.isascii() and (c.isalnum() or c in "._:-") for c in made)


@given(st.lists(st.one_of(st.none(), st.text(max_size=100)), max_size=200), st.integers(min_value=0, max_value=20))
def test_operation_names_are_a_bounded_label(names: list[str | None], limit: int) -> None:
    operations = OperationNames(limit)
    labels = {operations.label(name) for name in names}
    assert len(labels - {OTHER, ANONYMOUS}) <= limit
    for name in names:
        label = operations.label(name)
        assert label == ANONYMOUS if name is None else label in (OTHER, name[:64])
        assert len(label) <= 64


# --- who may read the figures ---------------------------------------------------------------

@pytest_asyncio.fixture(loop_scope="session")
async def scoped() -> AsyncIterator[tuple[str, Any, httpx.AsyncClient]]:
    """A sandbox whose /metrics needs the admin scope."""
    async for served in _sandbox({"metrics": {"access": "scope", "scope": "admin"}}):
        yield served


@pytest_asyncio.fixture(loop_scope="session")
async def private() -> AsyncIterator[tuple[str, Any, httpx.AsyncClient]]:
    """A sandbox whose figures are only on a private port (port 0: a free one)."""
    async for served in _sandbox({"metrics": {"access": "port", "host": "127.0.0.1", "port": 0}}):
        yield served


async def _sandbox(observability: dict[str, Any]) -> AsyncIterator[tuple[str, Any, httpx.AsyncClient]]:
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, _ = build_sandbox(url, polling=False, observability=observability)
    async with serve(app, sock), httpx.AsyncClient(timeout=30) as http:
        yield url, app, http


async def test_metrics_behind_a_scope(scoped: tuple[str, Any, httpx.AsyncClient]) -> None:
    url, app, http = scoped
    sandbox = app.state.sandbox
    assert (await http.get(f"{url}/metrics")).status_code == 401
    assert (await http.get(f"{url}/metrics.json")).status_code == 401
    dashboard = {"authorization": f"Bearer {sandbox.clients['dashboard']['key']}"}
    refused = await http.get(f"{url}/metrics", headers=dashboard)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    admin = {"authorization": f"Bearer {sandbox.clients['admin']['key']}"}
    samples = await scrape(http, url, headers=admin)
    assert any(name == "parkgate_vendor_breaker_state" for name, _ in samples)


async def test_metrics_on_a_private_port_only(private: tuple[str, Any, httpx.AsyncClient]) -> None:
    url, app, http = private
    assert (await http.get(f"{url}/metrics")).status_code == 404
    listener = app.state.private_metrics
    samples = await scrape(http, f"http://127.0.0.1:{listener.port}")
    assert value(samples, "parkgate_vendor_breaker_state", system="parcs-central") == 0
    assert (await http.get(f"http://127.0.0.1:{listener.port}/other")).status_code == 404


async def test_the_docs_and_the_dashboard_name_every_metric_and_only_those(bed: Bed) -> None:
    response = await bed.http.get(f"{bed.url}/metrics")
    exposed = {family.name + ("_total" if family.type == "counter" else "")
               for family in text_string_to_metric_families(response.text) if family.name.startswith("parkgate_")}
    documented = set(re.findall(r"^\| `(parkgate_[a-z_]+)` \|", (REPO / "docs" / "observability.md").read_text(), re.M))
    assert documented == exposed
    dashboard = json.loads((REPO / "docs" / "grafana" / "parkgate-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]
    charted = {re.sub(r"_(bucket|count|sum)$", "", name) for expr in expressions for name in re.findall(r"parkgate_[a-z_]+", expr)}
    assert charted == exposed, (charted ^ exposed)  # every figure has a panel, every panel a figure


async def test_a_refused_subscription_stream_carries_the_request_id(bed: Bed) -> None:
    answer = await bed.http.post(f"{bed.url}/graphql/stream", json={"query": "subscription { occupancyChanged { free } }"},
                                 headers={"x-request-id": "sse-42", "authorization": "Bearer nope"})
    assert answer.status_code == 401 and answer.headers["x-request-id"] == "sse-42"
    assert answer.json()["errors"][0]["extensions"]["requestId"] == "sse-42"
