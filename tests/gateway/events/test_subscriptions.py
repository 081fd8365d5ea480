"""Subscriptions over real WebSockets (graphql-transport-ws, graphql-ws) and SSE, events published
on the sandbox's own bus."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
import strawberry
import websockets
from starlette.applications import Starlette

from adapters.models import DomainEvent, EventType
from gateway.events.subscriptions_http import SubscriptionServer
from gateway.kernel.permissions import enforce_scopes
from resolvers.schema import Mutation, Query, schema as product_schema
from resolvers.subscriptions import Subscription
from tests.support.servers import repeating, serve
from tests.support.streams import ADMIN_CHANGE_BOUND_S, SLACK_S, TRANSPORTS, assert_ended_by, connect_ws, open_stream


def subscription_schema() -> strawberry.Schema:
    """The product schema once it has `subscription=Subscription`; until then the same one built here."""
    if product_schema._schema.subscription_type is not None:
        return product_schema
    built = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription)
    enforce_scopes(built)
    return built


class Subs:
    def __init__(self, url: str, server: SubscriptionServer) -> None:
        self.ws_url = url.replace("http", "ws") + "/graphql"
        self.url = url
        self.server = server
        self.hub = server.hub

    async def settle(self, count: int) -> None:
        for _ in range(500):
            if self.hub.subscribers == count and all(g.ready.is_set() for g in self.hub.groups.values()):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{self.hub.subscribers} subscribers, expected {count}")


@asynccontextmanager
async def serving(bed: Any, recheck_s: float) -> AsyncIterator[Subs]:
    """The subscription endpoints on the bed's runtime (same bus, clients, plans), with a short keep-alive."""
    server = SubscriptionServer(bed.sandbox.runtime, subscription_schema(), keepalive_s=0.3, init_timeout_s=0.5,
                                recheck_s=recheck_s)
    try:
        async with serve(Starlette(routes=server.routes())) as url:
            yield Subs(url, server)
    finally:
        await server.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def subs(bed: Any) -> AsyncIterator[Subs]:
    """Credentials re-checked only every minute: a stream that ends sooner was told its client changed."""
    async with serving(bed, recheck_s=60) as served:
        yield served


def event(type_: EventType, facility: str, zone: str | None = None, **payload: Any) -> DomainEvent:
    now = datetime.now(UTC)
    return DomainEvent(id=uuid.uuid4().hex, type=type_, system_id="test", facility_id=facility, occurred_at=now,
                       received_at=now, vendor_event_id=uuid.uuid4().hex, payload=payload, zone_id=zone)


async def publish(bed: Any, *events: DomainEvent) -> None:
    for e in events:
        await bed.sandbox.runtime.bus.publish(e)


async def receive(ws: Any, timeout: float = 3.0) -> dict[str, Any]:
    """The next message that is not a keep-alive."""
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] not in ("ping", "ka", "pong"):
            return message


async def subscribe(ws: Any, query: str, variables: dict[str, Any] | None = None, *, op_id: str = "1",
                    legacy: bool = False) -> None:
    await ws.send(orjson.dumps({"type": "start" if legacy else "subscribe", "id": op_id,
                                "payload": {"query": query, "variables": variables}}).decode())


async def session(subs: Subs, key: str, protocol: str = "graphql-transport-ws") -> Any:
    ws = await connect_ws(subs.ws_url, protocol, {"Authorization": f"Bearer {key}"})
    assert (await receive(ws))["type"] == "connection_ack"
    return ws


HBF = {"f": "berlin-hbf"}
OCCUPANCY = "subscription($f: String!) { occupancyChanged(facilityId: $f) { facilityId zoneId occupied free capacity observedAt } }"
VEHICLES = "subscription { vehicleEvents(types: [ENTRY]) { type facilityId plate occurredAt } }"
GUESTS = "subscription { guestEvents { type facilityId guestName } }"


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_occupancy_for_the_subscribed_facility_only(bed: Any, subs: Subs, protocol: str) -> None:
    legacy = protocol == "graphql-ws"
    ws = await session(subs, bed.key("dashboard"), protocol)
    try:
        await subscribe(ws, OCCUPANCY, {"f": "berlin-hbf"}, legacy=legacy)
        await subs.settle(1)
        await publish(bed, event(EventType.OCCUPANCY_CHANGED, "berlin-mitte", occupied=1),
                      event(EventType.OCCUPANCY_CHANGED, "berlin-hbf", "L1", occupied=7, free=3, capacity=10))
        message = await receive(ws)
        assert message["type"] == ("data" if legacy else "next") and message["id"] == "1"
        update = message["payload"]["data"]["occupancyChanged"]
        assert (update["facilityId"], update["zoneId"], update["occupied"], update["free"], update["capacity"]) == \
            ("berlin-hbf", "L1", 7, 3, 10)
        await ws.send(orjson.dumps({"type": "stop" if legacy else "complete", "id": "1"}).decode())
        await subs.settle(0)
    finally:
        await ws.close()


async def test_a_tenant_never_sees_another_facility(bed: Any, subs: Subs) -> None:
    ws = await session(subs, bed.key("hotel-pms-spree"))
    try:
        await subscribe(ws, GUESTS)
        await subscribe(ws, OCCUPANCY, {"f": "berlin-hbf"}, op_id="2")
        await subs.settle(2)
        await publish(bed, event(EventType.GUEST_CHECKED_IN, "berlin-hbf", guest_name="Somebody Else"),
                      event(EventType.OCCUPANCY_CHANGED, "berlin-hbf", occupied=1),
                      event(EventType.GUEST_CHECKED_IN, "berlin-spree-hotel", guest_name="Erika Mustermann"))
        message = await receive(ws)
        assert message["id"] == "1"
        assert message["payload"]["data"]["guestEvents"] == {"type": "CHECKED_IN", "facilityId": "berlin-spree-hotel",
                                                              "guestName": "Erika Mustermann"}
        with pytest.raises(TimeoutError):
            await receive(ws, timeout=0.3)
    finally:
        await ws.close()
        await subs.settle(0)


async def test_plates_masked_without_pii_read(bed: Any, subs: Subs) -> None:
    masked, clear = await session(subs, bed.key("admin")), await session(subs, bed.key("enforcement-handheld"))
    try:
        await subscribe(masked, VEHICLES)
        await subscribe(clear, VEHICLES)
        await subs.settle(2)
        await publish(bed, event(EventType.VEHICLE_EXITED, "berlin-hbf", plate="B-XY 1234"),
                      event(EventType.VEHICLE_ENTERED, "berlin-hbf", plate="B-XY 1234"))
        assert (await receive(masked))["payload"]["data"]["vehicleEvents"]["plate"] == "B-•••34"
        vehicle = (await receive(clear))["payload"]["data"]["vehicleEvents"]
        assert (vehicle["type"], vehicle["plate"]) == ("ENTRY", "B-XY 1234")
    finally:
        await masked.close()
        await clear.close()
        await subs.settle(0)


async def test_missing_scope_is_forbidden(bed: Any, subs: Subs) -> None:
    ws = await session(subs, bed.key("dashboard"))
    try:
        await subscribe(ws, VEHICLES)
        message = await receive(ws)
        assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        await ws.close()


@pytest.mark.parametrize("payload", [None, {"Authorization": "Bearer pk_test_nonsense"}, {"apiKey": "nope"}])
async def test_bad_credentials_refused_on_the_gateway_route(bed: Any, payload: dict[str, Any] | None) -> None:
    url = bed.url.replace("http", "ws") + "/graphql"
    ws = await connect_ws(url, "graphql-transport-ws", payload)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await receive(ws)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "Forbidden")
    legacy = await connect_ws(url, "graphql-ws", payload)
    message = await receive(legacy)
    assert message["type"] == "connection_error"
    with pytest.raises(websockets.ConnectionClosed):
        await receive(legacy)


async def test_the_gateway_route_acknowledges_a_good_key(bed: Any) -> None:
    url = bed.url.replace("http", "ws") + "/graphql"
    ws = await connect_ws(url, "graphql-transport-ws", {"authorization": f"Bearer {bed.key('dashboard')}"})
    try:
        assert (await receive(ws))["type"] == "connection_ack"
    finally:
        await ws.close()


async def test_init_timeout(subs: Subs) -> None:
    ws = await websockets.connect(subs.ws_url, subprotocols=["graphql-transport-ws"])
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 3)
    assert closed.value.rcvd.code == 4408


async def client_with_limit(bed: Any, max_subscriptions: int) -> str:
    """A new client (occupancy:read, every facility) whose plan allows this many subscriptions; its key."""
    _, key = await bed.new_client(["occupancy:read"], overrides={"maxSubscriptions": max_subscriptions})
    await asyncio.sleep(0.6)  # the authenticator's short client cache
    return key


async def test_per_client_limit(bed: Any, subs: Subs) -> None:
    ws = await session(subs, await client_with_limit(bed, 1))
    try:
        await subscribe(ws, OCCUPANCY, {"f": "berlin-hbf"})
        await subs.settle(1)
        await subscribe(ws, OCCUPANCY, {"f": "berlin-mitte"}, op_id="2")
        message = await receive(ws)
        assert (message["type"], message["id"]) == ("error", "2")
        assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    finally:
        await ws.close()
        await subs.settle(0)


async def test_identical_subscriptions_share_one_execution(bed: Any, subs: Subs) -> None:
    key = await client_with_limit(bed, 50)
    sockets = [await session(subs, key) for _ in range(50)]
    try:
        for ws in sockets:
            await subscribe(ws, OCCUPANCY, {"f": "berlin-hbf"})
        await subs.settle(50)
        assert len(subs.hub.groups) == 1
        before = subs.hub.executions
        await publish(bed, event(EventType.OCCUPANCY_CHANGED, "berlin-hbf", occupied=42))
        payloads = [await receive(ws) for ws in sockets]
        assert subs.hub.executions - before == 1
        assert all(p == payloads[0] for p in payloads)
        assert payloads[0]["payload"]["data"]["occupancyChanged"]["occupied"] == 42
    finally:
        for ws in sockets:
            await ws.close()
        await subs.settle(0)
    assert not subs.hub.groups and not subs.hub.open


async def test_sse_delivers(bed: Any, subs: Subs) -> None:
    params = {"query": OCCUPANCY, "variables": orjson.dumps({"f": "berlin-hbf"}).decode()}
    async with httpx.AsyncClient(timeout=5) as http, http.stream(
            "GET", f"{subs.url}/graphql/stream", params=params,
            headers={**bed.auth("dashboard"), "accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        await subs.settle(1)
        await publish(bed, event(EventType.OCCUPANCY_CHANGED, "berlin-hbf", occupied=5))
        lines = response.aiter_lines()
        seen: list[str] = []
        while not any(line.startswith("data: {") for line in seen):
            seen.append(await asyncio.wait_for(anext(lines), 3))
        assert "event: next" in seen
        data = orjson.loads(next(line for line in seen if line.startswith("data: {"))[6:])
        assert data["data"]["occupancyChanged"]["occupied"] == 5
    await subs.settle(0)


async def test_sse_refuses_without_credentials(subs: Subs) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"{subs.url}/graphql/stream", params={"query": OCCUPANCY})
    assert response.status_code == 401


@pytest.mark.parametrize(("protocol", "ping"), [("graphql-transport-ws", "ping"), ("graphql-ws", "ka")])
async def test_keepalive_when_idle(bed: Any, subs: Subs, protocol: str, ping: str) -> None:
    ws = await session(subs, bed.key("dashboard"), protocol)
    try:
        pings = 0
        while pings < 2:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 2))
            pings += message["type"] == ping
    finally:
        await ws.close()


async def test_fragments_do_not_hide_a_root_field_from_the_scope_check(bed: Any, subs: Subs) -> None:
    ws = await session(subs, bed.key("dashboard"))  # no enforcement:read
    try:
        await subscribe(ws, "subscription { ...F } fragment F on Subscription { vehicleEvents { plate } }")
        message = await receive(ws)
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        await ws.close()


async def test_a_join_cancelled_while_its_group_starts_gives_its_slot_back(bed: Any, subs: Subs) -> None:
    """A client that goes away while its subscription is still being set up holds no slot of its limit."""
    principal = await bed.sandbox.runtime.authenticator.authenticate(None, bed.key("dashboard"))
    op = subs.hub.prepare({"query": OCCUPANCY, "variables": {"f": "berlin-hbf"}})
    joining = asyncio.create_task(subs.hub.join(op, principal))
    await asyncio.sleep(0)  # it has counted itself and waits for the group's source
    assert subs.hub.open[principal.client_id] == 1
    joining.cancel()
    with pytest.raises(asyncio.CancelledError):
        await joining
    assert principal.client_id not in subs.hub.open
    await subs.settle(0)
    assert not subs.hub.groups


async def test_a_group_whose_source_ended_takes_no_new_subscribers(bed: Any, subs: Subs) -> None:
    principal = await bed.sandbox.runtime.authenticator.authenticate(None, bed.key("dashboard"))
    op = subs.hub.prepare({"query": OCCUPANCY, "variables": {"f": "berlin-mitte"}})
    first = await subs.hub.join(op, principal)
    ended = first.group
    assert ended.task is not None
    ended.task.cancel()  # the source stops (as when its generator ends)
    await asyncio.gather(ended.task, return_exceptions=True)
    assert subs.hub.groups.get(ended.key) is None
    second = await subs.hub.join(op, principal)
    try:
        assert second.group is not ended and subs.hub.groups[ended.key] is second.group
    finally:
        subs.hub.leave(first, principal)
        subs.hub.leave(second, principal)
    assert principal.client_id not in subs.hub.open and not subs.hub.groups


# --- revocation reaches every open stream, busy or idle -----------------------------------------

def busy(bed: Any, facility: str = "berlin-hbf") -> contextlib.AbstractAsyncContextManager[None]:
    """Occupancy events for `facility` every 20 ms, as long as the block runs."""
    figures = itertools.count()
    return repeating(lambda: publish(bed, event(EventType.OCCUPANCY_CHANGED, facility, occupied=next(figures) % 100)), 0.02)


async def revoke(bed: Any, client_id: str) -> float:
    """Revoke through the admin API; when it was done (time.monotonic())."""
    revoked = await bed.graphql('mutation($id: ID!) { revokeClient(id: $id) { status } }', {"id": client_id})
    assert revoked["data"]["revokeClient"]["status"] == "REVOKED", revoked
    return time.monotonic()


@pytest.mark.parametrize("traffic", ["busy", "idle"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_revoked_clients_stream_ends_within_the_bound(bed: Any, subs: Subs, transport: str, traffic: str) -> None:
    client_id, key = await bed.new_client(["occupancy:read"])
    async with open_stream(subs.url, transport, key, OCCUPANCY, HBF) as stream, \
            busy(bed) if traffic == "busy" else contextlib.nullcontext():
        await subs.settle(1)
        if traffic == "busy":
            await stream.data()
        revoked_at = await revoke(bed, client_id)
        ended = await stream.ending(ADMIN_CHANGE_BOUND_S + SLACK_S)
        assert time.monotonic() - revoked_at < ADMIN_CHANGE_BOUND_S + SLACK_S
    assert_ended_by(ended, transport, "UNAUTHENTICATED", "revoked")
    await subs.settle(0)
    assert client_id not in subs.hub.open and not subs.server.credential_watch.watches


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_stream_on_an_access_token_ends_when_its_client_is_revoked(bed: Any, subs: Subs, transport: str) -> None:
    client_id, key = await bed.new_client(["occupancy:read"])
    issued = await bed.http.post(f"{bed.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, key))
    assert issued.status_code == 200, issued.text
    async with open_stream(subs.url, transport, issued.json()["access_token"], OCCUPANCY, HBF) as stream, busy(bed):
        await stream.data()
        await revoke(bed, client_id)
        assert_ended_by(await stream.ending(ADMIN_CHANGE_BOUND_S + SLACK_S), transport, "UNAUTHENTICATED", "revoked")
    await subs.settle(0)


async def test_narrowed_scopes_end_a_stream_and_other_edits_do_not(bed: Any, subs: Subs) -> None:
    client_id, key = await bed.new_client(["occupancy:read", "facilities:read"])
    update = 'mutation($id: ID!, $input: UpdateClientInput!) { updateClient(id: $id, input: $input) { id } }'
    async with open_stream(subs.url, "graphql-transport-ws", key, OCCUPANCY, HBF) as stream, busy(bed):
        await stream.data()
        await bed.graphql(update, {"id": client_id, "input": {"notes": "moved to the night shift"}})
        started = time.monotonic()
        while time.monotonic() - started < ADMIN_CHANGE_BOUND_S + 0.5:  # still flowing past the bound
            await stream.data()
        await bed.graphql(update, {"id": client_id, "input": {"scopes": ["facilities:read"]}})
        ended = await stream.ending(ADMIN_CHANGE_BOUND_S + SLACK_S)
    assert_ended_by(ended, "graphql-transport-ws", "FORBIDDEN", "scopes or facilities changed")
    await subs.settle(0)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_key_past_its_rotation_grace_ends_its_streams_and_the_new_key_goes_on(bed: Any, transport: str) -> None:
    """No notice when a grace period runs out: the timer's re-check ends the old key's stream."""
    recheck_s, grace_s = 0.5, 1
    client_id, old_key = await bed.new_client(["occupancy:read"])
    rotate = 'mutation($id: ID!, $grace: Int!) { rotateClientKey(id: $id, gracePeriodSeconds: $grace) { key } }'
    async with serving(bed, recheck_s=recheck_s) as rechecking, \
            open_stream(rechecking.url, transport, old_key, OCCUPANCY, HBF) as old, busy(bed):
        await old.data()
        rotated = await bed.graphql(rotate, {"id": client_id, "grace": grace_s})
        grace_ends = time.monotonic() + grace_s
        new_key = rotated["data"]["rotateClientKey"]["key"]
        async with open_stream(rechecking.url, transport, new_key, OCCUPANCY, HBF) as new:
            await new.data()
            while time.monotonic() < grace_ends - 0.4:  # the rotation's notice and the timer keep it: in its grace
                await old.data()
            ended = await old.ending(grace_s + recheck_s + SLACK_S)
            assert time.monotonic() - grace_ends < recheck_s + SLACK_S
            assert_ended_by(ended, transport, "UNAUTHENTICATED", "expired")
            for _ in range(3):  # the new key's stream is still flowing
                await new.data()
        await rechecking.settle(0)
