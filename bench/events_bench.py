"""Benchmark: subscription fan-out against stock strawberry, and webhook → subscriber latency.

    .venv/bin/python bench/events_bench.py [--subscribers 1000] [--client-procs 4] [--paced 12]
                                           [--burst 30] [--rounds 2] [--rate 100] [--latency-s 10]

1. Fan-out. Two servers, each in its own child process, same uvicorn settings as
   bench/facilities_bench.py (access_log=False, ws="websockets-sansio", IPPROTO_TCP socket):

     gateway    the sandbox (`build_sandbox`) with our `SubscriptionHub`: identical subscriptions
                share one execution and one serialized payload. Events are triggered by POSTing
                an APDS delivery (SessionCreated: VEHICLE_ENTERED at berlin-hbf) to /webhooks/parcs-central:
                ingress → inbox → processor → bus → hub.
     baseline   stock `strawberry.asgi.GraphQL` on starlette with a Subscription of the same shape
                (`vehicleEvents(facilityId)` → VehicleEvent, same 8 fields) whose async generator
                reads an in-process queue fed by `POST /publish` on the same app: strawberry runs
                one execution per subscriber per event.

   `--subscribers` websocket clients (graphql-transport-ws, no compression) per server, split over
   `--client-procs` client processes, all subscribed to the same document; for the gateway all
   authenticate as ONE client (made through the admin API with enforcement-handheld's scopes and
   facilities and quota override maxSubscriptions, so they share a permission signature).
   Per round and server: `--paced` events 250 ms apart (publish → last delivery, per event) and
   `--burst` events back to back (deliveries per second = deliveries / (last delivery − first
   publish)). Servers alternate, `--rounds` times.

2. Latency. With the fan-out clients gone: one websocket subscriber on the gateway, APDS
   webhooks POSTed at `--rate` per second for `--latency-s` seconds; each event timestamped just
   before its POST and on receipt by the subscriber (same process, same clock).

Timestamps across processes use time.monotonic() (CLOCK_MONOTONIC: one clock for the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from facilities_bench import (  # noqa: E402 - after sys.path
    Server,
    code_under_test,
    load_average,
    loopback_socket,
    process_cpu_seconds,
    stop_server,
    uvicorn_config,
    watch_parent,
)

FACILITY = "berlin-hbf"
APDS_PLACE = "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e01"  # berlin-hbf in the APDS simulator (adapters/apds/simulator/app.py)
SUBSCRIPTION = ('subscription Watch { vehicleEvents(facilityId: "berlin-hbf") '
                '{ eventId type facilityId zoneId source plate region occurredAt } }')
DEMO_CLIENT = "enforcement-handheld"
PACED_INTERVAL_S = 0.25


# --- servers -------------------------------------------------------------------------------------


# The baseline's schema, at module level (strawberry resolves the string annotations here).
import strawberry  # noqa: E402
from collections.abc import AsyncGenerator  # noqa: E402
from enum import Enum  # noqa: E402

LISTENERS: set[asyncio.Queue[dict[str, Any]]] = set()


@strawberry.enum
class VehicleEventType(Enum):
    ENTRY = "ENTRY"
    EXIT = "EXIT"


@strawberry.type
class VehicleEvent:
    event_id: str
    type: VehicleEventType
    facility_id: str
    zone_id: str | None
    source: str
    plate: str | None
    region: str | None
    occurred_at: datetime | None


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "hello"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def vehicle_events(self, facility_id: str | None = None) -> AsyncGenerator[VehicleEvent, None]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1000)
        LISTENERS.add(queue)
        try:
            while True:
                e = await queue.get()
                if facility_id is not None and e["facility_id"] != facility_id:
                    continue
                yield VehicleEvent(event_id=e["event_id"], type=VehicleEventType.ENTRY, facility_id=e["facility_id"],
                                   zone_id=e.get("zone_id"), source=e["source"], plate=e.get("plate"),
                                   region=e.get("region"), occurred_at=datetime.fromisoformat(e["occurred_at"]))
        finally:
            LISTENERS.discard(queue)


def build_baseline_app() -> Any:
    """Stock strawberry: a Subscription of the same shape fed from an in-process queue by POST /publish."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from strawberry.asgi import GraphQL

    listeners = LISTENERS

    async def publish(request: Request) -> JSONResponse:
        event = orjson.loads(await request.body())
        for queue in list(listeners):
            queue.put_nowait(event)
        return JSONResponse({"delivered_to": len(listeners)}, status_code=202)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    graphql_app = GraphQL(strawberry.Schema(query=Query, subscription=Subscription), graphql_ide=None)
    return Starlette(routes=[Route("/graphql", graphql_app), WebSocketRoute("/graphql", graphql_app),
                             Route("/publish", publish, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])])


def server_main(kind: str, conn: Any, keys_file: str | None) -> None:
    import uvicorn

    sock = loopback_socket()
    port = sock.getsockname()[1]
    secret = None
    if kind == "gateway":
        from gateway.sandbox import build_sandbox

        app, sandbox = build_sandbox(f"http://127.0.0.1:{port}", keys_file=Path(keys_file) if keys_file else None)
        secret = sandbox.config.systems["parcs-central"].credentials["webhook_secret"]
    else:
        app = build_baseline_app()
    conn.send((port, secret))
    conn.close()
    watch_parent()
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])


def start_server(ctx: Any, kind: str, keys_file: str | None = None, timeout_s: float = 30.0) -> tuple[Server, str | None]:
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=server_main, args=(kind, child, keys_file), name=f"bench-{kind}", daemon=True)
    process.start()
    child.close()
    if not parent.poll(timeout_s):
        raise RuntimeError(f"the {kind} server did not report its port")
    port, secret = parent.recv()
    parent.close()
    server = Server(kind, process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while True:
            if not process.is_alive():
                raise RuntimeError(f"the {kind} server exited while starting (exit code {process.exitcode})")
            try:
                if client.get(f"{server.base_url}/healthz").status_code == 200:
                    return server, secret
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not answer /healthz")
            time.sleep(0.05)


# --- websocket clients, in child processes ---------------------------------------------------------


def tag_of(text: str | bytes) -> str | None:
    message = orjson.loads(text)
    if message.get("type") != "next":
        return None
    event = (message.get("payload") or {}).get("data", {}).get("vehicleEvents") or {}
    return event.get("plate")


async def subscriber(url: str, init_payload: dict[str, Any], times: dict[str, list[float]],
                     ready: asyncio.Event | None, errors: list[str]) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(url, subprotocols=["graphql-transport-ws"], compression=None, max_queue=None, open_timeout=60)
    await ws.send(orjson.dumps({"type": "connection_init", "payload": init_payload}).decode())
    ack = orjson.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no connection_ack: {ack}")
    await ws.send(orjson.dumps({"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION,
                                                                          "operationName": "Watch"}}).decode())

    async def read() -> None:
        try:
            async for text in ws:
                now = time.monotonic()
                message = orjson.loads(text)
                kind = message.get("type")
                if kind == "next":
                    event = (message.get("payload") or {}).get("data", {}).get("vehicleEvents") or {}
                    plate = event.get("plate")
                    if plate is not None:
                        times.setdefault(plate, []).append(now)
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
                elif kind in ("error", "complete"):
                    errors.append(str(message)[:300])
        except Exception as exc:  # noqa: BLE001 - connection closed: noted
            errors.append(f"{type(exc).__name__}: {exc}"[:300])

    return ws, asyncio.create_task(read())


def client_main(url: str, init_payload: dict[str, Any], count: int, conn: Any) -> None:
    watch_parent()
    asyncio.run(client_loop(url, init_payload, count, conn))


async def client_loop(url: str, init_payload: dict[str, Any], count: int, conn: Any) -> None:
    times: dict[str, list[float]] = {}
    errors: list[str] = []
    limit = asyncio.Semaphore(25)

    async def one() -> Any:
        async with limit:
            return await subscriber(url, init_payload, times, None, errors)

    try:
        sockets = await asyncio.gather(*(one() for _ in range(count)))
    except Exception as exc:  # noqa: BLE001
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", count))
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "count":
            conn.send(sum(map(len, times.values())))
        elif command == "collect":
            conn.send((times, errors[:5]))  # pickled now: then emptied in place (the readers hold this dict)
            times.clear()
        elif command == "stop":
            break
    for ws, task in sockets:
        task.cancel()
        await ws.close()
    conn.send("stopped")


class ClientGroup:
    """`--client-procs` processes holding `count` subscribers to one server between them."""

    def __init__(self, ctx: Any, name: str, url: str, init_payload: dict[str, Any], count: int, procs: int) -> None:
        self.name = name
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        for i, share in enumerate(shares):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=client_main, args=(url, init_payload, share, child), name=f"bench-ws-{name}-{i}",
                                  daemon=True)
            process.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(process)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        for conn in self.conns:
            if not conn.poll(timeout_s):
                raise RuntimeError(f"{self.name} clients did not connect in {timeout_s:.0f} s")
            status, detail = conn.recv()
            if status != "ready":
                raise RuntimeError(f"{self.name} clients failed to connect: {detail}")

    def count(self) -> int:
        for conn in self.conns:
            conn.send("count")
        return sum(conn.recv() for conn in self.conns)

    def collect(self) -> tuple[dict[str, list[float]], list[str]]:
        for conn in self.conns:
            conn.send("collect")
        merged: dict[str, list[float]] = {}
        errors: list[str] = []
        for conn in self.conns:
            times, errs = conn.recv()
            errors += errs
            for tag, ts in times.items():
                merged.setdefault(tag, []).extend(ts)
        return merged, errors

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(p.pid) or 0.0 for p in self.procs)

    def stop(self) -> None:
        for conn, process in zip(self.conns, self.procs, strict=True):
            if process.is_alive():
                try:
                    conn.send("stop")
                    if conn.poll(10):
                        conn.recv()
                except (OSError, EOFError):
                    pass
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


# --- triggering events -----------------------------------------------------------------------------


def apds_webhook(plate: str, place: str = APDS_PLACE, session: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A SessionCreated delivery at `place` (an APDS hierarchy element), as the APDS PARCS sends to its
    subscribers (the secret rides in the URL); `session`: the vendor's id, the same on every retry."""
    from adapters.apds.operations_wire import plate_credential
    from adapters.apds.wire import format_time, versioned

    at, session = format_time(datetime.now(UTC)), session or f"S-{uuid.uuid4()}"
    data = {"id": session, "version": 1, "actualStart": at, "initiator": versioned("IN-1"),
            "identifiedCredentials": [plate_credential(plate, "bench")], "hierachyElement": versioned(place),
            "segments": [{"id": f"{session}-1", "version": 1, "actualStart": at, "validationType": ["licensePlate"],
                          "assignedRight": versioned(f"{session}-ticket", 1, "AssignedRight")}]}
    raw = orjson.dumps({"data": [data], "eventSubscriptionId": "bench", "eventTime": at, "topic": "SessionCreated"})
    return raw, {"content-type": "application/json"}


class Publisher:
    """One POST that makes the server publish a VEHICLE_ENTERED at berlin-hbf carrying `plate`."""

    def __init__(self, session: Any, server: Server, secret: str | None) -> None:
        self.session, self.server, self.secret = session, server, secret

    async def __call__(self, plate: str) -> float:
        if self.server.name == "gateway":
            assert self.secret is not None
            raw, headers = apds_webhook(plate)
            url = f"{self.server.base_url}/webhooks/parcs-central?token={self.secret}"
        else:
            raw = orjson.dumps({"event_id": f"evt_{uuid.uuid4().hex[:24]}", "facility_id": FACILITY, "zone_id": None,
                                "source": "parcs-central", "plate": plate, "region": None,
                                "occurred_at": datetime.now(UTC).isoformat()})
            headers = {"content-type": "application/json"}
            url = f"{self.server.base_url}/publish"
        sent = time.monotonic()
        async with self.session.post(url, data=raw, headers=headers) as response:
            body = await response.read()
            if response.status not in (200, 202):
                raise RuntimeError(f"{url} answered {response.status}: {body[:300]!r}")
        return sent


# --- fan-out phases --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def wait_for(group: ClientGroup, expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and group.count() < expected:
        await asyncio.sleep(0.05)


async def synchronise(group: ClientGroup, publish: Publisher, subscribers: int, prefix: str) -> None:
    """Warm-up events until every subscriber has received one (subscribe has no acknowledgement)."""
    for i in range(40):
        tag = f"{prefix}-W{i}"
        await publish(tag)
        await wait_for(group, subscribers, 1.0)
        times, errors = group.collect()
        if errors:
            raise RuntimeError(f"{group.name} subscribers failed: {errors}")
        if len(times.get(tag, [])) >= subscribers:
            return
    raise RuntimeError(f"{group.name}: only {len(times.get(tag, []))} of {subscribers} subscribers receive events")


async def paced(group: ClientGroup, publish: Publisher, subscribers: int, events: int, prefix: str) -> dict[str, Any]:
    sends: dict[str, float] = {}
    start = time.monotonic()
    for i in range(events):
        tag = f"{prefix}-P{i}"
        sends[tag] = await publish(tag)
        await asyncio.sleep(max(0.0, start + (i + 1) * PACED_INTERVAL_S - time.monotonic()))
    await wait_for(group, events * subscribers, 10.0)
    times, errors = group.collect()
    last = [1000 * (max(times[tag]) - sent) for tag, sent in sends.items() if tag in times]
    first = [1000 * (min(times[tag]) - sent) for tag, sent in sends.items() if tag in times]
    delivered = sum(len(times.get(tag, [])) for tag in sends)
    return {"last_ms": last, "first_ms": first, "delivered": delivered, "expected": events * subscribers, "errors": errors}


async def burst(group: ClientGroup, server: Server, publish: Publisher, subscribers: int, events: int,
                prefix: str) -> dict[str, Any]:
    cpu_server0, cpu_clients0 = process_cpu_seconds(server.process.pid) or 0.0, group.cpu_seconds()
    sends: dict[str, float] = {}
    for i in range(events):
        tag = f"{prefix}-B{i}"
        sends[tag] = await publish(tag)
    await wait_for(group, events * subscribers, 30.0)
    cpu_server, cpu_clients = (process_cpu_seconds(server.process.pid) or 0.0) - cpu_server0, group.cpu_seconds() - cpu_clients0
    times, errors = group.collect()
    received = [t for tag in sends for t in times.get(tag, [])]
    first_sent = min(sends.values())
    span = (max(received) - first_sent) if received else float("nan")
    return {"delivered": len(received), "expected": events * subscribers, "span_s": span,
            "server_cpu_s": cpu_server, "client_cpu_s": cpu_clients, "errors": errors,
            "last_ms": [1000 * (max(times[tag]) - sent) for tag, sent in sends.items() if tag in times]}


# --- latency phase ---------------------------------------------------------------------------------


async def latency_phase(server: Server, secret: str, init_payload: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    import aiohttp

    times: dict[str, list[float]] = {}
    errors: list[str] = []
    url = server.base_url.replace("http", "ws", 1) + "/graphql"
    ws, reader = await subscriber(url, init_payload, times, None, errors)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        publish = Publisher(session, server, secret)
        for i in range(40):  # until the subscription is live
            await publish(f"L-W{i}")
            await asyncio.sleep(0.25)
            if f"L-W{i}" in times:
                break
        else:
            raise RuntimeError(f"the latency subscriber receives nothing: {errors}")
        sends: dict[str, float] = {}
        failures: list[str] = []

        async def one(tag: str) -> None:
            try:
                sends[tag] = await publish(tag)
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{type(exc).__name__}: {exc}"[:200])

        total = int(rate * seconds)
        cpu0 = process_cpu_seconds(server.process.pid) or 0.0
        start = time.monotonic()
        tasks = []
        for i in range(total):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(f"L-{i}")))
        await asyncio.gather(*tasks)
        wall = time.monotonic() - start
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and sum(tag in times for tag in sends) < len(sends):
            await asyncio.sleep(0.05)
        server_cpu = (process_cpu_seconds(server.process.pid) or 0.0) - cpu0
    reader.cancel()
    await ws.close()
    latencies = [1000 * (times[tag][0] - sent) for tag, sent in sends.items() if tag in times]
    return {"latencies_ms": latencies, "sent": total, "failures": failures, "received": len(latencies),
            "rate": total / wall, "server_cpu_pct": 100 * server_cpu / wall, "errors": errors}


# --- the bench's own gateway client ----------------------------------------------------------------


def fanout_client(keys_file: Path, graphql_url: str, subscribers: int) -> tuple[str, str] | None:
    """(description, key) of a client with enforcement-handheld's scopes and room for all subscribers."""
    if not keys_file.exists():
        return None
    clients = orjson.loads(keys_file.read_bytes())
    demo = clients[DEMO_CLIENT]
    from _replay import BENCH_QUOTA, CREATE_CLIENT

    headers = {"content-type": "application/json", "authorization": f"Bearer {clients['admin']['key']}"}
    update = ("mutation Q($id: ID!, $input: UpdateClientInput!) "
              "{ updateClient(id: $id, input: $input) { id } }")
    with httpx.Client(timeout=30.0) as client:
        def call(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            answer = client.post(graphql_url, content=orjson.dumps({"query": query, "variables": variables}), headers=headers)
            body = answer.json()
            if answer.status_code != 200 or body.get("errors"):
                raise RuntimeError(f"admin API answered {answer.status_code}: {answer.text[:500]}")
            return body["data"]

        created = call(CREATE_CLIENT, {"input": {"name": "bench-events", "environment": "TEST", "scopes": list(demo["scopes"]),
                                                 "facilities": demo.get("facilities"), "notes": "events bench"}})["createClient"]
        call(update, {"id": created["client"]["id"],
                      "input": {"quotaOverrides": {**BENCH_QUOTA, "maxSubscriptions": subscribers + 100}}})
    return f"bench-events ({DEMO_CLIENT}'s scopes and facilities, maxSubscriptions {subscribers + 100})", created["key"]


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000, help="websocket subscribers per server (default 1000)")
    parser.add_argument("--client-procs", type=int, default=4, help="client processes per server (default 4)")
    parser.add_argument("--paced", type=int, default=12, help="paced events (250 ms apart) per round and server (default 12)")
    parser.add_argument("--burst", type=int, default=30, help="back-to-back events per round and server (default 30)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--rate", type=float, default=100.0, help="webhooks per second in the latency phase (default 100)")
    parser.add_argument("--latency-s", type=float, default=10.0, help="seconds of the latency phase (default 10)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    print(f"code under test: {code_under_test()}")
    print(f"{os.cpu_count()} CPUs, load average {load_average()}; {args.subscribers} subscribers per server over "
          f"{args.client_procs} client processes; {args.rounds} alternating rounds of {args.paced} paced events "
          f"({PACED_INTERVAL_S * 1000:.0f} ms apart) + {args.burst} back-to-back events")
    ctx = mp.get_context("spawn")
    servers: list[Server] = []
    groups: list[ClientGroup] = []
    scratch = tempfile.TemporaryDirectory(prefix="events-bench-")
    try:
        keys_file = Path(scratch.name) / "sandbox-keys.json"
        gateway, secret = start_server(ctx, "gateway", str(keys_file))
        servers.append(gateway)
        baseline, _ = start_server(ctx, "baseline")
        servers.append(baseline)
        assert secret is not None
        made = fanout_client(keys_file, f"{gateway.base_url}/graphql", args.subscribers)
        gateway_init = {"authorization": f"Bearer {made[1]}"} if made else {}
        if made:
            print(f"gateway subscribers authenticate as {made[0]}")
        ws = {s.name: s.base_url.replace("http", "ws", 1) + "/graphql" for s in servers}
        t0 = time.monotonic()
        by_name = {
            "gateway": ClientGroup(ctx, "gateway", ws["gateway"], gateway_init, args.subscribers, args.client_procs),
            "baseline": ClientGroup(ctx, "baseline", ws["baseline"], {}, args.subscribers, args.client_procs),
        }
        groups.extend(by_name.values())
        for group in groups:
            group.wait_ready()
        print(f"{2 * args.subscribers} websockets connected and subscribed in {time.monotonic() - t0:.1f} s")
        secrets = {"gateway": secret, "baseline": None}
        results: dict[str, dict[str, list[Any]]] = {n: {"paced": [], "burst": []} for n in by_name}

        async def fanout() -> None:
            import aiohttp

            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as session:
                publishers = {s.name: Publisher(session, s, secrets[s.name]) for s in servers}
                for server in servers:
                    await synchronise(by_name[server.name], publishers[server.name], args.subscribers, server.name[0])
                for r in range(args.rounds):
                    for server in (servers if r % 2 == 0 else servers[::-1]):
                        group, publish = by_name[server.name], publishers[server.name]
                        results[server.name]["paced"].append(
                            await paced(group, publish, args.subscribers, args.paced, f"{server.name[0]}{r}"))
                        results[server.name]["burst"].append(
                            await burst(group, server, publish, args.subscribers, args.burst, f"{server.name[0]}{r}"))

        asyncio.run(fanout())
        for group in groups:
            group.stop()
        groups.clear()
        stop_server(baseline)
        servers.remove(baseline)
        latency = asyncio.run(latency_phase(gateway, secret, gateway_init, args.rate, args.latency_s))
    finally:
        for group in groups:
            group.stop()
        for server in servers:
            stop_server(server)
        scratch.cleanup()

    print("1. fan-out: 1 subscription document, "
          f"{args.subscribers} websocket subscribers (graphql-transport-ws) per server")
    summary: dict[str, dict[str, float]] = {}
    for name, label in (("gateway", "gateway (sandbox, shared hub; event = APDS delivery)"),
                        ("baseline", "stock strawberry (per-subscriber execution; event = POST /publish)")):
        bursts, paces = results[name]["burst"], results[name]["paced"]
        delivered = sum(b["delivered"] for b in bursts)
        expected = sum(b["expected"] for b in bursts)
        span = sum(b["span_s"] for b in bursts)
        server_cpu = sum(b["server_cpu_s"] for b in bursts)
        client_cpu = sum(b["client_cpu_s"] for b in bursts)
        last = [x for p in paces for x in p["last_ms"]]
        first = [x for p in paces for x in p["first_ms"]]
        p_delivered = sum(p["delivered"] for p in paces)
        p_expected = sum(p["expected"] for p in paces)
        per_round = "  ".join(f"{b['delivered'] / b['span_s']:.0f}" for b in bursts)
        summary[name] = {"dps": delivered / span, "p50": percentile(last, 0.5)}
        print(f"  {label}:")
        print(f"    burst: {delivered / span:8.0f} deliveries/s ({delivered}/{expected} delivered in {span:.2f} s; per round "
              f"{per_round}; server CPU {100 * server_cpu / span:.0f}%, clients CPU {100 * client_cpu / span:.0f}% "
              f"of one core over {args.client_procs} processes)")
        print(f"    paced: publish → last delivery p50 {percentile(last, 0.5):6.1f} ms  p95 {percentile(last, 0.95):6.1f} ms  "
              f"max {max(last, default=float('nan')):6.1f} ms; → first delivery p50 {percentile(first, 0.5):5.1f} ms "
              f"({p_delivered}/{p_expected} delivered)")
        errors = [e for kind in ("paced", "burst") for x in results[name][kind] for e in x["errors"]]
        if errors or delivered < expected or p_delivered < p_expected:
            print(f"    WARNING: missing deliveries or subscriber errors: {errors[:3]}")
    ratio = summary["gateway"]["dps"] / summary["baseline"]["dps"]
    print(f"  ratio gateway/stock strawberry = {ratio:.2f}x deliveries per second "
          f"(aim ≥ 4x: {'met' if ratio >= 4 else 'MISSED'})")
    p50 = summary["gateway"]["p50"]
    print(f"  gateway publish → last delivery p50 {p50:.1f} ms (aim ≤ 100 ms: {'met' if p50 <= 100 else 'MISSED'}); "
          f"stock strawberry {summary['baseline']['p50']:.1f} ms")

    lat = latency["latencies_ms"]
    print(f"2. webhook → subscriber latency: APDS deliveries at {latency['rate']:.1f}/s for {args.latency_s:g} s "
          f"(ingress → inbox → processor → bus → hub → 1 websocket subscriber; gateway CPU {latency['server_cpu_pct']:.0f}%)")
    print(f"  p50 {percentile(lat, 0.5):.1f} ms  p95 {percentile(lat, 0.95):.1f} ms  p99 {percentile(lat, 0.99):.1f} ms  "
          f"max {max(lat, default=float('nan')):.1f} ms  ({latency['received']}/{latency['sent']} received, "
          f"{len(latency['failures'])} POSTs failed)")
    p99 = percentile(lat, 0.99)
    print(f"  aim p99 ≤ 50 ms: {'met' if p99 <= 50 else 'MISSED'}")
    if latency["failures"] or latency["errors"]:
        print(f"  WARNING: {latency['failures'][:3]} {latency['errors'][:3]}")
    print(f"total {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
