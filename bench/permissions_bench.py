"""Benchmark: what permissions cost on the facilities list query, as a ratio against permissions off.

    .venv/bin/python bench/permissions_bench.py [--duration 10] [--rounds 10] [--warmup 1]
                                                [--tenant-duration 3] [--no-tenant] [--breakdown]
                                                [--client driver-app] [--profile on|off|tenant] [--metering]

Permissions = authentication of an API key at the edge (a `Principal`, once per request) +
the field-scope checks `enforce_scopes` installs on guarded fields + tenancy (the facilities a
client may see) + coded FORBIDDEN errors where a scope is missing. The vendors are taken out:
their answers are captured once from the sandbox and replayed from memory (bench/_replay.py),
so what is left is the gateway's own work, where the permissions' share is largest.

Two in-process gateways (`create_app`) over the same runtime and the same replayed vendor data:

  on    auth.enabled: true, `build_schema(enforce=True)`; the request carries a demo client's
        API key (`driver-app`: it may read the whole query on every facility)
  off   auth.enabled: false (every request is UNRESTRICTED), `build_schema(enforce=False)`
        (no checks installed at all); the request carries the same header, which it ignores

Quotas are not permissions: metering is taken out of every variant (bench/_replay.py
`unmetered`; "off" is never metered anyway: authentication off means no plan), unless
--metering. The requests authenticate as clients the bench makes through the admin API with
the demo clients' scopes and facilities and a quota no run can exhaust (`create_bench_client`).

Each is driven through its ASGI app directly (a prepared scope, no sockets), one request at a
time, alternating on/off in ABBA order over --rounds rounds. THE ratio printed is off/on
throughput: "permission overhead = 1.0Nx (aim <= 1.15)". See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from _replay import (  # noqa: E402
    AsgiPost,
    ReplaySystems,
    Variant,
    asgi_post_json,
    create_bench_client,
    live_sandbox,
    recording,
    replay_runtime,
    run_for,
    spread,
    unmetered,
)
from facilities_bench import code_under_test, load_average  # noqa: E402

#: a dashboard's list of every facility, with the guarded fields (occupancy, rates, levels' occupancy)
QUERY = """\
query Facilities {
  facilities(first: 100) {
    totalCount
    edges {
      node {
        id
        name
        city
        timeZone
        capacity
        occupancy {
          free
          occupied
          percentOccupied
          status
          freshness
          served
          counted { occupied }
          sensed { occupied }
        }
        rates { currency lines { kind amount { amount currency } } }
        levels { id name capacity occupancy { free occupied percentOccupied status } }
        sources { id status }
      }
    }
  }
}
"""
BODY = orjson.dumps({"query": QUERY, "operationName": "Facilities"})
HEADERS = {"content-type": "application/json", "accept": "application/json"}
#: the scopes the query needs
QUERY_SCOPES = {"facilities:read", "occupancy:read", "rates:read"}
#: the full-access demo client by default: every facility, the query's scopes (the bench runs as a
#: client of its own with these scopes and facilities, and a quota the run cannot exhaust)
FULL_CLIENT = "driver-app"
#: the tenant-limited demo client: one facility, and no rates:read (so `rates` is FORBIDDEN)
TENANT_CLIENT = "hotel-pms-spree"


# --- what is measured ----------------------------------------------------------------------------


# --- the two gateways ----------------------------------------------------------------------------


def guarded_coordinates(schema: Any) -> set[str]:
    """Field coordinates whose resolver is wrapped by gateway.kernel.permissions.guarded."""
    from graphql import GraphQLObjectType

    found = set()
    for type_name, graphql_type in schema._schema.type_map.items():
        if isinstance(graphql_type, GraphQLObjectType) and not type_name.startswith("__"):
            for name, graphql_field in graphql_type.fields.items():
                # functools.wraps copies the resolver's __qualname__; the code object keeps the wrapper's.
                # The check may itself be wrapped (an async resolver started eagerly): follow __wrapped__.
                resolve = graphql_field.resolve
                while resolve is not None:
                    if getattr(getattr(resolve, "__code__", None), "co_qualname", "").startswith("guarded."):
                        found.add(f"{type_name}.{name}")
                        break
                    resolve = getattr(resolve, "__wrapped__", None)
    return found


@dataclass
class Setup:
    apps: dict[str, Any]
    keys: dict[str, str]  # demo client name -> API key of the bench client standing in for it
    client: str  # the full-access demo client whose scopes the "on" variant authenticates with
    stand_ins: dict[str, str]  # demo client name -> name of the bench client with its scopes
    facilities: list[str]
    tenant_facility: str
    required: dict[str, frozenset[str]]


async def stand_in_clients(sandbox_app: Any, clients: dict[str, dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """For each demo client named, a client of the bench's own with its scopes and facilities and a
    quota no run can exhaust, made through the admin GraphQL API as the sandbox's `admin`. A
    checkout without quotas (or without that API) gets the demo clients themselves."""
    found = {}
    for name in names:
        info = clients[name]
        try:
            made = await create_bench_client(asgi_post_json(sandbox_app), clients["admin"]["key"], f"bench-{name}",
                                             list(info["scopes"]), info["facilities"])
        except (KeyError, RuntimeError) as exc:
            print(f"note: no bench client for {name!r} ({str(exc)[:200]}); using the demo client itself")
            found[name] = {**info, "name": name}
            continue
        if sorted(made["scopes"]) != sorted(info["scopes"]) or made["facilities"] != (
                None if info["facilities"] is None else sorted(info["facilities"])):
            raise RuntimeError(f"the bench client for {name} does not have its scopes and facilities: {made}")
        found[name] = made
    return found


async def build_gateways(breakdown: bool, client: str = FULL_CLIENT, metering: bool = False) -> Setup:
    """Capture vendor answers from the live sandbox, then build the gateways over their replay."""
    from gateway.app import create_app
    from gateway.directory import Directory
    from resolvers.schema import build_schema

    async with live_sandbox() as (sandbox_app, sandbox):
        clients = sandbox.clients
        info = clients.get(client)
        if info is None or info["facilities"] is not None or not QUERY_SCOPES <= set(info["scopes"]):
            fitting = [name for name, c in clients.items() if c["facilities"] is None and QUERY_SCOPES <= set(c["scopes"])]
            raise RuntimeError(f"the demo client {client!r} may not read the whole query on every facility; "
                               f"these may: {', '.join(fitting)}")
        stand_ins = await stand_in_clients(sandbox_app, clients, [client, TENANT_CLIENT])
        capture = AsgiPost(sandbox_app, BODY, {**HEADERS, "authorization": f"Bearer {stand_ins[client]['key']}"})
        with recording(sandbox.runtime.systems) as batches:
            for _ in range(2):  # the first answer has every source UNKNOWN (no vendor called yet)
                status, body = await capture()
                answer = orjson.loads(body)
                if status != 200 or answer.get("errors"):
                    raise RuntimeError(f"capturing from the sandbox failed ({status}): {body[:1000]!r}")
        live = sandbox.runtime
        replay = ReplaySystems(live.systems, batches)

    on_schema, required = build_schema(enforce=True)
    off_schema, _ = build_schema(enforce=False)
    if guarded_coordinates(on_schema) != set(required) or guarded_coordinates(off_schema):
        raise RuntimeError(f"schema guards are not as expected: on {sorted(guarded_coordinates(on_schema))}, "
                           f"off {sorted(guarded_coordinates(off_schema))}")

    config = live.config
    off_config = config.model_copy(update={"auth": config.auth.model_copy(update={"enabled": False})})
    # no cache (`replay_runtime`): every request executes; response-cache hits are cache_bench.py's
    on_runtime = replay_runtime(live, replay)
    off_runtime = replay_runtime(live, replay, config=off_config)
    tenant_facilities = clients[TENANT_CLIENT]["facilities"]
    assert tenant_facilities is not None and len(tenant_facilities) == 1, clients[TENANT_CLIENT]
    tenant_facility = tenant_facilities[0]
    # "off" for the tenant: the same one facility, by configuration instead of by tenancy.
    one_config = off_config.model_copy(update={"facilities": {tenant_facility: config.facilities[tenant_facility]}})
    one_runtime = replay_runtime(live, replay, config=one_config, directory=Directory(one_config))

    apps = {
        "on": create_app(on_runtime, on_schema),
        "off": create_app(off_runtime, off_schema),
        "off-one": create_app(one_runtime, off_schema),
    }
    if breakdown:
        apps["auth-only"] = create_app(on_runtime, off_schema)
        apps["checks-only"] = create_app(off_runtime, on_schema)
    if not metering:
        for app in apps.values():
            unmetered(app)
    keys = {name: info["key"] for name, info in stand_ins.items()}
    facilities = [edge["node"]["id"] for edge in answer["data"]["facilities"]["edges"]]
    return Setup(apps, keys, client, {name: info["name"] for name, info in stand_ins.items()}, facilities,
                 tenant_facility, required)


# --- checks before timing ------------------------------------------------------------------------


async def answer_of(post: AsgiPost) -> dict[str, Any]:
    status, body = await post()
    if status != 200:
        raise RuntimeError(f"answered {status}: {body[:500]!r}")
    return orjson.loads(body)


def without(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        return {k: without(v, key) for k, v in data.items() if k != key}
    if isinstance(data, list):
        return [without(v, key) for v in data]
    return data


async def check_same_work(variants: dict[str, Variant], setup: Setup) -> list[str]:
    """Refuse to time anything that does not do the work it claims; return lines describing it."""
    notes = []
    on, off = await answer_of(variants["on"].post), await answer_of(variants["off"].post)
    for name, answer in (("on", on), ("off", off)):
        if answer.get("errors") or not answer.get("data"):
            raise RuntimeError(f"the {name} gateway answered with errors: {orjson.dumps(answer.get('errors'))[:1000]!r}")
    if on["data"] != off["data"]:
        raise RuntimeError("the on and off gateways answer different data: they would not do the same work")
    edges = on["data"]["facilities"]["edges"]
    levels = sum(len(edge["node"]["levels"]) for edge in edges)
    if len(edges) != len(setup.facilities):
        raise RuntimeError(f"{setup.stand_ins[setup.client]} sees {len(edges)} facilities of {len(setup.facilities)}")
    notes.append(f"on ({setup.stand_ins[setup.client]}) and off answer identical data: {len(edges)} facilities, {levels} levels, "
                 f"no errors, {len(orjson.dumps(on))} bytes")
    guards = {"Query.facilities": 1, "Facility.occupancy": len(edges), "Facility.rates": len(edges), "Level.occupancy": levels}
    unknown = set(guards) - set(setup.required)
    if unknown:
        raise RuntimeError(f"fields assumed guarded are not: {sorted(unknown)}")
    notes.append(f"guarded fields resolved per request: {sum(guards.values())} "
                 f"({', '.join(f'{c} x{n}' for c, n in guards.items())})")

    for name in ("auth-only", "checks-only"):
        if name in variants:
            other = await answer_of(variants[name].post)
            if other.get("errors") or other.get("data") != on["data"]:
                raise RuntimeError(f"the {name} gateway does not answer as the on gateway does")

    if "tenant-on" in variants:
        tenant, one = await answer_of(variants["tenant-on"].post), await answer_of(variants["tenant-off"].post)
        t_edges = tenant["data"]["facilities"]["edges"]
        if [e["node"]["id"] for e in t_edges] != [setup.tenant_facility] or tenant["data"]["facilities"]["totalCount"] != 1:
            raise RuntimeError(f"{TENANT_CLIENT} should see only {setup.tenant_facility}: {[e['node']['id'] for e in t_edges]}")
        errors = tenant.get("errors") or []
        forbidden = [e for e in errors if e.get("extensions", {}).get("code") == "FORBIDDEN"]
        expected_path = ["facilities", "edges", 0, "node", "rates"]
        if len(errors) != 1 or len(forbidden) != 1 or forbidden[0].get("path") != expected_path:
            raise RuntimeError(f"{TENANT_CLIENT} should get one FORBIDDEN error at rates: {errors}")
        if t_edges[0]["node"]["rates"] is not None:
            raise RuntimeError(f"{TENANT_CLIENT} got rates without rates:read")
        if one.get("errors") or without(one["data"], "rates") != without(tenant["data"], "rates"):
            raise RuntimeError("the one-facility off gateway does not answer as the tenant does (apart from rates)")
        if one["data"]["facilities"]["edges"][0]["node"]["rates"] is None:
            raise RuntimeError("the one-facility off gateway answers no rates")
        notes.append(f"tenant {setup.stand_ins[TENANT_CLIENT]} (as {TENANT_CLIENT}): 1 facility ({setup.tenant_facility}), rates null with "
                     f"FORBIDDEN ({forbidden[0]['extensions'].get('missingScopes')} missing); its off baseline "
                     f"answers the same facility with rates")
    return notes


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="measured seconds for each of on and off, split over the rounds (default 10)")
    parser.add_argument("--rounds", type=int, default=100,
                        help="alternating rounds, ABBA order; short ones cancel a shared machine's drift (default 100)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per variant first (default 1)")
    parser.add_argument("--tenant-duration", type=float, default=3.0,
                        help=f"measured seconds for each tenant variant ({TENANT_CLIENT}), over the same rounds (default 3)")
    parser.add_argument("--client", default=FULL_CLIENT,
                        help=f"the sandbox demo client whose scopes the on variant has (the bench makes a client of "
                             f"its own with them); it must read the whole query on every facility (default {FULL_CLIENT})")
    parser.add_argument("--metering", action="store_true",
                        help="keep quota metering (in memory) on the authenticated variants; by default it is taken "
                             "out of every variant, as permissions off is never metered")
    parser.add_argument("--no-tenant", action="store_true", help="skip the tenant-limited variant and its baseline")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time auth only (auth on, unguarded schema) and checks only (auth off, guarded "
                             "schema), --tenant-duration each")
    parser.add_argument("--profile", choices=("on", "off", "tenant"),
                        help="instead of timing, profile this variant with cProfile for --duration s and print the top")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.tenant_duration <= 0:
        parser.error("durations must be positive, --rounds at least 1")
    return args


async def profile(variant: Variant, seconds: float) -> None:
    import cProfile
    import pstats

    await run_for(variant, 1.0, record=False)
    profiler = cProfile.Profile()
    profiler.enable()
    await run_for(variant, seconds)
    profiler.disable()
    requests = variant.ops
    print(f"profile of {variant.name}: {requests} requests, {variant.ms_per_op:.3f} ms/op under the profiler")
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(25)
    # The permission path on its own: every function of the files that implement it, per request.
    # tottime is the function's own time; cumtime includes what it calls (for a guard, creating
    # the wrapped resolver's coroutine, which runs later and is not the guard's cost).
    permission_files = ("gateway/kernel/permissions.py", "gateway/auth/", "gateway/kernel/pii.py", "gateway/errors.py")
    rows = []
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        if any(part in filename for part in permission_files) or (filename.endswith("gateway/kernel/context.py") and name == "visible_entries") \
                or (filename.endswith("gateway/graphql_http.py") and name == "authenticate"):
            rows.append((tottime, f"{filename.split('/work/main/')[-1]}:{line}({name})", ncalls, cumtime))
    total_own = sum(r[0] for r in rows)
    print(f"permission path, per request (own time {1e6 * total_own / requests:.1f} us of {1000 * variant.ms_per_op:.0f} us "
          f"= {100 * total_own / variant.wall_s:.2f}% under the profiler):")
    for tottime, where, ncalls, cumtime in sorted(rows, reverse=True):
        print(f"  {where:<62} calls {ncalls / requests:5.1f}  own {1e6 * tottime / requests:7.1f} us  "
              f"cumulative {1e6 * cumtime / requests:7.1f} us")


async def bench(args: argparse.Namespace) -> int:
    print(f"code under test: {code_under_test()}")
    setup = await build_gateways(args.breakdown, args.client, args.metering)
    full = {**HEADERS, "authorization": f"Bearer {setup.keys[setup.client]}"}
    tenant = {**HEADERS, "authorization": f"Bearer {setup.keys[TENANT_CLIENT]}"}
    variants = {
        "on": Variant("on", f"permissions on  (API key of {setup.stand_ins[setup.client]!r}, guarded schema)",
                      AsgiPost(setup.apps["on"], BODY, full), False),
        "off": Variant("off", "permissions off (auth.enabled false, enforce=False)", AsgiPost(setup.apps["off"], BODY, full), False),
    }
    if not args.no_tenant:
        variants["tenant-on"] = Variant("tenant-on", f"tenant on   ({setup.stand_ins[TENANT_CLIENT]!r}: 1 facility, rates FORBIDDEN)",
                                        AsgiPost(setup.apps["on"], BODY, tenant), True)
        variants["tenant-off"] = Variant("tenant-off", "tenant off  (that 1 facility by config, permissions off)",
                                         AsgiPost(setup.apps["off-one"], BODY, tenant), False)
    if args.breakdown:
        variants["auth-only"] = Variant("auth-only", "auth only   (API key + tenancy, unguarded schema)",
                                        AsgiPost(setup.apps["auth-only"], BODY, full), False)
        variants["checks-only"] = Variant("checks-only", "checks only (auth off, guarded schema)",
                                          AsgiPost(setup.apps["checks-only"], BODY, full), False)
    for note in await check_same_work(variants, setup):
        print(note)

    if args.profile:
        await profile(variants[{"tenant": "tenant-on"}.get(args.profile, args.profile)], args.duration)
        return 0

    pairs = [("on", "off", args.duration)]
    if "tenant-on" in variants:
        pairs.append(("tenant-on", "tenant-off", args.tenant_duration))
    if args.breakdown:
        pairs.append(("auth-only", "checks-only", args.tenant_duration))
    print("metering (quotas): " + ("on for the authenticated variants (in memory; bench clients' quotas cannot run out), "
                                   "never for permissions off" if args.metering else
                                   "taken out of every variant (UnmeteredMeter; permissions off is never metered)"))
    print(f"in-process ASGI (prepared scope, no sockets), one request at a time; warm-up {args.warmup:g} s per variant, "
          f"then {args.rounds} rounds in ABBA order: {args.duration:g} s each for on and off"
          + (f", {args.tenant_duration:g} s for each other variant" if len(pairs) > 1 else "")
          + f"; load average {load_average()}")
    for variant in variants.values():
        await run_for(variant, args.warmup, record=False)
    # Everything built so far (schemas, apps, captured data) is long-lived: keep it out of the
    # collector's full passes, so those cost what the requests' garbage costs, nothing more.
    gc.collect()
    gc.freeze()
    for round_index in range(args.rounds):
        for first, second, seconds in pairs:
            order = (first, second) if round_index % 2 == 0 else (second, first)
            for name in order:
                await run_for(variants[name], seconds / args.rounds)

    def line(v: Variant) -> str:
        return f"  {v.label:<68} {v.ms_per_op:7.3f} ms/op {v.ops_per_s:8.1f} op/s  ({v.ops} requests, CPU {v.cpu_percent:.0f}%)"

    on, off = variants["on"], variants["off"]
    print(line(off))
    print(line(on))
    overhead = off.ops_per_s / on.ops_per_s
    print(f"  permission overhead = {overhead:.2f}x (aim <= 1.15)   "
          f"[off/on throughput; {1000 * (on.ms_per_op - off.ms_per_op):+.0f} us per request; {spread(off, on)}]")
    if "tenant-on" in variants:
        t_on, t_off = variants["tenant-on"], variants["tenant-off"]
        print(line(t_off))
        print(line(t_on))
        print(f"  tenant overhead = {t_off.ops_per_s / t_on.ops_per_s:.2f}x   [off/on throughput; "
              f"{1000 * (t_on.ms_per_op - t_off.ms_per_op):+.0f} us per request: authentication, tenancy and a FORBIDDEN "
              f"error in place of resolving rates; {spread(t_off, t_on)}]")
    if args.breakdown:
        auth, checks = variants["auth-only"], variants["checks-only"]
        print(line(auth))
        print(line(checks))
        print(f"  vs off: auth only {off.ops_per_s / auth.ops_per_s:.2f}x ({1000 * (auth.ms_per_op - off.ms_per_op):+.0f} us), "
              f"checks only {off.ops_per_s / checks.ops_per_s:.2f}x ({1000 * (checks.ms_per_op - off.ms_per_op):+.0f} us)")
    failed = [v.name for v in variants.values() if v.failures]
    if failed:
        print(f"  WARNING: unexpected answers during timing ({', '.join(f'{n} {variants[n].failures}' for n in failed)}); "
              f"the figures are not comparable", file=sys.stderr)
        for name in failed:
            print(f"    first unexpected answer of {name}: {variants[name].first_failure}", file=sys.stderr)
        if any(variants[name].first_failure.startswith("429") for name in failed):
            print("    429: the bench's client ran out of quota; its stand-in clients should have a quota no run can "
                  "exhaust (bench/_replay.py BENCH_QUOTA)", file=sys.stderr)
        return 1
    busy = [v.name for v in variants.values() if v.cpu_percent < 90]
    if busy:
        print(f"  note: {', '.join(busy)} below 90% CPU: the machine was busy with other work "
              f"(load average {load_average()}); the ratios are noisier than usual")
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
