"""Benchmark: what a hostile document costs the gateway, as ratios against a plain one.

    .venv/bin/python bench/document_bench.py [--requests 200] [--warmup 20] [--runs 3]

The sandbox is served on loopback in this process (`_replay.live_sandbox`) and driven over real
HTTP (aiohttp, keep-alive) one request at a time, as a bench client with a quota no run can
exhaust. Every request carries a document the gateway has not seen (a counter in a comment), so
parsing, the shape bound, validation and the cost walk run every time, as they would for an
attacker who varies the document; the baseline is `{ __typename }` sent the same way.

Targets (issue 11, "one small document stalls the whole process"):
- `doubling-40`: the reported shape, 40 fragments each spreading the next twice (1.9 KB). Spread
  twice in one selection set, a fragment is expanded once, as execution does: it runs (cost 3).
  Before the fix its 20-level form took 11.8 s in the response cache's lifetime walk;
- `aliased-20`: each fragment spreads the next under two response keys: 2^20 selections once
  expanded; refused (QUERY_TOO_COMPLEX) when the walk passes `limits.max_selections`;
- `repeated-800`: one field 800 times, which validation compares pairwise (0.8 s before);
  refused when the pairs pass `document_shape.MAX_OVERLAPS`;
- `introspection`: the standard GraphiQL introspection query (runs).

Prints, per run, each target's median latency in ms and its ratio to the baseline's median in
the same run; then min / median / max of those over the runs, with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from graphql import get_introspection_query

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _replay import create_bench_client, live_sandbox  # noqa: E402
from facilities_bench import code_under_test, load_average  # noqa: E402


def fragments(levels: int, body: str) -> str:
    return "\n".join(["query { facilities(first: 1) { edges { node { ...F0 } } } }",
                      *(f"fragment F{i} on Facility {{ {body.format(next=i + 1)} }}" for i in range(levels)),
                      f"fragment F{levels} on Facility {{ name }}"])


TARGETS: dict[str, tuple[str, str | None]] = {  # name -> (document, the error code expected or None)
    "__typename": ("{ __typename }", None),
    "doubling-40": (fragments(40, "id ...F{next} ...F{next}"), None),
    "aliased-20": (fragments(20, "id a: levels {{ ...F{next} }} b: levels {{ ...F{next} }}"), "QUERY_TOO_COMPLEX"),
    "repeated-800": ("{" + " facilities { totalCount }" * 800 + "}", "QUERY_TOO_COMPLEX"),
    "introspection": (get_introspection_query(), None),
}


async def main(args: argparse.Namespace) -> int:
    print(f"code under test: {code_under_test()}")
    async with live_sandbox() as (_app, sandbox), aiohttp.ClientSession() as http:
        base = sandbox.base_url

        async def post_json(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            async with http.post(f"{base}/graphql", data=body, headers=headers) as response:
                return response.status, await response.read()

        client = await create_bench_client(post_json, sandbox.clients["admin"]["key"], "bench-documents",
                                           ["facilities:read"])
        headers = {"content-type": "application/json", "accept": "application/json",
                   "authorization": f"Bearer {client['key']}"}
        counter = 0

        async def send(name: str) -> float:
            nonlocal counter
            counter += 1
            document, expected = TARGETS[name]
            body = orjson.dumps({"query": f"{document}\n# {counter}"})
            started = time.perf_counter()
            status, content = await post_json(body, headers)
            elapsed = (time.perf_counter() - started) * 1000
            answer = orjson.loads(content)
            code = answer["errors"][0]["extensions"]["code"] if "errors" in answer else None
            if status != 200 or code != expected:
                raise RuntimeError(f"{name}: answered {status} {code}, expected {expected}: {content[:200]!r}")
            return elapsed

        names = list(TARGETS)
        medians: dict[str, list[float]] = {name: [] for name in names}
        for run in range(args.runs):
            samples: dict[str, list[float]] = {name: [] for name in names}
            for i in range(args.warmup + args.requests):
                shift = i % len(names)
                for name in names[shift:] + names[:shift]:  # interleaved, order rotating: drift hits all alike
                    elapsed = await send(name)
                    if i >= args.warmup:
                        samples[name].append(elapsed)
            base_median = statistics.median(samples["__typename"])
            print(f"run {run + 1} (load average {load_average()}):")
            for name in names:
                median = statistics.median(samples[name])
                medians[name].append(median)
                print(f"  {name:14} median {median:7.2f} ms  max {max(samples[name]):7.2f} ms  "
                      f"{median / base_median:6.2f}x __typename")
        print(f"over {args.runs} runs, median latency min / median / max (load average {load_average()}):")
        for name in names:
            ratios = [m / b for m, b in zip(medians[name], medians["__typename"], strict=True)]
            print(f"  {name:14} {min(medians[name]):7.2f} / {statistics.median(medians[name]):7.2f} / "
                  f"{max(medians[name]):7.2f} ms   {min(ratios):5.2f} / {statistics.median(ratios):5.2f} / "
                  f"{max(ratios):5.2f}x __typename")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="measured requests per target per run")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per target before each run")
    parser.add_argument("--runs", type=int, default=3)
    sys.exit(asyncio.run(main(parser.parse_args())))
