"""A soak: three gateways, one Redis restarted mid-run, a mixed load (issue 14, part 6).

    .venv/bin/python bench/soak_bench.py                         # 200 clients, 60 s, 1,000 garages, one Redis
    .venv/bin/python bench/soak_bench.py --redis cluster         # the same on a 3-master local Redis Cluster
    .venv/bin/python bench/soak_bench.py --clients 50 --duration 20 --facilities 100

What runs, each in a process of its own on loopback (bench/README.md says more):
  redis      a throwaway redis-server with an append-only file in a temporary folder (as an operator
             runs it: a restart keeps the client store), or with --redis cluster three such masters
             (tests/support/processes.py `OwnRedis` / `OwnCluster`)
  vendors    the sandbox's simulated vendors over a generated world of --facilities garages
  gateways   three `parkgate serve --config FILE` on ports of their own, each its own replica id
  client     this process: --clients HTTP clients (raw asyncio streams, one keep-alive connection
             each, spread over the gateways, one request every --interval s, 2 by default), subscribers over
             graphql-transport-ws held open the whole run on every gateway, and APDS webhooks sent
             through the simulators' own `WebhookSender` (it retries as a vendor does)
At --restart-at seconds Redis is stopped, left away --outage seconds and started on the same port.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

from events_bench import apds_webhook
from workers_bench import (
    EXECUTED,
    QUERY,
    Gateway,
    cli,
    cpu_seconds,
    deployment,
    one_exchange,
    start_gateway,
    stop_gateway,
    vendors_main,
)

from adapters.simulated.webhook_sender import WebhookSender
from tests.support.processes import OwnCluster, OwnRedis

GATEWAYS = 3
#: what a bench client may spend: no run exhausts it (quotas still count every request)
OVERRIDES = ("requests=100000000", "cost=1000000000", "max_query_cost=100000", "max_subscriptions=1000")

OCCUPANCY = "query Occupancy($id: ID!) { facility(id: $id) { id occupancy { free occupied status freshness } } }"
PLATE = ("query Plate($plate: String!, $facility: ID!) { plateStatus(plate: $plate, facilityId: $facility) "
         "{ plate verdict checkedAt } }")
RESERVE = ("mutation Reserve($input: CreateReservationInput!, $key: String!) { createReservation(input: $input, "
           "idempotencyKey: $key) { id status price { amount currency } } }")
VALIDATE = ("mutation Validate($input: ValidateParkingInput!, $key: String!) { validateParking(input: $input, "
            "idempotencyKey: $key) { id status } }")
VEHICLES = "subscription Vehicles($f: String!) { vehicleEvents(facilityId: $f) { eventId type plate facilityId } }"
OCCUPANCY_CHANGED = "subscription Occ($f: String!) { occupancyChanged(facilityId: $f) { occupied free } }"

PHASES = {"before": "before the restart", "during": "during it (its start to 2 s after Redis answered)",
          "after": "after it"}
#: operation kind -> share of the HTTP requests
MIX = {"facilities (cached)": 30, "facilities (executed)": 5, "occupancy": 30, "plateStatus": 15,
       "createReservation": 10, "createReservation (retry)": 4, "validateParking": 6}


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} / {five:.2f}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# --- the store ------------------------------------------------------------------------------------

class Store:
    """One persistent redis-server, or a persistent 3-master cluster, that can be restarted in place."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.single = OwnRedis(folder / "redis") if kind == "single" else None
        self.cluster = OwnCluster(folder / "cluster", persistent=True) if kind == "cluster" else None

    @property
    def url(self) -> str:
        return self.single.url if self.single else self.cluster.url  # type: ignore[union-attr]

    def start(self) -> None:
        (self.single or self.cluster).start()  # type: ignore[union-attr]

    def restart(self, pause_s: float) -> None:
        if self.single:
            self.single.stop()
            time.sleep(pause_s)
            self.single.start()
        else:
            self.cluster.restart(pause_s)  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.single and self.single.running:
            self.single.stop()
        if self.cluster:
            self.cluster.stop()


# --- what is counted --------------------------------------------------------------------------------

@dataclass
class Tally:
    #: answer class -> count: "2xx", "2xx with errors: CODE", "4xx CODE", "429", "5xx CODE", "transport: …"
    answers: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=dict)
    #: answers by when their request started: before the restart, during it (its start to 2 s after
    #: Redis answered again), after it
    phases: dict[str, Counter[str]] = field(default_factory=lambda: {p: Counter() for p in PHASES})
    #: (operation kind, class) of every answer that was not a plain 2xx
    failed_kinds: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_failure: dict[tuple[str, str], bytes] = field(default_factory=dict)


def classify(status: int, body: bytes) -> str:
    codes = []
    try:
        answer = orjson.loads(body) if body else {}
        errors = answer.get("errors") if isinstance(answer, dict) else None
        for error in errors or []:
            codes.append(str((error.get("extensions") or {}).get("code", "NO_CODE")))
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            codes.append(str(answer["error"].get("code")))
    except orjson.JSONDecodeError:
        codes.append("NOT_JSON")
    code = ",".join(sorted(set(codes))) or "-"
    if 200 <= status < 300:
        return "2xx" if not codes else f"2xx with errors: {code}"
    if status == 429:
        return "429"
    return f"{status // 100}xx {status} {code}"


@dataclass
class Plan:
    """What the clients of a run use: keys, the facilities they ask about."""

    keys: dict[str, str]
    facilities: list[str]
    enforced: list[str]
    hotel: str
    #: facility id -> its APDS place id (where webhooks happen)
    watched: dict[str, str]
    webhook_secret: str


def request(port: int, key: str, query: str, variables: dict[str, Any] | None = None) -> bytes:
    body = orjson.dumps({"query": query, "variables": variables or {}})
    return (f"POST /graphql HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body


class Operations:
    """Builds one request of a kind (the demo clients' traffic, each under its own bench client)."""

    def __init__(self, plan: Plan, rng: random.Random) -> None:
        self.plan, self.rng = plan, rng
        self.last_reservation: dict[int, tuple[dict[str, Any], str]] = {}

    def build(self, kind: str, port: int, client: int) -> bytes:
        keys, rng = self.plan.keys, self.rng
        if kind == "facilities (cached)":
            return request(port, keys["driver"], QUERY)
        if kind == "facilities (executed)":
            return request(port, keys["driver"], EXECUTED)
        if kind == "occupancy":
            return request(port, keys["dashboard"], OCCUPANCY, {"id": rng.choice(self.plan.facilities)})
        if kind == "plateStatus":
            return request(port, keys["handheld"], PLATE, {"plate": f"B-SK {rng.randrange(10_000)}",
                                                           "facility": rng.choice(self.plan.enforced)})
        if kind == "validateParking":
            return request(port, keys["hotel"], VALIDATE, {"key": str(uuid.uuid4()), "input": {
                "facilityId": self.plan.hotel, "plate": f"HV {rng.randrange(100_000)}", "guestName": "Soak Guest"}})
        if kind == "createReservation (retry)" and client in self.last_reservation:
            variables, key = self.last_reservation[client]  # the same request again: answered once
            return request(port, keys["driver"], RESERVE, {"input": variables, "key": key})
        start = (datetime.now(UTC) + timedelta(days=rng.randrange(2, 30), hours=rng.randrange(24))).replace(
            minute=0, second=0, microsecond=0)
        variables = {"plate": f"M-SK {rng.randrange(100_000)}", "facilityId": rng.choice(self.plan.facilities),
                     "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
        key = str(uuid.uuid4())
        self.last_reservation[client] = (variables, key)
        return request(port, keys["driver"], RESERVE, {"input": variables, "key": key})


async def http_client(number: int, port: int, ops: Operations, tally: Tally, stop_at: float, interval_s: float,
                      outage: list[float]) -> None:
    """One client: a keep-alive connection, a request every `interval_s` (a new connection after a transport error)."""
    kinds, weights = list(MIX), list(MIX.values())
    rng = random.Random(number)
    await asyncio.sleep(rng.random() * interval_s)
    reader = writer = None
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        kind = rng.choices(kinds, weights)[0]
        started = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, _, body = await asyncio.wait_for(one_exchange(reader, writer, ops.build(kind, port, number)), 30)
            verdict = classify(status, body)
            if verdict != "2xx":
                tally.first_failure.setdefault((kind, verdict), body[:400])
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            verdict = f"transport: {type(exc).__name__}"
            if writer is not None:
                writer.close()
            reader = writer = None
        elapsed = time.monotonic() - started
        tally.answers[verdict] += 1
        if verdict != "2xx":
            tally.failed_kinds[(kind, verdict)] += 1
        tally.latency.setdefault(kind, []).append(elapsed)
        phase = "before" if not outage or started < outage[0] else "during" if started <= outage[1] else "after"
        tally.phases[phase][verdict] += 1
        next_at += interval_s
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    if writer is not None:
        writer.close()


# --- subscribers and webhooks ----------------------------------------------------------------------

def plate_tag(plate: str | None) -> str:
    return re.sub(r"[^A-Z0-9]", "", (plate or "").upper())


@dataclass
class Subscriber:
    name: str
    facility: str
    received: set[str] = field(default_factory=set)
    messages: int = 0
    closed: str = ""


async def subscribe(port: int, key: str, query: str, facility: str, subscriber: Subscriber, stop: asyncio.Event,
                    ready: asyncio.Event) -> None:
    """One graphql-transport-ws subscription held open until `stop`; a close is noted, never re-opened
    (what a dropped subscriber missed is what it lost)."""
    from websockets.asyncio.client import connect

    try:
        async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                           compression=None, max_queue=None, open_timeout=30) as ws:
            await ws.send(orjson.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}).decode())
            ack = orjson.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"{subscriber.name}: no connection_ack: {ack}")
            await ws.send(orjson.dumps({"type": "subscribe", "id": "1", "payload": {
                "query": query, "variables": {"f": facility}}}).decode())
            ready.set()
            reading = asyncio.create_task(read_messages(ws, subscriber))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            reading.cancel()
    except Exception as exc:  # noqa: BLE001 - noted: a subscriber that did not last the run
        subscriber.closed = subscriber.closed or f"{type(exc).__name__}: {exc}"[:200]
        ready.set()


async def read_messages(ws: Any, subscriber: Subscriber) -> None:
    async for text in ws:
        message = orjson.loads(text)
        kind = message.get("type")
        if kind == "next":
            subscriber.messages += 1
            data = (message.get("payload") or {}).get("data") or {}
            event = data.get("vehicleEvents")
            if event is not None:
                subscriber.received.add(plate_tag(event.get("plate")))
            elif not data:
                subscriber.closed = f"error in next: {str(message)[:200]}"
        elif kind == "ping":
            await ws.send('{"type":"pong"}')
        elif kind in ("error", "complete"):
            subscriber.closed = f"{kind}: {str(message)[:200]}"
            return
    subscriber.closed = subscriber.closed or "closed by the gateway"


@dataclass
class Webhooks:
    sent: list[str] = field(default_factory=list)
    by_facility: dict[str, set[str]] = field(default_factory=dict)


async def send_webhooks(plan: Plan, gateways: list[Gateway], senders: list[WebhookSender], webhooks: Webhooks,
                        stop_at: float, per_s: float) -> None:
    """APDS SessionCreated deliveries, round robin over the gateways, each retried by the sender as a vendor does."""
    facilities = list(plan.watched)
    for number in itertools.count():
        if time.monotonic() >= stop_at:
            return
        gateway, sender = gateways[number % len(gateways)], senders[number % len(senders)]
        facility = facilities[number % len(facilities)]
        plate, session = f"SK{number:06d}", f"S-soak-{uuid.uuid4()}"
        place = plan.watched[facility]
        sender.send(lambda plate=plate, place=place, session=session: apds_webhook(plate, place, session),
                    f"http://127.0.0.1:{gateway.port}/webhooks/parcs-central?token={plan.webhook_secret}")
        webhooks.sent.append(plate)
        webhooks.by_facility.setdefault(facility, set()).add(plate_tag(plate))
        await asyncio.sleep(1 / per_s)


# --- vendor calls ------------------------------------------------------------------------------------

def vendor_calls(vendors_url: str, systems: list[str]) -> dict[str, Counter[str]]:
    """GET calls by system and endpoint so far (the simulators count each request by route)."""
    calls: dict[str, Counter[str]] = {}
    with httpx.Client(base_url=vendors_url, timeout=10) as http:
        for system in systems:
            by_endpoint = http.get(f"/sandbox/systems/{system}/stats").json()["by_endpoint"]
            calls[system] = Counter(by_endpoint)
    return calls


def reset_vendor_calls(vendors_url: str, systems: list[str]) -> None:
    with httpx.Client(base_url=vendors_url, timeout=10) as http:
        for system in systems:
            http.post(f"/sandbox/systems/{system}/stats/reset").raise_for_status()


def reads(calls: Counter[str]) -> Counter[str]:
    return Counter({endpoint: n for endpoint, n in calls.items() if endpoint.startswith("GET ")})


# --- the run -----------------------------------------------------------------------------------------

def make_plan(config: Path, env: dict[str, str], vendors: dict[str, Any], rng: random.Random) -> Plan:
    """Bench clients standing in for the demo clients (their scopes and facilities, a quota no run spends)."""
    roles = vendors["roles"]
    keys = {}
    for name, role in {"dashboard": "dashboard", "driver": "driver-app", "handheld": "enforcement-handheld",
                       "hotel": "hotel-pms-spree"}.items():
        scopes, only = roles[role]
        client = cli(config, env, "clients", "create", "--name", f"soak-{name}", *(a for s in scopes for a in ("--scope", s)),
                     *(a for f in only or () for a in ("--facility", f)))
        cli(config, env, "clients", "update", f"soak-{name}", *(a for o in OVERRIDES for a in ("--override", o)))
        keys[name] = client["key"]
    watcher = cli(config, env, "clients", "create", "--name", "soak-watcher", "--scope", "facilities:read",
                  "--scope", "occupancy:read", "--scope", "enforcement:read", "--scope", "pii:read")
    cli(config, env, "clients", "update", "soak-watcher", *(a for o in OVERRIDES for a in ("--override", o)))
    keys["watcher"] = watcher["key"]
    apds = {fid: f["systems"]["parcs-central"] for fid, f in vendors["facilities"].items() if "parcs-central" in f["systems"]}
    watched = dict(rng.sample(sorted(apds.items()), 3))
    secret_var = vendors["systems"]["parcs-central"]["credentials"]["webhook_secret"].strip("${}")
    return Plan(keys, rng.sample(sorted(vendors["facilities"]), min(50, len(vendors["facilities"]))),
                roles["enforcement-handheld"][1], roles["hotel-pms-spree"][1][0], watched, vendors["env"][secret_var])


def gateway_configs(config: Path) -> list[Path]:
    """One configuration per gateway, differing only in the replica id (as three machines' host names would)."""
    document = yaml.safe_load(config.read_text())
    paths = []
    for number in range(GATEWAYS):
        document["events"]["replica_id"] = f"soak-gateway-{number}"
        path = config.with_name(f"gateway-{number}.yaml")
        path.write_text(yaml.safe_dump(document))
        paths.append(path)
    return paths


async def wait_healthy(gateway: Gateway, timeout_s: float = 300.0) -> None:
    """Until the gateway answers /healthz (no query: the first query is the fill's)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if gateway.process.poll() is not None:
                raise RuntimeError(f"{gateway.name} exited with {gateway.process.returncode}")
            try:
                if (await http.get(f"http://127.0.0.1:{gateway.port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{gateway.name} did not start in {timeout_s:.0f} s")
            await asyncio.sleep(0.2)


async def warm(plan: Plan, gateways: list[Gateway]) -> None:
    """Every cached read once, on one gateway: the fill the vendor budget is counted from."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateways[0].port)
    try:
        for message in [request(gateways[0].port, plan.keys["driver"], QUERY)] + [
                request(gateways[0].port, plan.keys["dashboard"], OCCUPANCY, {"id": f}) for f in plan.facilities]:
            status, _, body = await one_exchange(reader, writer, message)
            if status != 200:
                raise RuntimeError(f"warming up: {status} {body[:300]!r}")
    finally:
        writer.close()


async def soak(args: argparse.Namespace, plan: Plan, gateways: list[Gateway], store: Store,
               watched_pids: dict[str, list[int]]) -> dict[str, Any]:
    tally, webhooks = Tally(), Webhooks()
    ops = Operations(plan, random.Random(1))
    stop, outage = asyncio.Event(), []
    subscribers: list[Subscriber] = []
    tasks = []
    for gateway in gateways:
        for number, facility in enumerate(plan.watched):
            for query, label in ((VEHICLES, "vehicles"), (OCCUPANCY_CHANGED, "occupancy")):
                subscriber = Subscriber(f"{gateway.name}/{label}/{number}", facility)
                ready = asyncio.Event()
                if label == "vehicles":
                    subscribers.append(subscriber)
                tasks.append(asyncio.create_task(subscribe(gateway.port, plan.keys["watcher"], query, facility,
                                                           subscriber, stop, ready)))
                await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(1.0)  # every subscription registered on its gateway's bus before the first event
    senders = [WebhookSender("") for _ in gateways]
    cpu0, wall0 = time.process_time(), time.monotonic()
    before = {name: sum(cpu_seconds(p) for p in pids) for name, pids in watched_pids.items()}
    stop_at = wall0 + args.duration
    loop = asyncio.get_running_loop()

    async def restart() -> None:
        if args.no_restart:
            return
        await asyncio.sleep(args.restart_at)
        outage.append(time.monotonic())
        outage.append(float("inf"))
        await loop.run_in_executor(None, store.restart, args.outage)
        outage[1] = time.monotonic() + 2.0  # answers in the two seconds after count as during the outage too
        print(f"  redis restarted: away {outage[1] - 2.0 - outage[0]:.1f} s (asked {args.outage:.1f} s) "
              f"at {outage[0] - wall0:.1f} s", flush=True)

    restarter = asyncio.create_task(restart())
    clients = [http_client(i, gateways[i % len(gateways)].port, ops, tally, stop_at, args.interval, outage)
               for i in range(args.clients)]
    await asyncio.gather(*clients, send_webhooks(plan, gateways, senders, webhooks, stop_at, args.webhooks_per_s),
                         restarter)
    client_cpu = time.process_time() - cpu0
    seconds = time.monotonic() - wall0
    cpu = {name: sum(cpu_seconds(p) for p in pids) - before[name] for name, pids in watched_pids.items()}
    # the senders' last retries, then the last deliveries
    deadline = time.monotonic() + 40
    while any(s.pending for s in senders) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(3.0)
    stop.set()
    await asyncio.gather(*tasks)
    for sender in senders:
        await sender.aclose()
    return {"tally": tally, "webhooks": webhooks, "subscribers": subscribers, "senders": senders,
            "client_cpu": client_cpu, "seconds": seconds, "cpu": cpu}


def report(result: dict[str, Any], args: argparse.Namespace, fill: dict[str, Counter[str]],
           calls: dict[str, Counter[str]], ttl_s: int) -> dict[str, Any]:
    tally: Tally = result["tally"]
    total = sum(tally.answers.values())
    print(f"answers: {total} in {result['seconds']:.0f} s ({total / result['seconds']:.0f}/s)")
    for verdict, n in sorted(tally.answers.items(), key=lambda item: -item[1]):
        print(f"  {verdict:<48} {n:7d}")
    for (kind, verdict), n in sorted(tally.failed_kinds.items()):
        print(f"    {kind}: {verdict} {n}  (first: {tally.first_failure.get((kind, verdict), b'')[:200]!r})")
    for phase, label in PHASES.items():
        counts = tally.phases[phase]
        print(f"  {label}: " + (", ".join(f"{v} {n}" for v, n in sorted(counts.items())) or "no request"))
    print("latency, ms            p50      p99   (count)")
    for kind in MIX:
        values = tally.latency.get(kind, [])
        print(f"  {kind:<26} {1000 * percentile(values, 0.5):7.1f}  {1000 * percentile(values, 0.99):7.1f}   ({len(values)})")
    webhooks: Webhooks = result["webhooks"]
    senders: list[WebhookSender] = result["senders"]
    gave_up = sum(s.failed for s in senders)
    print(f"webhooks: {len(webhooks.sent)} sent, {sum(s.delivered for s in senders)} accepted, "
          f"{sum(s.retried for s in senders)} attempts retried, {gave_up} given up "
          f"by the sender after its retries")
    lost_total = 0
    for subscriber in result["subscribers"]:
        expected = webhooks.by_facility.get(subscriber.facility, set())
        lost = len(expected - subscriber.received)
        lost_total += lost
        print(f"  {subscriber.name:<28} should have {len(expected):4d}, got {len(expected & subscriber.received):4d}, "
              f"lost {lost}{'  CLOSED: ' + subscriber.closed if subscriber.closed else ''}")
    print(f"events lost: {lost_total}")
    over = []
    print(f"vendor GET calls against the budget (per endpoint: its calls in the fill x {GATEWAYS} gateways x "
          f"(1 + {args.duration:.0f} s / {ttl_s} s, the shortest TTL)):")
    refreshes = 1 + int(args.duration // ttl_s)
    for system in sorted(calls):
        run, filled = reads(calls[system]), reads(fill[system])
        budget = sum(filled.values()) * GATEWAYS * refreshes
        cached = sum(n for endpoint, n in run.items() if endpoint in filled)
        live = sum(n for endpoint, n in run.items() if endpoint not in filled)
        writes = sum(calls[system].values()) - sum(run.values())
        status = "ok" if cached <= budget else "OVER"
        if cached > budget:
            over.append(system)
        print(f"  {system:<14} cached reads {cached:6d} / budget {budget:6d} {status}; live reads {live} "
              f"(plate checks, quotes: not cached by design), writes {writes}")
        if args.verbose:
            for endpoint, n in sorted(calls[system].items(), key=lambda item: -item[1]):
                print(f"      {endpoint:<60} {n:6d}  (fill {fill[system].get(endpoint, 0)})")
    cpu = {**result["cpu"], "client": result["client_cpu"]}
    print("CPU, % of one core: " + ", ".join(f"{name} {100 * s / result['seconds']:.0f}" for name, s in cpu.items()))
    fives = sum(n for v, n in tally.answers.items() if v.startswith("5xx"))
    transport = sum(n for v, n in tally.answers.items() if v.startswith("transport"))
    return {"5xx": fives, "transport": transport, "lost": lost_total, "gave_up": gave_up, "over": over}


async def bench(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="parkgate-soak-"))
    store = Store(args.redis, folder)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    vendors_process = ctx.Process(target=vendors_main, args=(child, args.facilities), daemon=True)
    gateways: list[Gateway] = []
    try:
        store.start()
        vendors_process.start()
        if not parent.poll(300):
            raise RuntimeError("the vendors did not start")
        vendors = parent.recv()
        config, env = deployment(folder, store.url, vendors)
        plan = make_plan(config, env, vendors, random.Random(args.seed))
        systems = sorted(vendors["systems"])
        print(f"{os.cpu_count()} CPUs; {args.facilities} garages, {GATEWAYS} gateways, Redis {args.redis} "
              f"({store.url}); {args.clients} clients every {args.interval:g} s for {args.duration:.0f} s, "
              f"{args.webhooks_per_s:g} webhooks/s; load average {load_average()}", flush=True)
        logs = Path(args.logs) if args.logs else None
        if logs:
            logs.mkdir(parents=True, exist_ok=True)
        gateways = [start_gateway(f"gateway-{n}", path, env, 1, "uvicorn", logs / f"gateway-{n}.log" if logs else None)
                    for n, path in enumerate(gateway_configs(config))]
        for gateway in gateways:
            await wait_healthy(gateway)
        # the gateways' own start (catalogs, vendor subscriptions) is not the run's: counted from the fill on
        await asyncio.sleep(2.0)
        reset_vendor_calls(vendors["url"], systems)
        await warm(plan, gateways)
        fill = vendor_calls(vendors["url"], systems)
        reset_vendor_calls(vendors["url"], systems)
        # (not Redis: a restarted server is another process, and the first one's CPU is gone with it)
        pids = {"gateways": [g.process.pid for g in gateways], "vendors": [vendors_process.pid or 0]}
        print(f"running; load average {load_average()}", flush=True)
        result = await soak(args, plan, gateways, store, pids)
        calls = vendor_calls(vendors["url"], systems)
        print(f"done; load average {load_average()}", flush=True)
        verdict = report(result, args, fill, calls, min(yaml.safe_load(config.read_text()).get("cache", {}).get(
            "ttl_s", {"occupancy": 10}).values(), default=10))
        print(f"SUMMARY 5xx {verdict['5xx']}, transport errors {verdict['transport']}, events lost {verdict['lost']} "
              f"(webhooks given up {verdict['gave_up']}), vendor calls over budget: {', '.join(verdict['over']) or 'none'}; "
              f"client CPU {100 * result['client_cpu'] / result['seconds']:.0f} % of one core; "
              f"load average {load_average()}")
        return 0
    finally:
        for gateway in gateways:
            stop_gateway(gateway)
        if vendors_process.is_alive():
            vendors_process.terminate()
            vendors_process.join(10)
        store.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", choices=["single", "cluster"], default="single")
    parser.add_argument("--clients", type=int, default=200, help="HTTP clients (default 200)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between one client's requests (default 2)")
    parser.add_argument("--facilities", type=int, default=1000, help="garages in the sandbox's world (default 1000)")
    parser.add_argument("--webhooks-per-s", type=float, default=5.0, help="APDS webhooks per second (default 5)")
    parser.add_argument("--restart-at", type=float, default=None, help="seconds into the run (default: half way)")
    parser.add_argument("--no-restart", action="store_true", help="leave Redis running (a baseline soak)")
    parser.add_argument("--outage", type=float, default=1.5, help="seconds Redis is away (default 1.5)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--logs", help="a folder for the gateways' output (warnings and up), else it is dropped")
    parser.add_argument("--verbose", action="store_true", help="vendor calls by endpoint too")
    args = parser.parse_args(argv)
    if args.restart_at is None:
        args.restart_at = args.duration / 2
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
