"""Benchmark: what noting each request for the admin console costs the metering path, as a ratio.

    .venv/bin/python bench/usage_log_bench.py [--rounds 40] [--per-round 2000] [--clients 50]

The request path meters every request: `Meter.admit` (1 request + the estimate) and `Meter.settle`
(refund estimate − actual). Since issue 16 the meter also notes both in the usage log
(gateway/usage_log.py: a dict update, no I/O) for `usageHistory` and `throttleEvents`. Two meters
over the same in-memory `QuotaEnforcer` differ only in that:

  baseline   `Meter` whose usage log notes nothing (`SilentLog` below: the path as it was)
  usage log  `Meter` with the gateway's own `UsageLog()` (what `store.backend: memory` builds; with
             Redis the request path is the same, the writes happen every 2 s off the path)

Admit + settle cycles for `--clients` clients in turn, on a plan no run exhausts, variants
alternating in rounds so that the machine's load falls on both alike. Prints µs per cycle for each
and THE figure: usage-log / baseline time per cycle (1.00 = free).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time

from gateway.auth.authenticate import Principal
from gateway.metering import Meter
from gateway.quotas import Plan, QuotaEnforcer
from gateway.usage_log import UsageLog


class SilentLog(UsageLog):
    """The baseline: the meter as it was before it noted anything."""

    def note(self, client_id: str, *, requests: int, cost: int) -> None:
        pass

    def throttled(self, client_id: str, refused_by: str, retry_after_s: int) -> None:
        pass


async def cycles(meter: Meter, principals: list[Principal], count: int) -> float:
    """Seconds for `count` admit + settle cycles, the clients in turn."""
    started = time.perf_counter()
    for i in range(count):
        charge = await meter.admit_cost(principals[i % len(principals)], 40)
        await meter.settle(charge, 12)
    return time.perf_counter() - started


async def main(rounds: int, per_round: int, clients: int) -> None:
    plan = Plan(name="bench", requests=10**9, cost=10**12, window_s=60, max_query_cost=10_000, max_subscriptions=10)
    plans = {"bench": plan, "standard": plan}
    principals = [Principal(f"cl_{i:04d}", f"c{i}", frozenset(), None, "key", "bench") for i in range(clients)]
    meters = {"baseline": Meter(QuotaEnforcer(), plans, SilentLog()), "usage log": Meter(QuotaEnforcer(), plans, UsageLog())}
    for meter in meters.values():
        await cycles(meter, principals, per_round)  # warm up
    times: dict[str, list[float]] = {name: [] for name in meters}
    gc.disable()
    try:
        for r in range(rounds):
            order = list(meters) if r % 2 == 0 else list(reversed(meters))
            for name in order:
                times[name].append(await cycles(meters[name], principals, per_round) / per_round)
    finally:
        gc.enable()
    base, noted = statistics.median(times["baseline"]), statistics.median(times["usage log"])
    for name, series in times.items():
        print(f"{name:10s} median {statistics.median(series) * 1e6:7.2f} µs/cycle  (min {min(series) * 1e6:.2f})")
    print(f"ratio usage-log / baseline: {noted / base:.3f}   (+{(noted - base) * 1e9:.0f} ns per request)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--per-round", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.per_round, args.clients))
