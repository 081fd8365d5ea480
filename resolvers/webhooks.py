"""Outbound webhooks over GraphQL: a partner registers endpoints for event types and reads its
delivery log; an admin may do so for any client.

A client manages its own endpoints with `webhooks:write` (and reads them with `webhooks:read`
or `webhooks:write`); `admin` reaches every client's. Everything goes through the
runtime's `OutboundWebhooks` (`runtime.outbound`, gateway/events/outbound.py), which writes the audit log.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from adapters.models import EventType
from gateway.auth.authenticate import Principal
from gateway.auth.scopes import Scope
from gateway.errors import ErrorCode, GatewayError, bad_input
from gateway.events.endpoints_store import Delivery, Endpoint
from gateway.events.outbound import WebhookError
from gateway.kernel.context import Info
from gateway.kernel.costs import list_size
from gateway.kernel.permissions import forbidden
from resolvers.common import MAX_PAGE_SIZE
from resolvers.writes import not_found

READ = frozenset({Scope.WEBHOOKS_READ.value, Scope.WEBHOOKS_WRITE.value, Scope.ADMIN.value})
WRITE = frozenset({Scope.WEBHOOKS_WRITE.value, Scope.ADMIN.value})


@strawberry.enum(description="ACTIVE endpoints receive deliveries; DISABLED ones (by request, 410 Gone or persistent failure) do not.")
class WebhookEndpointStatus(Enum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


@strawberry.enum(description="PENDING: being tried (again); DELIVERED: the endpoint answered 2xx; FAILED: given up.")
class WebhookDeliveryStatus(Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@strawberry.type(description="A partner's endpoint for outbound webhooks (signed per Standard Webhooks).")
class WebhookEndpoint:
    id: strawberry.ID = strawberry.field(description="The endpoint's id.")
    client_id: strawberry.ID = strawberry.field(description="The client whose events it receives.")
    url: str = strawberry.field(description="Where deliveries are POSTed.")
    event_types: list[str] = strawberry.field(description="The event types it receives.")
    status: WebhookEndpointStatus = strawberry.field(description="ACTIVE or DISABLED.")
    created_at: datetime = strawberry.field(description="When it was registered.")
    failure_count: int = strawberry.field(description="Deliveries in a row that failed for good.")
    disabled_at: datetime | None = strawberry.field(description="When it was disabled.")
    disabled_reason: str | None = strawberry.field(description="Why it was disabled.")

    @classmethod
    def of(cls, endpoint: Endpoint) -> WebhookEndpoint:
        return cls(id=strawberry.ID(endpoint.id), client_id=strawberry.ID(endpoint.client_id), url=endpoint.url,
                   event_types=sorted(endpoint.event_types), status=WebhookEndpointStatus(endpoint.status.value),
                   created_at=endpoint.created_at, failure_count=endpoint.failure_count,
                   disabled_at=endpoint.disabled_at, disabled_reason=endpoint.disabled_reason)


@strawberry.type(description="A new endpoint and its signing secret. The secret is shown this once and never again: store it now.")
class RegisteredWebhook:
    endpoint: WebhookEndpoint = strawberry.field(description="The endpoint.")
    secret: str = strawberry.field(
        description="`whsec_<base64>`: verify `webhook-signature` with HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, "
                    "keyed with the base64-decoded part after `whsec_`."
    )


@strawberry.type(description="One event on its way to an endpoint, with its attempts so far.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="The delivery's id, sent as `webhook-id` on every attempt.")
    endpoint_id: strawberry.ID = strawberry.field(description="The endpoint.")
    event_id: str = strawberry.field(description="The event delivered.")
    event_type: str = strawberry.field(description="Its type.")
    status: WebhookDeliveryStatus = strawberry.field(description="PENDING, DELIVERED or FAILED.")
    attempts: int = strawberry.field(description="Attempts made.")
    next_attempt_at: datetime | None = strawberry.field(description="When it is tried next (PENDING only).")
    last_attempt_at: datetime | None = strawberry.field(description="When it was last tried.")
    last_status_code: int | None = strawberry.field(description="The HTTP status of the last attempt; null when none came.")
    last_error: str | None = strawberry.field(description="What went wrong on the last attempt.")
    created_at: datetime = strawberry.field(description="When the event was queued for this endpoint.")
    delivered_at: datetime | None = strawberry.field(description="When the endpoint accepted it.")

    @classmethod
    def of(cls, d: Delivery) -> WebhookDelivery:
        return cls(id=strawberry.ID(d.id), endpoint_id=strawberry.ID(d.endpoint_id), event_id=d.event_id,
                   event_type=d.event_type, status=WebhookDeliveryStatus(d.status.value), attempts=d.attempts,
                   next_attempt_at=d.next_attempt_at, last_attempt_at=d.last_attempt_at,
                   last_status_code=d.last_status_code, last_error=d.last_error, created_at=d.created_at,
                   delivered_at=d.delivered_at)


def _coded(error: WebhookError) -> GatewayError:
    return GatewayError(ErrorCode(error.code), error.message)


def _admin(principal: Principal) -> bool:
    return Scope.ADMIN.value in principal.scopes


def _require(principal: Principal, field: str, allowed: frozenset[str]) -> None:
    """Any one of `allowed` will do (the @requiresScopes directive means all of them, so it is checked here)."""
    if not allowed & principal.scopes:
        raise forbidden(field, frozenset({min(allowed - {Scope.ADMIN.value} or allowed)}), allowed)


async def _owned(info: Info, endpoint_id: str, argument: str) -> Endpoint:
    """The endpoint, if this client may reach it; NOT_FOUND otherwise (another client's looks absent)."""
    principal = info.context.principal
    endpoint = await info.context.runtime.outbound.store.endpoint(endpoint_id)
    if endpoint is None or (not _admin(principal) and endpoint.client_id != principal.client_id):
        raise not_found("webhook endpoint", endpoint_id, argument)
    return endpoint


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Outbound webhook endpoints: the client's own (webhooks:read or webhooks:write); "
                                  "an admin sees every client's, or one client's with `clientId`.",
                      directives=list_size(assumed_size=20))
    async def webhook_endpoints(
        self,
        info: Info,
        client_id: Annotated[strawberry.ID | None, strawberry.argument(description="Admin only: this client's endpoints.")] = None,
    ) -> list[WebhookEndpoint] | None:
        principal = info.context.principal
        _require(principal, "Query.webhookEndpoints", READ)
        if not _admin(principal):
            if client_id is not None and str(client_id) != principal.client_id:
                raise forbidden("Query.webhookEndpoints", frozenset({Scope.ADMIN.value}), frozenset({Scope.ADMIN.value}))
            client_id = strawberry.ID(principal.client_id)
        found = await info.context.runtime.outbound.store.endpoints(None if client_id is None else str(client_id))
        return [WebhookEndpoint.of(e) for e in found]

    @strawberry.field(description="An endpoint's delivery log, newest first.",
                      directives=list_size(slicing_arguments=["first"]))
    async def webhook_deliveries(
        self,
        info: Info,
        endpoint_id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint.")],
        first: Annotated[int, strawberry.argument(description="How many deliveries, 1 to 100.")] = 20,
    ) -> list[WebhookDelivery] | None:
        _require(info.context.principal, "Query.webhookDeliveries", READ)
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise bad_input(f"`first` must be between 1 and {MAX_PAGE_SIZE}.", argument="first")
        endpoint = await _owned(info, str(endpoint_id), "endpointId")
        found = await info.context.runtime.outbound.store.deliveries(endpoint.id, first)
        return [WebhookDelivery.of(d) for d in found]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="Register an endpoint for event types (webhooks:write for the client's own; admin "
                                     "for any client with `clientId`). The signing secret is in the answer, once.")
    async def register_webhook(
        self,
        info: Info,
        url: Annotated[str, strawberry.argument(description="https:// URL on a public address; it is POSTed each event.")],
        event_types: Annotated[list[str], strawberry.argument(description=f"Event types, e.g. {EventType.VEHICLE_ENTERED.value}.")],
        client_id: Annotated[strawberry.ID | None, strawberry.argument(description="Admin only: register for this client.")] = None,
    ) -> RegisteredWebhook | None:
        ctx = info.context
        principal = ctx.principal
        if client_id is not None and str(client_id) != principal.client_id:
            _require(principal, "Mutation.registerWebhook", frozenset({Scope.ADMIN.value}))
        else:
            _require(principal, "Mutation.registerWebhook", frozenset({Scope.WEBHOOKS_WRITE.value}))
        owner = principal.client_id if client_id is None else str(client_id)
        try:
            endpoint = await ctx.runtime.outbound.register(principal.actor, owner, url, event_types)
        except WebhookError as exc:
            raise _coded(exc) from None
        return RegisteredWebhook(endpoint=WebhookEndpoint.of(endpoint), secret=endpoint.secret)

    @strawberry.mutation(description="Disable an endpoint: it receives nothing more; its pending deliveries fail.")
    async def disable_webhook(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The endpoint's id.")],
    ) -> WebhookEndpoint | None:
        ctx = info.context
        _require(ctx.principal, "Mutation.disableWebhook", WRITE)
        endpoint = await _owned(info, str(id), "id")
        try:
            return WebhookEndpoint.of(await ctx.runtime.outbound.disable(ctx.principal.actor, endpoint.id))
        except WebhookError as exc:
            raise _coded(exc) from None
