"""Two `parkgate serve` processes sharing one PROMETHEUS_MULTIPROC_DIR (as `serve --workers N`'s
workers do): either one's /metrics counts the requests both answered; and each writes one JSON log
line per request, with the request's id (gateway/observability/)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.bed import Bed
from tests.support.processes import deployment_config, start_gateway, wait_ready

REFUSED = {"client": "unauthenticated", "operation": "unprepared", "outcome": "error", "code": "UNAUTHENTICATED"}


def refused_count(text: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "parkgate_graphql_requests_total" and sample.labels == REFUSED)


async def test_workers_figures_are_merged_and_each_request_is_one_json_line(bed: Bed, redis_url: str, tmp_path: Path) -> None:
    config, env = deployment_config(bed, redis_url, tmp_path)
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    gateways = [start_gateway(config, env, log_level="INFO") for _ in range(2)]  # a few requests: the pipe holds them
    ids: list[list[str]] = [[f"mp-{n}-{uuid.uuid4().hex[:8]}" for _ in range(3)] for n in range(2)]
    try:
        for process, url in gateways:
            await wait_ready(url, process)
        async with httpx.AsyncClient(timeout=10) as http:
            for (_, url), mine in zip(gateways, ids, strict=True):
                for request_id in mine:
                    answer = await http.post(f"{url}/graphql", json={"query": "{ facilities { totalCount } }"},
                                             headers={"authorization": "Bearer pk_test_not_a_key", "x-request-id": request_id})
                    assert answer.status_code == 401 and answer.headers["x-request-id"] == request_id
            # Each worker hands its counters to the shared files within a second
            # (gateway/observability/batch.py): either one's /metrics then counts all six.
            for _, url in gateways:
                counted = 0.0
                for _ in range(50):
                    counted = refused_count((await http.get(f"{url}/metrics")).text)
                    if counted >= 6:
                        break
                    await asyncio.sleep(0.1)
                assert counted == 6
    finally:
        outputs = []
        for process, _ in gateways:
            process.terminate()
            try:
                outputs.append(process.communicate(timeout=15)[1])
            except subprocess.TimeoutExpired:
                process.kill()
                outputs.append(process.communicate()[1])
    for output, mine in zip(outputs, ids, strict=True):
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert lines, output
        logged = [line for line in lines if line.get("logger") == "parkgate.request"]
        assert [line["request_id"] for line in logged if line["path"] == "/graphql"] == mine
        assert all(line["status"] == 401 and line["level"] == "INFO" and line["duration_ms"] >= 0
                   for line in logged if line["path"] == "/graphql")
        assert "pk_test_not_a_key" not in output
