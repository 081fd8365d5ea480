"""Outbound webhooks: partners register an endpoint for event types; every DomainEvent on the bus
that the endpoint's client may see becomes a signed delivery, retried until it lands.

Read forward: `OutboundWebhooks.register` (URL and address checks, secret shown once) →
`_on_event` (per ACTIVE endpoint: event type, tenancy, PII masking → a PENDING delivery,
scheduled now) → `_dispatch_loop` (claims due deliveries) → `_attempt` (re-checks the address,
pins the connection to it, signs per Standard Webhooks, POSTs) → `_settle` (2xx DELIVERED; 410
disables the endpoint; else retry with backoff and jitter, FAILED after the last attempt, and the
endpoint DISABLED after `disable_after` deliveries in a row failed for good).

Signing (https://www.standardwebhooks.com): headers `webhook-id` (the delivery id, the same on
every attempt), `webhook-timestamp` (epoch seconds of this attempt) and `webhook-signature:
v1,<base64 HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")>`, where the secret is the base64
part of `whsec_<base64>`.

Server-side request forgery: the URL's host is resolved at registration and again at every
attempt; every address it resolves to must be public, unless it lies in `webhooks.allow_networks`.
The request then goes to the checked address (Host header and TLS name stay the host's), so a
DNS answer that changes between the check and the connection cannot redirect it. Redirects are
not followed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import random
import secrets
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import orjson
from opentelemetry.trace import SpanKind

from adapters.models import DomainEvent, EventType
from gateway.auth.clients import AuditEntry, Client, ClientStatus, ClientStore
from gateway.auth.scopes import event_scope
from gateway.card_numbers import new_id
from gateway.config import GatewayConfig, WebhooksConfig
from gateway.errors import STORE_ERRORS
from gateway.events.bus import BusSubscription, EventBus
from gateway.events.endpoints_store import (
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointStatus,
    MemoryWebhookStore,
    RedisWebhookStore,
    WebhookStore,
    epoch_to_dt,
    now_epoch,
)
from gateway.kernel.pii import mask
from gateway.observability import Observability

log = logging.getLogger("parkgate.webhooks.outbound")

#: seconds before each retry (Standard Webhooks' suggestion): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h ≈ 27 h
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
#: each delay is stretched or shrunk by up to this fraction at random, so retries do not stampede
JITTER = 0.2
#: deliveries in a row that fail for good before the endpoint is disabled
DISABLE_AFTER = 5
MAX_ENDPOINTS_PER_CLIENT = 20
MAX_URL_LENGTH = 2000
#: personal data in event payloads, masked for clients without pii:read
PII_FIELDS = frozenset({"plate", "guest_name", "car_registration"})


class WebhookError(Exception):
    """A request about webhooks that cannot be carried out; `code` is from the error catalog."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AddressRefused(Exception):
    """The URL's host resolves to an address webhooks may not reach."""


# --- server-side request forgery ----------------------------------------------------------


def _networks(config: WebhooksConfig) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in config.allow_networks]


def address_allowed(address: str, config: WebhooksConfig) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo's client) are judged by it.
        wrapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if wrapped is not None:
            ip = wrapped
    if any(ip in network for network in _networks(config)):
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def check_url(url: str, config: WebhooksConfig) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL; WebhookError BAD_USER_INPUT otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookError("BAD_USER_INPUT", f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookError("BAD_USER_INPUT", f"the URL is not valid: {exc}") from None
    schemes = ("https",) if config.https_only else ("https", "http")
    if parts.scheme not in schemes:
        raise WebhookError("BAD_USER_INPUT", f"the URL must start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname:
        raise WebhookError("BAD_USER_INPUT", "the URL has no host")
    if parts.username or parts.password:
        raise WebhookError("BAD_USER_INPUT", "the URL must not carry credentials")
    if parts.fragment:
        raise WebhookError("BAD_USER_INPUT", "the URL must not have a fragment")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve_allowed(host: str, port: int, config: WebhooksConfig) -> str:
    """The address to connect to; AddressRefused when the host does not resolve or any address
    it resolves to is private, loopback, link-local, multicast or reserved and not allow-listed."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"the host {host!r} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise AddressRefused(f"the host {host!r} does not resolve")
    refused = [a for a in addresses if not address_allowed(a, config)]
    if refused:
        raise AddressRefused(
            f"the host {host!r} resolves to {refused[0]}, a private, loopback, link-local, multicast or reserved "
            "address, which webhooks may not reach (unless listed in webhooks.allow_networks)"
        )
    return addresses[0]


# --- signing --------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery_id(endpoint_id: str, event_id: str) -> str:
    """The same for every replica that sees the event, so the event is delivered once per endpoint."""
    return "msg_" + hashlib.sha256(f"{endpoint_id}\n{event_id}".encode()).hexdigest()[:24]


# --- what a client may see ------------------------------------------------------------------


def visible_to(client: Client, event: DomainEvent) -> bool:
    if client.status is not ClientStatus.ACTIVE:
        return False
    if event_scope(event.type.value).value not in client.scopes:
        return False  # checked again at delivery: scopes may have been taken away since registration
    if client.facilities is None:
        return True
    return event.facility_id is not None and event.facility_id in client.facilities


def event_body(event: DomainEvent, client: Client) -> str:
    pii = "pii:read" in client.scopes
    payload = {
        key: (mask(value) if key in PII_FIELDS and isinstance(value, str) and not pii else value)
        for key, value in event.payload.items()
    }
    data = {
        "id": event.id,
        "facilityId": event.facility_id,
        "zoneId": event.zone_id,
        "occurredAt": event.occurred_at,
        "receivedAt": event.received_at,
        "revision": event.revision,
        "payload": payload,
    }
    body = {"type": event.type.value, "timestamp": event.occurred_at or event.received_at, "data": data}
    return orjson.dumps(body, default=str, option=orjson.OPT_UTC_Z).decode()


# --- the service ----------------------------------------------------------------------------


def build_webhook_store(config: GatewayConfig) -> WebhookStore:
    if config.store.backend == "redis":
        assert config.store.redis_url is not None
        return RedisWebhookStore.from_url(config.store.redis_url, prefix=config.store.prefix,
                                          timeout_s=2.0, connect_timeout_s=2.0)
    return MemoryWebhookStore()


class OutboundWebhooks:
    def __init__(
        self,
        config: GatewayConfig,
        bus: EventBus,
        clients: ClientStore,
        store: WebhookStore | None = None,
        *,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        jitter: float = JITTER,
        disable_after: int = DISABLE_AFTER,
        poll_s: float = 1.0,
        lease_s: float = 60.0,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        max_in_flight: int = 16,
        observability: Observability | None = None,
    ) -> None:
        self.config = config
        #: deliveries counted by outcome; with tracing on, each attempt a CLIENT span carrying `traceparent`
        self.metrics = observability.metrics if observability is not None else None
        self.tracing = observability.tracing if observability is not None else None
        self.bus = bus
        self.clients = clients
        self.store = store or build_webhook_store(config)
        self.schedule = tuple(schedule)
        self.jitter = jitter
        self.disable_after = disable_after
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._subscription: BusSubscription | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def settings(self) -> WebhooksConfig:
        return self.config.webhooks

    # --- registration -----------------------------------------------------------------

    async def register(self, actor: str, client_id: str, url: str, event_types: Sequence[str]) -> Endpoint:
        client = await self.clients.client(client_id)
        if client is None:
            raise WebhookError("NOT_FOUND", f"no client {client_id!r}")
        if client.status is not ClientStatus.ACTIVE:
            raise WebhookError("CONFLICT", "a revoked client cannot register webhooks")
        known = {t.value for t in EventType}
        if not event_types:
            raise WebhookError("BAD_USER_INPUT", "give at least one event type")
        unknown = sorted(set(event_types) - known)
        if unknown:
            raise WebhookError("BAD_USER_INPUT", f"unknown event type {unknown[0]!r}; known: {', '.join(sorted(known))}")
        lacking = sorted({event_scope(t).value for t in event_types} - client.scopes)
        if lacking:
            raise WebhookError("FORBIDDEN", f"these event types need scope {', '.join(lacking)}, which the client does not have")
        _, host, port = check_url(url, self.settings)
        try:
            await resolve_allowed(host, port, self.settings)
        except AddressRefused as exc:
            raise WebhookError("BAD_USER_INPUT", str(exc)) from None
        active = [e for e in await self.store.endpoints(client_id) if e.status is EndpointStatus.ACTIVE]
        if len(active) >= MAX_ENDPOINTS_PER_CLIENT:
            raise WebhookError("CONFLICT", f"a client may have at most {MAX_ENDPOINTS_PER_CLIENT} active endpoints")
        endpoint = Endpoint(id=new_id("we"), client_id=client_id, url=url,
                            event_types=frozenset(event_types), secret=new_secret(), created_at=datetime.now(UTC))
        await self.store.save_endpoint(endpoint)
        await self._audit(actor, "webhook.register", endpoint, None, endpoint)
        return endpoint

    async def disable(self, actor: str, endpoint_id: str, reason: str = "disabled by request") -> Endpoint:
        before = await self.store.endpoint(endpoint_id)
        if before is None:
            raise WebhookError("NOT_FOUND", f"no webhook endpoint {endpoint_id!r}")
        if before.status is EndpointStatus.DISABLED:
            return before
        after = before.with_changes(status=EndpointStatus.DISABLED, disabled_at=datetime.now(UTC),
                                    disabled_reason=reason)
        await self.store.save_endpoint(after)
        await self._audit(actor, "webhook.disable", after, before, after)
        return after

    async def _audit(self, actor: str, action: str, endpoint: Endpoint, before: Endpoint | None,
                     after: Endpoint | None) -> None:
        try:
            await self.clients.append_audit(AuditEntry(
                id=new_id("au"), at=datetime.now(UTC), actor=actor, action=action,
                client_id=endpoint.client_id, before=before.public() if before else None,
                after=after.public() if after else None,
            ))
        except STORE_ERRORS as exc:  # Redis went away after the change was stored: an outage, not a bug
            log.warning("could not write the audit entry for %s of %s (%s)", action, endpoint.id, exc)
        except Exception:  # a lost audit line must not undo the change (logged)
            log.exception("could not write the audit entry for %s of %s", action, endpoint.id)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            return
        self._subscription = self.bus.subscribe()
        self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False)
        self._tasks = [asyncio.create_task(self._consume_loop(self._subscription), name="webhooks-consume"),
                       asyncio.create_task(self._dispatch_loop(), name="webhooks-dispatch")]

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.aclose()
            self._subscription = None
        for task in [*self._tasks, *self._sending]:
            task.cancel()
        for task in [*self._tasks, *self._sending]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._sending.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def aclose(self) -> None:
        await self.stop()
        await self.store.aclose()

    # --- events → deliveries ------------------------------------------------------------

    async def _consume_loop(self, subscription: BusSubscription) -> None:
        async for event in subscription:
            try:
                await self.on_event(event)
            except STORE_ERRORS as exc:  # Redis unreachable: a warning, no traceback
                log.warning("webhooks: could not queue deliveries for event %s (%s)", event.id, exc)
            except Exception:  # one bad event (or a Redis blip) must not stop the worker
                log.exception("could not make deliveries for event %s", event.id)

    async def on_event(self, event: DomainEvent) -> list[Delivery]:
        """A PENDING delivery for every ACTIVE endpoint whose client may see `event`."""
        made: list[Delivery] = []
        clients: dict[str, Client | None] = {}
        for endpoint in await self.store.endpoints():
            if endpoint.status is not EndpointStatus.ACTIVE or event.type.value not in endpoint.event_types:
                continue
            if endpoint.client_id not in clients:
                clients[endpoint.client_id] = await self.clients.client(endpoint.client_id)
            client = clients[endpoint.client_id]
            if client is None or not visible_to(client, event):
                continue
            now = now_epoch()
            delivery = Delivery(
                id=delivery_id(endpoint.id, event.id), endpoint_id=endpoint.id, client_id=client.id,
                event_id=event.id, event_type=event.type.value, body=event_body(event, client),
                created_at=epoch_to_dt(now), next_attempt_at=epoch_to_dt(now), traceparent=event.traceparent,
            )
            if await self.store.create_delivery(delivery, now):
                made.append(delivery)
        if made:
            self._wake.set()
        return made

    # --- sending ------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        failing = False
        while True:
            try:
                due = await self.store.claim_due(now_epoch(), self.lease_s, 100)
                if failing:
                    log.warning("webhooks: the delivery schedule can be read again")
                failing = False
            except Exception as exc:  # noqa: BLE001 — the store may be briefly unreachable; try again
                if not failing:  # once per outage, without a traceback: it is not a bug of ours
                    log.warning("webhooks: cannot read the delivery schedule (%s); retrying", exc)
                failing = True
                due = []
            for delivery_id_ in due:
                await self._slots.acquire()
                task = asyncio.create_task(self._send(delivery_id_))
                self._sending.add(task)
                task.add_done_callback(self._sent)
            if len(due) >= 100:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._slots.release()

    async def _send(self, delivery_id_: str) -> None:
        try:
            await self.attempt(delivery_id_)
        except STORE_ERRORS as exc:  # the store: the lease runs out, it is tried again
            log.warning("webhook delivery %s: the store failed (%s); it will be tried again", delivery_id_, exc)
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("webhook delivery %s failed unexpectedly", delivery_id_)

    async def attempt(self, delivery_id_: str) -> Delivery | None:
        """One attempt at a (claimed) delivery, and what follows from its outcome."""
        delivery = await self.store.delivery(delivery_id_)
        if delivery is None or delivery.finished:
            return delivery
        endpoint = await self.store.endpoint(delivery.endpoint_id)
        if endpoint is None or endpoint.status is not EndpointStatus.ACTIVE:
            done = delivery.with_changes(status=DeliveryStatus.FAILED, next_attempt_at=None,
                                         last_error="the endpoint is disabled")
            await self.store.save_delivery(done, None)
            return done
        if self.tracing is None:
            status_code, error = await self._post(endpoint, delivery)
        else:
            with self.tracing.background(f"webhook {delivery.event_type}", delivery.traceparent,
                                         {"parkgate.delivery": delivery.id, "parkgate.endpoint": endpoint.id},
                                         kind=SpanKind.CLIENT) as span:
                status_code, error = await self._post(endpoint, delivery)
                if span is not None and status_code is not None:
                    span.set_attribute("http.response.status_code", status_code)
        return await self._settle(endpoint, delivery, status_code, error)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.webhook_deliveries.child(outcome).inc()

    async def _post(self, endpoint: Endpoint, delivery: Delivery) -> tuple[int | None, str | None]:
        try:
            scheme, host, port = check_url(endpoint.url, self.settings)
            address = await resolve_allowed(host, port, self.settings)
        except (WebhookError, AddressRefused) as exc:
            return None, getattr(exc, "message", None) or str(exc)
        timestamp = int(now_epoch())
        headers = {
            "content-type": "application/json",
            "user-agent": "parkgate-webhooks/1",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.secret, delivery.id, timestamp, delivery.body),
        }
        if self.tracing is not None:
            self.tracing.inject(headers)  # the delivery's span: the partner may continue the trace
        url = httpx.URL(endpoint.url)
        headers["host"] = url.netloc.decode("ascii")
        pinned = url.copy_with(host=address)
        extensions = {"sni_hostname": host} if scheme == "https" else {}
        http = self._http or httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False)
        try:
            response = await http.post(pinned, content=delivery.body.encode(), headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        finally:
            if http is not self._http:
                await http.aclose()
        return response.status_code, None if response.is_success else f"HTTP {response.status_code}"

    def _delay(self, attempts: int) -> float:
        base = self.schedule[attempts - 1]
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    async def _settle(self, endpoint: Endpoint, delivery: Delivery, status_code: int | None,
                      error: str | None) -> Delivery:
        now = now_epoch()
        tried = delivery.with_changes(attempts=delivery.attempts + 1, last_status_code=status_code,
                                      last_error=error, last_attempt_at=epoch_to_dt(now))
        if status_code is not None and 200 <= status_code < 300:
            done = tried.with_changes(status=DeliveryStatus.DELIVERED, delivered_at=epoch_to_dt(now),
                                      next_attempt_at=None, last_error=None)
            await self._endpoint_outcome(endpoint.id, ok=True)
            await self.store.save_delivery(done, None)
            self._count("delivered")
            return done
        if status_code == 410:
            done = tried.with_changes(status=DeliveryStatus.FAILED, next_attempt_at=None)
            await self.disable("webhooks", endpoint.id, "the endpoint answered 410 Gone")
            await self.store.save_delivery(done, None)
            self._count("gone")
            return done
        if tried.attempts <= len(self.schedule):
            due = now + self._delay(tried.attempts)
            retry = tried.with_changes(next_attempt_at=epoch_to_dt(due))
            await self.store.save_delivery(retry, due)
            self._count("retrying")
            log.info("webhook delivery %s to %s failed (%s); attempt %d in %.1f s",
                     delivery.id, endpoint.id, error, tried.attempts + 1, due - now)
            return retry
        done = tried.with_changes(status=DeliveryStatus.FAILED, next_attempt_at=None)
        log.warning("webhook delivery %s to %s failed for good after %d attempts (%s)",
                    delivery.id, endpoint.id, tried.attempts, error)
        # the endpoint first: should the process die in between, the delivery is retried, not lost
        await self._endpoint_outcome(endpoint.id, ok=False)
        await self.store.save_delivery(done, None)
        self._count("failed")
        return done

    async def _endpoint_outcome(self, endpoint_id: str, *, ok: bool) -> None:
        """Count deliveries in a row that failed for good; disable the endpoint at the limit.
        (A read-modify-write: two replicas settling at once may miscount by one.)"""
        endpoint = await self.store.endpoint(endpoint_id)
        if endpoint is None:
            return
        if ok:
            if endpoint.failure_count:
                await self.store.save_endpoint(endpoint.with_changes(failure_count=0))
            return
        failures = endpoint.failure_count + 1
        await self.store.save_endpoint(endpoint.with_changes(failure_count=failures))
        if failures >= self.disable_after and endpoint.status is EndpointStatus.ACTIVE:
            await self.disable("webhooks", endpoint_id, f"{failures} deliveries in a row failed")
