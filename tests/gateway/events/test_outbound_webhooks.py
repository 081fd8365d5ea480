"""Outbound webhooks: a partner's receiver on loopback gets signed deliveries of the events its
client may see, retried with backoff, durable across a restart; private addresses are refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.models import DomainEvent, EventType
from gateway.app import create_app
from gateway.auth.clients import Client, MemoryClientStore
from gateway.auth.keys import Environment
from gateway.config import GatewayConfig, WebhooksConfig
from gateway.events.bus import MemoryBus
from gateway.events.endpoints_store import (
    Delivery,
    DeliveryStatus,
    EndpointStatus,
    MemoryWebhookStore,
    RedisWebhookStore,
)
from gateway.events.outbound import (
    AddressRefused,
    OutboundWebhooks,
    WebhookError,
    address_allowed,
    check_url,
    resolve_allowed,
)
from gateway.kernel.permissions import enforce_scopes
from gateway.runtime import Runtime
from resolvers.admin import AdminMutations, AdminQueries
from resolvers.facilities import FacilityQueries
from resolvers.quotas import QuotaQueries
from resolvers.webhooks import WebhookMutations, WebhookQueries
from tests.support.servers import serve
from tests.support.waiting import wait_until


FAST = (0.05, 0.1, 0.2)


# --- a partner's receiver ----------------------------------------------------------------------


@dataclass
class Receiver:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: statuses to answer, in order; `default` once they run out
    script: list[int] = field(default_factory=list)
    default: int = 200

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = (await request.body()).decode()
            self.requests.append({"headers": dict(request.headers), "body": body, "at": time.monotonic(),
                                  "path": request.url.path})
            status = self.script.pop(0) if self.script else self.default
            return Response(status_code=status)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} requests, expected {count}"
            await asyncio.sleep(0.01)


@asynccontextmanager
async def receiver(**kwargs: Any) -> AsyncIterator[Receiver]:
    r = Receiver(**kwargs)
    async with serve(r.app()) as url:
        r.url = url + "/hooks"
        yield r


def verify(secret: str, headers: dict[str, str], body: str) -> bool:
    """Standard Webhooks verification, written independently of the gateway's code."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(sig == f"v1,{expected}" for sig in headers["webhook-signature"].split(" "))


def event(type_: EventType = EventType.VEHICLE_ENTERED, facility: str | None = "berlin-hbf",
          **payload: Any) -> DomainEvent:
    now = datetime.now(UTC)
    return DomainEvent(id=f"ev_{secrets.token_hex(6)}", type=type_, system_id="apds-berlin", facility_id=facility,
                       occurred_at=now, received_at=now, vendor_event_id=secrets.token_hex(4),
                       payload=payload or {"plate": "B-XY 1234"})


async def a_client(store: MemoryClientStore, scopes: tuple[str, ...] = ("webhooks:write", "enforcement:read"),
                   facilities: tuple[str, ...] | None = None) -> Client:
    client = Client(id=f"cl_{secrets.token_hex(4)}", name=f"partner-{secrets.token_hex(3)}", environment=Environment.TEST,
                    scopes=frozenset(scopes), facilities=None if facilities is None else frozenset(facilities),
                    created_at=datetime.now(UTC))
    await store.save_client(client)
    return client


@pytest.fixture
def config(bed: Any) -> GatewayConfig:
    """The sandbox's configuration: loopback is allow-listed, plain http allowed."""
    return bed.sandbox.config


@asynccontextmanager
async def service(config: GatewayConfig, clients: MemoryClientStore | None = None, **kwargs: Any
                  ) -> AsyncIterator[OutboundWebhooks]:
    kwargs.setdefault("schedule", FAST)
    kwargs.setdefault("poll_s", 0.02)
    kwargs.setdefault("store", MemoryWebhookStore())
    hooks = OutboundWebhooks(config, MemoryBus(), clients or MemoryClientStore(), **kwargs)
    await hooks.start()
    try:
        yield hooks
    finally:
        await hooks.stop()


# --- delivery, signature, filters ------------------------------------------------------------------


async def test_delivers_signed_events_of_the_registered_types_with_plates_masked(config: GatewayConfig) -> None:
    clients = MemoryClientStore()
    partner = await a_client(clients)
    async with receiver() as r, service(config, clients) as hooks:
        endpoint = await hooks.register("test", partner.id, r.url, ["VEHICLE_ENTERED"])
        assert endpoint.secret.startswith("whsec_") and len(base64.b64decode(endpoint.secret[6:])) >= 24
        await hooks.bus.publish(event(EventType.OCCUPANCY_CHANGED, free=3))
        entered = event(EventType.VEHICLE_ENTERED, plate="B-XY 1234")
        await hooks.bus.publish(entered)
        await r.wait_for(1)
        await asyncio.sleep(0.1)
        assert len(r.requests) == 1, "only the registered event type is delivered"
        request = r.requests[0]
        headers, body = request["headers"], request["body"]
        assert request["path"] == "/hooks"
        assert headers["content-type"] == "application/json"
        assert verify(endpoint.secret, headers, body)
        assert not verify("whsec_" + base64.b64encode(b"x" * 24).decode(), headers, body)
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 10
        sent = orjson.loads(body)
        assert sent["type"] == "VEHICLE_ENTERED"
        assert sent["timestamp"].endswith("Z")
        assert sent["data"]["id"] == entered.id and sent["data"]["facilityId"] == "berlin-hbf"
        assert sent["data"]["payload"]["plate"] == "B-•••34", "no pii:read: the plate is masked"
        await wait_until(lambda: _status(hooks, endpoint.id, DeliveryStatus.DELIVERED))
        [delivery] = await hooks.store.deliveries(endpoint.id, 10)
        assert delivery.id == headers["webhook-id"] and delivery.attempts == 1 and delivery.last_status_code == 200


async def _status(hooks: OutboundWebhooks, endpoint_id: str, status: DeliveryStatus, count: int = 1) -> bool:
    found = await hooks.store.deliveries(endpoint_id, 10)
    return len(found) >= count and all(d.status is status for d in found)


async def test_tenancy_and_pii_follow_the_endpoints_client(config: GatewayConfig) -> None:
    clients = MemoryClientStore()
    berlin = await a_client(clients, ("webhooks:write", "enforcement:read", "pii:read"), facilities=("berlin-hbf",))
    async with receiver() as r, service(config, clients) as hooks:
        endpoint = await hooks.register("test", berlin.id, r.url, ["VEHICLE_ENTERED"])
        await hooks.bus.publish(event(facility="hamburg-elbe"))
        await hooks.bus.publish(event(facility=None))
        await hooks.bus.publish(event(facility="berlin-hbf", plate="B-XY 1234"))
        await r.wait_for(1)
        await asyncio.sleep(0.1)
        assert len(r.requests) == 1, "only events at the client's facilities"
        sent = orjson.loads(r.requests[0]["body"])
        assert sent["data"]["facilityId"] == "berlin-hbf"
        assert sent["data"]["payload"]["plate"] == "B-XY 1234", "pii:read: the plate is sent as is"
        assert verify(endpoint.secret, r.requests[0]["headers"], r.requests[0]["body"])


async def test_the_same_event_seen_twice_is_delivered_once(config: GatewayConfig) -> None:
    clients = MemoryClientStore()
    partner = await a_client(clients)
    async with receiver() as r, service(config, clients) as hooks:
        await hooks.register("test", partner.id, r.url, ["VEHICLE_ENTERED"])
        e = event()
        assert len(await hooks.on_event(e)) == 1
        assert await hooks.on_event(e) == [], "another replica saw it too: no second delivery"
        await r.wait_for(1)
        await asyncio.sleep(0.1)
        assert len(r.requests) == 1


# --- retries, 410, persistent failure ---------------------------------------------------------------


async def test_retries_with_growing_delays_until_it_lands(config: GatewayConfig) -> None:
    clients = MemoryClientStore()
    partner = await a_client(clients)
    async with receiver(script=[500, 503]) as r, service(config, clients, schedule=(0.1, 0.3, 1.0), jitter=0.1) as hooks:
        endpoint = await hooks.register("test", partner.id, r.url, ["VEHICLE_ENTERED"])
        await hooks.bus.publish(event())
        await r.wait_for(3)
        ids = {req["headers"]["webhook-id"] for req in r.requests}
        assert len(ids) == 1, "every attempt carries the same webhook-id"
        assert all(verify(endpoint.secret, req["headers"], req["body"]) for req in r.requests)
        gaps = [b["at"] - a["at"] for a, b in zip(r.requests, r.requests[1:])]
        assert 0.08 <= gaps[0] < 0.3 and 0.25 <= gaps[1] < 0.6, gaps
        await wait_until(lambda: _status(hooks, endpoint.id, DeliveryStatus.DELIVERED))
        [delivery] = await hooks.store.deliveries(endpoint.id, 10)
        assert delivery.attempts == 3 and delivery.last_status_code == 200
        assert (await hooks.store.endpoint(endpoint.id)).status is EndpointStatus.ACTIVE  # type: ignore[union-attr]


async def test_410_gone_disables_the_endpoint(config: GatewayConfig) -> None:
    clients = MemoryClientStore()
    partner = await a_client(clients)
    async with receiver(default=410) as r, service(config, clients) as hooks:
        endpoint = await hooks.register("test", partner.id, r.url, ["VEHICLE_ENTERED"])
        await hooks.bus.publish(event())
        await wait_until(lambda: _status(hooks, endpoint.id, DeliveryStatus.FAILED))
        after = await hooks.store.endpoint(endpoint.id)
        assert after is not None and after.status is EndpointStatus.DISABLED and "410" in (after.disabled_reason or "")
        await hooks.bus.publish(event())
        await asyncio.sleep(0.2)
        assert len(r.requests) == 1, "a disabled endpoint gets nothing more"
        audit = [a for a in await clients.audit() if a.action == "webhook.disable"]
        assert audit and "secret" not in (audit[0].after or {})


async def test_persistent_failure_fails_deliveries_then_disables_the_endpoint(config: GatewayConfig) -> None:
    clients = MemoryClientStore()
    partner = await a_client(clients)
    async with receiver(default=500) as r, service(config, clients, schedule=(0.02, 0.02), disable_after=2) as hooks:
        endpoint = await hooks.register("test", partner.id, r.url, ["VEHICLE_ENTERED"])
        await hooks.bus.publish(event())
        await wait_until(lambda: _status(hooks, endpoint.id, DeliveryStatus.FAILED))
        [first] = await hooks.store.deliveries(endpoint.id, 10)
        assert first.attempts == 3 and first.last_status_code == 500 and first.last_error == "HTTP 500"
        assert (await hooks.store.endpoint(endpoint.id)).failure_count == 1  # type: ignore[union-attr]
        await hooks.bus.publish(event())
        await wait_until(lambda: _status(hooks, endpoint.id, DeliveryStatus.FAILED, count=2))
        after = await hooks.store.endpoint(endpoint.id)
        assert after is not None and after.status is EndpointStatus.DISABLED and after.failure_count == 2
        assert len(r.requests) == 6


async def test_an_unreachable_endpoint_is_retried_like_a_failing_one(config: GatewayConfig) -> None:
    clients = MemoryClientStore()
    partner = await a_client(clients)
    async with receiver() as r:
        dead_url = r.url
    async with service(config, clients, schedule=(0.02,)) as hooks:
        endpoint = await hooks.register("test", partner.id, dead_url, ["VEHICLE_ENTERED"])
        await hooks.bus.publish(event())
        await wait_until(lambda: _status(hooks, endpoint.id, DeliveryStatus.FAILED))
        [delivery] = await hooks.store.deliveries(endpoint.id, 10)
        assert delivery.attempts == 2 and delivery.last_status_code is None and "Connect" in (delivery.last_error or "")


# --- durability -------------------------------------------------------------------------------


async def test_a_pending_delivery_survives_a_restart_with_redis(config: GatewayConfig, redis_url: str) -> None:
    prefix = f"test-{secrets.token_hex(4)}:"
    clients = MemoryClientStore()
    partner = await a_client(clients)
    async with receiver(default=500) as r:
        async with service(config, clients, store=RedisWebhookStore.from_url(redis_url, prefix=prefix),
                           schedule=(0.5, 0.5), jitter=0) as first:
            endpoint = await first.register("test", partner.id, r.url, ["VEHICLE_ENTERED"])
            await first.bus.publish(event())
            await r.wait_for(1)
            await asyncio.sleep(0.05)
        await first.store.aclose()  # the gateway is gone; the delivery waits in Redis
        r.default = 200
        store = RedisWebhookStore.from_url(redis_url, prefix=prefix)
        [pending] = await store.deliveries(endpoint.id, 10)
        assert pending.status is DeliveryStatus.PENDING and pending.attempts == 1
        async with service(config, clients, store=store, schedule=(0.5, 0.5)) as second:
            await r.wait_for(2)
            await wait_until(lambda: _status(second, endpoint.id, DeliveryStatus.DELIVERED))
            [done] = await store.deliveries(endpoint.id, 10)
            assert done.attempts == 2 and r.requests[0]["headers"]["webhook-id"] == r.requests[1]["headers"]["webhook-id"]
            assert verify(endpoint.secret, r.requests[1]["headers"], r.requests[1]["body"])
        await store.aclose()


async def test_a_delivery_claimed_by_a_crashed_worker_is_sent_after_its_lease(redis_url: str) -> None:
    store = RedisWebhookStore.from_url(redis_url, prefix=f"test-{secrets.token_hex(4)}:")
    d = Delivery(id="msg_1", endpoint_id="we_1", client_id="cl_1", event_id="ev", event_type="VEHICLE_ENTERED",
                 body="{}", created_at=datetime.now(UTC))
    assert await store.create_delivery(d, 100.0)
    assert not await store.create_delivery(d, 100.0)
    assert await store.claim_due(200.0, 60.0, 10) == ["msg_1"]
    assert await store.claim_due(200.0, 60.0, 10) == [], "claimed: no other worker gets it"
    assert await store.claim_due(261.0, 60.0, 10) == ["msg_1"], "the lease ran out: due again"
    await store.aclose()


# --- server-side request forgery -----------------------------------------------------------------


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "127.0.0.1", "::1", "192.168.1.1", "172.16.0.1",
                                     "100.64.0.1", "224.0.0.1", "0.0.0.0", "::ffff:10.0.0.1", "fd00::1", "fe80::1"])
def test_private_and_special_addresses_are_refused_without_an_allow_list(address: str) -> None:
    assert not address_allowed(address, WebhooksConfig())


def test_public_and_allow_listed_addresses_pass() -> None:
    assert address_allowed("93.184.216.34", WebhooksConfig())
    assert address_allowed("2606:4700::1111", WebhooksConfig())
    allow = WebhooksConfig(allow_networks=["10.1.0.0/16", "::1/128"])
    assert address_allowed("10.1.2.3", allow) and address_allowed("::1", allow)
    assert not address_allowed("10.2.0.1", allow)


async def test_hosts_resolving_to_private_addresses_are_refused() -> None:
    strict = WebhooksConfig()
    for host in ("10.0.0.1", "169.254.169.254", "localhost", "127.0.0.1"):
        with pytest.raises(AddressRefused):
            await resolve_allowed(host, 443, strict)
    with pytest.raises(AddressRefused, match="does not resolve"):
        await resolve_allowed("no-such-host.invalid", 443, strict)
    assert await resolve_allowed("127.0.0.1", 80, WebhooksConfig(allow_networks=["127.0.0.0/8"])) == "127.0.0.1"


@pytest.mark.parametrize(("url", "message"), [
    ("http://example.com/hook", "https://"),
    ("ftp://example.com/hook", "https://"),
    ("https:///hook", "no host"),
    ("https://user:pw@example.com/hook", "credentials"),
    ("https://example.com:99999/", "not valid"),
])
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(WebhookError, match=message) as caught:
        check_url(url, WebhooksConfig())
    assert caught.value.code == "BAD_USER_INPUT"


async def test_registration_and_delivery_refuse_private_addresses(config: GatewayConfig) -> None:
    strict = config.model_copy(update={"webhooks": WebhooksConfig(https_only=False)})
    clients = MemoryClientStore()
    partner = await a_client(clients)
    async with receiver() as r:
        async with service(strict, clients) as hooks:
            for url in ("http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://localhost:8080/", r.url):
                with pytest.raises(WebhookError, match="may not reach") as caught:
                    await hooks.register("test", partner.id, url, ["VEHICLE_ENTERED"])
                assert caught.value.code == "BAD_USER_INPUT"
        # registered while loopback was allowed; the allow list is gone when it is delivered
        store = MemoryWebhookStore()
        async with service(config, clients, store=store) as lenient:
            endpoint = await lenient.register("test", partner.id, r.url, ["VEHICLE_ENTERED"])
        async with service(strict, clients, store=store, schedule=(0.02,)) as hooks:
            await hooks.bus.publish(event())
            await wait_until(lambda: _status(hooks, endpoint.id, DeliveryStatus.FAILED))
            [delivery] = await store.deliveries(endpoint.id, 10)
            assert "may not reach" in (delivery.last_error or "") and delivery.last_status_code is None
        assert r.requests == [], "nothing was sent to a refused address"


# --- GraphQL -----------------------------------------------------------------------------------


@strawberry.type
class Query(FacilityQueries, QuotaQueries, AdminQueries, WebhookQueries):
    pass


@strawberry.type
class Mutation(AdminMutations, WebhookMutations):
    pass


@pytest.fixture(scope="module")
def webhook_schema() -> strawberry.Schema:
    built = strawberry.Schema(query=Query, mutation=Mutation)
    enforce_scopes(built)
    return built


REGISTER = """mutation($url: String!, $types: [String!]!, $client: ID) {
  registerWebhook(url: $url, eventTypes: $types, clientId: $client) { secret endpoint { id clientId url eventTypes status } }
}"""


async def test_graphql_register_list_log_and_disable(bed: Any, webhook_schema: strawberry.Schema) -> None:
    runtime = Runtime.from_config(bed.sandbox.config)
    app = create_app(runtime, webhook_schema)
    async with serve(app) as base, receiver() as r, httpx.AsyncClient(base_url=base, timeout=10) as http:
        hooks = runtime.outbound
        hooks.poll_s = 0.02
        partner = await runtime.admin.create_client("test", name="partner-a", environment=Environment.TEST,
                                                    scopes=["webhooks:write", "enforcement:read"], facilities=["berlin-hbf"])
        other = await runtime.admin.create_client("test", name="partner-b", environment=Environment.TEST,
                                                  scopes=["webhooks:read", "hospitality:read"])
        admin = await runtime.admin.create_client("test", name="ops", environment=Environment.TEST, scopes=["admin"])

        async def gql(issued: Any, query: str, **variables: Any) -> dict[str, Any]:
            response = await http.post("/graphql", json={"query": query, "variables": variables},
                                       headers={"authorization": f"Bearer {issued.key}"})
            assert response.status_code == 200, response.text
            return response.json()

        answer = await gql(partner, REGISTER, url=r.url, types=["VEHICLE_ENTERED"])
        registered = answer["data"]["registerWebhook"]
        assert registered is not None, answer
        assert registered["secret"].startswith("whsec_")
        endpoint = registered["endpoint"]
        assert endpoint["clientId"] == partner.client.id and endpoint["status"] == "ACTIVE"

        bad = await gql(partner, REGISTER, url="http://10.0.0.1/x", types=["VEHICLE_ENTERED"])
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT" and "may not reach" in bad["errors"][0]["message"]
        bad = await gql(partner, REGISTER, url=r.url, types=["NOPE"])
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        denied = await gql(other, REGISTER, url=r.url, types=["VEHICLE_ENTERED"])
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        denied = await gql(partner, REGISTER, url=r.url, types=["VEHICLE_ENTERED"], client=other.client.id)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN", "only admin registers for another client"
        for_other = await gql(admin, REGISTER, url=r.url, types=["GUEST_BOOKED"], client=other.client.id)
        assert for_other["data"]["registerWebhook"]["endpoint"]["clientId"] == other.client.id

        await runtime.bus.publish(event(plate="B-XY 1234"))
        await r.wait_for(1)
        assert verify(registered["secret"], r.requests[0]["headers"], r.requests[0]["body"])

        listed = await gql(partner, "{ webhookEndpoints { id url failureCount } }")
        assert [e["id"] for e in listed["data"]["webhookEndpoints"]] == [endpoint["id"]]
        assert "secret" not in str(listed)
        everyone = await gql(admin, "{ webhookEndpoints { id clientId } }")
        assert len(everyone["data"]["webhookEndpoints"]) == 2

        log_query = "query($id: ID!) { webhookDeliveries(endpointId: $id, first: 5) { id eventType status attempts lastStatusCode } }"

        async def delivered() -> bool:
            found = (await gql(partner, log_query, id=endpoint["id"]))["data"]["webhookDeliveries"]
            return bool(found) and found[0]["status"] == "DELIVERED"

        await wait_until(delivered)
        hidden = await gql(other, log_query, id=endpoint["id"])
        assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND", "another client's log looks absent"

        disabled = await gql(partner, "mutation($id: ID!) { disableWebhook(id: $id) { status disabledReason } }",
                             id=endpoint["id"])
        assert disabled["data"]["disableWebhook"]["status"] == "DISABLED"
        actions = [a.action for a in await runtime.store.audit() if a.client_id == partner.client.id]
        assert "webhook.register" in actions and "webhook.disable" in actions


async def test_the_sandbox_worker_runs_from_the_event_path(bed: Any) -> None:
    runtime = bed.sandbox.runtime
    hooks = runtime.outbound
    assert hooks is bed.app.state.events.outbound
    assert hooks._tasks, "started by the app's event path"
    async with receiver() as r:
        endpoint = await hooks.register("test", bed.sandbox.clients["admin"]["id"], r.url, ["CITATION_ISSUED"])
        try:
            await runtime.bus.publish(event(EventType.CITATION_ISSUED, citation_number="C-1"))
            await r.wait_for(1)
            assert verify(endpoint.secret, r.requests[0]["headers"], r.requests[0]["body"])
        finally:
            await hooks.disable("test", endpoint.id)


async def test_event_types_need_the_scope_of_their_data(bed: Any) -> None:
    """A partner with only webhooks:write cannot have citations or vehicles pushed to it."""
    clients = MemoryClientStore()
    partner = await a_client(clients, ("webhooks:write",))
    async with service(bed.sandbox.config, clients) as hooks:
        with pytest.raises(WebhookError) as refused:
            await hooks.register("test", partner.id, "http://127.0.0.1:9/hook", ["VEHICLE_ENTERED"])
    assert refused.value.code == "FORBIDDEN" and "enforcement:read" in refused.value.message


def test_ipv6_forms_of_private_ipv4_are_refused() -> None:
    closed = WebhooksConfig()
    for address in ("::ffff:10.0.0.1", "2002:7f00:1::1", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe"):
        assert not address_allowed(address, closed), address
    assert address_allowed("2606:4700:4700::1111", closed)
