"""Benchmark: the enforcement handheld's plate check (`plateStatus`), as ratios against baselines.

    .venv/bin/python bench/plate_check_bench.py [--requests 2000] [--warmup 200] [--concurrency 16] [--seconds 5]

The sandbox (gateway + simulated vendors) is served on loopback by `_replay.live_sandbox`, in this
process and event loop, and driven over real HTTP (aiohttp, keep-alive) as a bench client with a
quota no run can exhaust (`_replay.create_bench_client`; scopes enforcement:read, facilities:read,
pii:read; the enforcement-handheld's facilities). Three plates at berlin-hbf are set up through the
sandbox's back office: one with an active permit (PERMITTED), one with an open session entered two
hours ago and not paid (UNPAID), one the PARCS never saw (UNKNOWN). Each plate check makes 4 vendor
HTTP calls to the PARCS (permits, reservations, validations, sessions; checked before timing).

1. Latency, one request at a time: after --warmup requests per target, --requests per target,
   targets interleaved (one of each in turn, order rotating) so drift hits all alike:
     plateStatus for each plate; `{ __typename }` (the edge's own cost: auth, quota, parse,
     execute, JSON out); one direct vendor call, GET /sim/parcs-central/apds/v1/rights/assigned?credential_id=...
     (the floor of one hop). p50/p95/p99/max.
2. Throughput: --concurrency workers for --seconds per target (ABBA halves): plate checks/s
   (the three plates in turn) vs `{ __typename }`/s.

Client, gateway and vendors share one process and one core, so absolute figures are pessimistic
and include the load generator; the ratios measured in the same run are the figures to report.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _replay import create_bench_client, live_sandbox  # noqa: E402
from facilities_bench import code_under_test  # noqa: E402

FACILITY = "berlin-hbf"
PLATE_QUERY = """query Plate($plate: String!, $f: ID) {
  plateStatus(plate: $plate, facilityId: $f) {
    plate facilityId verdict checkedAt rights { kind id validFrom validUntil description }
    session { id status } } }"""
TYPENAME = orjson.dumps({"query": "{ __typename }"})
PLATES = {"permit": ("B-PB 1001", "PERMITTED"), "unpaid": ("B-PB 2002", "UNPAID"), "unknown": ("B-PB 3003", "UNKNOWN")}


def plate_body(plate: str) -> bytes:
    return orjson.dumps({"query": PLATE_QUERY, "variables": {"plate": plate, "f": FACILITY}, "operationName": "Plate"})


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def setup_plates(sandbox: Any) -> None:
    from adapters.simulated.back_office import office_of

    office, now = office_of(sandbox.world), datetime.now(UTC)
    office.issue_permit(FACILITY, plate=PLATES["permit"][0], holder_name="Bench Commuter",
                        valid_from=now - timedelta(days=1), valid_until=None, reference="bench-permit-1")
    session, _ = office.vehicle_entered(FACILITY, PLATES["unpaid"][0])
    session.entered_at -= timedelta(hours=2)  # past grace and any free tier: it owes money


async def main(args: argparse.Namespace) -> int:
    print(f"code under test: {code_under_test()}")
    async with live_sandbox() as (_app, sandbox), aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=args.concurrency + 4)) as http:
        base = sandbox.base_url

        async def post_json(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            async with http.post(f"{base}/graphql", data=body, headers=headers) as response:
                return response.status, await response.read()

        client = await create_bench_client(
            post_json, sandbox.clients["admin"]["key"], "bench-plate-check",
            ["enforcement:read", "facilities:read", "pii:read"], sandbox.clients["enforcement-handheld"]["facilities"])
        gql_headers = {"content-type": "application/json", "accept": "application/json",
                       "authorization": f"Bearer {client['key']}"}
        token = sandbox.config.systems["parcs-central"].credentials["token"]
        vendor_headers = {"X-MCC-Access-Token": token, "accept": "application/json"}
        setup_plates(sandbox)

        def graphql(body: bytes) -> Any:
            async def call() -> bytes:
                async with http.post(f"{base}/graphql", data=body, headers=gql_headers) as response:
                    content = await response.read()
                    if response.status != 200 or b'"errors"' in content:
                        raise RuntimeError(f"gateway answered {response.status}: {content[:300]!r}")
                    return content
            return call

        def vendor(plate: str) -> Any:
            url = f"{base}/sim/parcs-central/apds/v1/rights/assigned"  # a plate's assigned rights (permits among them)
            async def call() -> bytes:
                async with http.get(url, params={"credential_type": "licensePlate", "credential_id": plate},
                                    headers=vendor_headers) as response:
                    content = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"vendor answered {response.status}: {content[:300]!r}")
                    return content
            return call

        norm = PLATES["permit"][0].replace(" ", "").replace("-", "")
        targets = {"__typename": graphql(TYPENAME), "vendor hop (permits)": vendor(norm)}
        targets |= {f"plateStatus {kind}": graphql(plate_body(plate)) for kind, (plate, _) in PLATES.items()}

        # Same work as claimed: the verdicts, and 4 PARCS calls per plate check.
        for kind, (plate, verdict) in PLATES.items():
            answer = orjson.loads(await targets[f"plateStatus {kind}"]())["data"]["plateStatus"]
            if answer["verdict"] != verdict:
                print(f"plate {plate}: verdict {answer['verdict']}, expected {verdict}; refusing to measure", file=sys.stderr)
                return 1
        if len(orjson.loads(await targets["vendor hop (permits)"]())["data"]) != 1:
            print("the vendor hop did not return the one permit; refusing to measure", file=sys.stderr)
            return 1
        stats_url = f"{base}/sandbox/systems/parcs-central/stats"
        async with http.get(stats_url) as response:
            before = (await response.json())["total"]
        for _ in range(10):
            await targets["plateStatus unknown"]()
        async with http.get(stats_url) as response:
            per_check = ((await response.json())["total"] - before) / 10
        print(f"plates at {FACILITY}: " + ", ".join(f"{p!r} {v}" for p, v in PLATES.values())
              + f"; PARCS calls per plate check: {per_check:g}")

        # 1. latency, one request at a time, targets interleaved
        names = list(targets)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for i in range(args.warmup + args.requests):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                await targets[name]()
                if i >= args.warmup:
                    samples[name].append((time.perf_counter() - started) * 1000)
        stats = {name: sorted(values) for name, values in samples.items()}
        print(f"latency, sequential ({args.requests} requests per target after {args.warmup} warm-up, interleaved):")
        print(f"  {'target':<24}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for name, ordered in stats.items():
            print(f"  {name:<24}" + "".join(f"{v:9.2f}" for v in (pct(ordered, .5), pct(ordered, .95), pct(ordered, .99), ordered[-1])))

        # 2. throughput, ABBA halves
        async def load(calls: list[Any], seconds: float) -> tuple[int, float]:
            done, deadline = 0, time.perf_counter() + seconds
            async def worker(offset: int) -> None:
                nonlocal done
                n = offset
                while time.perf_counter() < deadline:
                    await calls[n % len(calls)]()
                    n += 1
                    done += 1
            started = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(args.concurrency)))
            return done, time.perf_counter() - started

        plate_calls = [targets[f"plateStatus {kind}"] for kind in PLATES]
        kinds = {"plateStatus": plate_calls, "__typename": [targets["__typename"]]}
        await load(plate_calls + [targets["__typename"]], 1.0)  # warm-up
        totals = {k: [0, 0.0] for k in kinds}
        for name in ("plateStatus", "__typename", "__typename", "plateStatus"):
            done, wall = await load(kinds[name], args.seconds / 2)
            totals[name][0] += done
            totals[name][1] += wall
        rps = {k: n / wall for k, (n, wall) in totals.items()}
        print(f"throughput, {args.concurrency} concurrent clients, {args.seconds:g} s per target (ABBA halves):")
        for k, value in rps.items():
            print(f"  {k:<24}{value:9.1f} req/s  ({totals[k][0]} requests)")

    plate_p50 = [pct(stats[f"plateStatus {k}"], .5) for k in PLATES]
    plate_p95 = [pct(stats[f"plateStatus {k}"], .95) for k in PLATES]
    tn, hop = stats["__typename"], stats["vendor hop (permits)"]
    print("ratios (plateStatus, per plate: " + " / ".join(PLATES) + "):")
    print("  p50 vs __typename p50:   " + " / ".join(f"{v / pct(tn, .5):.1f}x" for v in plate_p50))
    print("  p95 vs __typename p95:   " + " / ".join(f"{v / pct(tn, .95):.1f}x" for v in plate_p95))
    print("  p50 vs one vendor hop:   " + " / ".join(f"{v / pct(hop, .5):.1f}x" for v in plate_p50))
    print(f"  throughput plateStatus/__typename = {rps['plateStatus'] / rps['__typename']:.2f}x")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured sequential requests per target (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured sequential requests per target first (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients for throughput (default 16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load per target for throughput (default 5)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or args.concurrency < 1 or args.seconds <= 0:
        parser.error("--requests, --concurrency and --seconds must be positive")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
