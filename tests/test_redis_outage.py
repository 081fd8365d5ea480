"""When Redis goes away under a running gateway: no 500s, the configured choice, recovery without restart."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REDIS_MISSING, Bed
from tests.support import bound_socket
from tests.test_replicas import deployment_config


class OwnRedis:
    """A redis-server of this test's own, on a fixed port, that it can stop and start again
    (with an append-only file, so it comes back with its data, as a production Redis does)."""

    def __init__(self, tmp: Path) -> None:
        sock = bound_socket()
        self.port = sock.getsockname()[1]
        sock.close()
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_MISSING, pytrace=False)
    redis = OwnRedis(tmp_path)
    redis.start()
    yield redis
    if redis.process and redis.process.poll() is None:
        redis.stop()


def serve(config: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return process, f"http://127.0.0.1:{port}"


async def wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not start")


@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_redis_outage_and_recovery(bed: Bed, own_redis: OwnRedis, tmp_path: Path, policy: str) -> None:
    config, env = deployment_config(bed, own_redis.url, tmp_path)
    document = yaml.safe_load(config.read_text())
    document["quotas"] = {"on_redis_error": policy}
    config.write_text(yaml.safe_dump(document))
    created = subprocess.run([sys.executable, "-m", "gateway", "clients", "create", "--config", str(config),
                              "--name", "steady", "--scope", "facilities:read"], capture_output=True, text=True, env=env)
    assert created.returncode == 0, created.stderr
    key = yaml.safe_load(created.stdout)["key"]
    process, url = serve(config, env)
    try:
        await wait_ready(url, process)
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=10) as http:
            query = {"query": "{ facilities { totalCount } }"}
            assert (await http.post(f"{url}/graphql", json=query)).status_code == 200
            assert (await http.get(f"{url}/readyz")).json()["status"] == "ready"

            own_redis.stop()
            statuses = [(await http.post(f"{url}/graphql", json=query)).status_code for _ in range(10)]
            ready = await http.get(f"{url}/readyz")
            if policy == "open":
                # A local limiter takes over; the client seen before the outage is still recognised.
                assert statuses == [200] * 10
                assert ready.status_code == 200 and ready.json()["status"] == "degraded"
                assert ready.json()["quotas"] == "local-fallback" and ready.json()["store"] == "unreachable"
            else:
                assert set(statuses) == {503}
                refused = await http.post(f"{url}/graphql", json=query)
                assert refused.json()["errors"][0]["extensions"]["code"] == "GATEWAY_UNAVAILABLE"
                assert refused.headers["retry-after"]
                assert ready.status_code == 503 and ready.json()["quotas"] == "unavailable"
            unknown = await http.post(f"{url}/graphql", json=query,
                                      headers={"authorization": "Bearer pk_test_aaaaaaaaaaaa_" + "B" * 40})
            assert unknown.status_code == 503  # nobody new is let in while the store is unreachable

            own_redis.start()
            deadline = time.monotonic() + 15
            while (await http.get(f"{url}/readyz")).json()["status"] != "ready":
                assert time.monotonic() < deadline, "the gateway did not recover without a restart"
                await asyncio.sleep(0.25)
            after = await http.post(f"{url}/graphql", json=query)
            assert after.status_code == 200, after.text
            for _ in range(5):  # served from Redis again, not from the stale cache
                await asyncio.sleep(0.2)
                assert (await http.post(f"{url}/graphql", json=query)).status_code == 200
            assert (await http.get(f"{url}/readyz")).json()["quotas"] == "redis"
    finally:
        process.terminate()
        process.wait(timeout=10)
        stderr = process.stderr.read() if process.stderr else ""
        assert "Traceback" not in stderr, stderr
