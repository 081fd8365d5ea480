"""Two gateway processes on a Redis behind Sentinel, whose master fails over while requests flow.

Queries go to both replicas and signed vendor webhooks to the first, as a vendor sends them (one
answered 503 is sent again, as vendors do); a subscriber on the second replica watches the entries.
In the middle the Sentinels promote the replica (SENTINEL FAILOVER). Nothing may answer a 5xx other
than 503 GATEWAY_UNAVAILABLE, every webhook the gateway accepted reaches the subscriber on the other
replica, and once the new master is in use one quota holds across both replicas again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.bed import Bed
from tests.support.processes import OwnSentinel, deployment_config, start_gateway, wait_ready
from tests.support.streams import open_stream
from tests.support.vendors import apds_entry
from tests.support.waiting import wait_until

VEHICLES_AT_HBF = 'subscription { vehicleEvents(facilityId: "berlin-hbf") { plate } }'
#: traffic before the failover starts, and after the new master took over
BEFORE_S, AFTER_S = 1.0, 2.0


def cli(config: Path, env: dict[str, str], *args: str) -> Any:
    result = subprocess.run([sys.executable, "-m", "gateway", *args, "--config", str(config)],
                            check=False, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


async def test_a_sentinel_failover_mid_traffic_loses_no_accepted_event_and_answers_no_500(
        bed: Bed, own_sentinel: OwnSentinel, tmp_path: Path) -> None:
    config, env = deployment_config(bed, own_sentinel.url, tmp_path)
    processes = [start_gateway(config, env) for _ in range(2)]
    try:
        for process, url in processes:
            await wait_ready(url, process)
        one, two = (url for _, url in processes)
        watcher = cli(config, env, "clients", "create", "--name", "gate-watch", "--scope", "enforcement:read",
                      "--scope", "pii:read", "--facility", "berlin-hbf")["key"]
        reader = cli(config, env, "clients", "create", "--name", "reader", "--scope", "facilities:read")["key"]
        cli(config, env, "clients", "update", "reader", "--override", "requests=100000")
        await asyncio.sleep(0.6)  # the replicas' client cache

        statuses: Counter[tuple[str, int]] = Counter()
        accepted: set[str] = set()
        seen: set[str] = set()
        plates = (f"B-FO {n}" for n in itertools.count())

        async with open_stream(two, "graphql-transport-ws", watcher, VEHICLES_AT_HBF) as stream, \
                httpx.AsyncClient(timeout=10) as http:
            async def watch() -> None:
                while True:
                    seen.add((await stream.data(timeout=60))["data"]["vehicleEvents"]["plate"])

            async def vendor(stop: asyncio.Event) -> None:
                """Entries at berlin-hbf, one after another; one refused with 503 is sent again."""
                while not stop.is_set():
                    plate = next(plates)
                    while True:
                        path, raw, headers = apds_entry(bed, plate)
                        status = (await http.post(f"{one}{path}", content=raw, headers=headers)).status_code
                        statuses["webhook", status] += 1
                        if status != 503:
                            break
                        await asyncio.sleep(0.1)
                    if status == 202:
                        accepted.add(plate)
                    await asyncio.sleep(0.02)

            async def queries(url: str, stop: asyncio.Event) -> None:
                while not stop.is_set():
                    response = await http.post(f"{url}/graphql", json={"query": "{ facilities { totalCount } }"},
                                               headers={"authorization": f"Bearer {reader}"})
                    statuses["query", response.status_code] += 1
                    await asyncio.sleep(0.01)

            watching = asyncio.create_task(watch())
            stop = asyncio.Event()
            traffic = [asyncio.create_task(vendor(stop)), *(asyncio.create_task(queries(u, stop)) for u in (one, two))]
            try:
                await asyncio.sleep(BEFORE_S)
                started = time.monotonic()
                old, new = await asyncio.to_thread(own_sentinel.failover)
                switched_s = time.monotonic() - started
                await asyncio.sleep(AFTER_S)
                stop.set()
                await asyncio.gather(*traffic)
                await wait_until(lambda: accepted <= seen, timeout_s=10, every_s=0.1,
                                 message=f"events accepted during the failover never reached the other replica: "
                                         f"{sorted(accepted - seen)} of {len(accepted)}; {dict(statuses)}")
            finally:
                stop.set()
                for task in [*traffic, watching]:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*traffic, watching, return_exceptions=True)

        print(f"\nfailover {old} -> {new} in {switched_s:.1f} s; answers: {dict(statuses)}; "
              f"webhooks accepted {len(accepted)}, seen on the other replica {len(accepted & seen)}")
        bad = {key: n for key, n in statuses.items() if key[1] >= 500 and key[1] != 503}
        assert not bad, f"answers other than 503 while the master failed over: {dict(statuses)}"
        assert statuses["query", 200] > 0 and len(accepted) > 10, dict(statuses)

        # One quota across both replicas, on the new master (each replica back on Redis, not limiting locally).
        async def on_redis() -> bool:
            answers = [(await http_get(f"{url}/readyz")) for url in (one, two)]
            return all(a.get("quotas") == "redis" for a in answers)

        await wait_until(on_redis, timeout_s=15, every_s=0.2, message="the quotas did not return to Redis")
        hammer = cli(config, env, "clients", "create", "--name", "hammer", "--scope", "facilities:read")["key"]
        cli(config, env, "clients", "update", "hammer", "--override", "requests=20")
        await asyncio.sleep(0.6)
        async with httpx.AsyncClient(timeout=10, headers={"authorization": f"Bearer {hammer}"}) as http:
            hammered = await asyncio.gather(*(http.post(f"{url}/graphql", json={"query": "{ facilities { totalCount } }"})
                                              for url in (one, two) for _ in range(30)))
        codes = Counter(r.status_code for r in hammered)
        assert codes == {200: 20, 429: 40}, codes
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.wait(timeout=10)


async def http_get(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(url)
    return response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
