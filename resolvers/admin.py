"""Admin operations over GraphQL (scope `admin`): clients, keys and the audit log.

Every action goes through `gateway.admin.AdminService`, the same path as the CLI, so both
leave the same audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from gateway.admin import AdminError, IssuedKey
from gateway.auth.clients import AuditEntry, Client
from gateway.auth.keys import Environment
from gateway.auth.scopes import SCOPE_DESCRIPTIONS, Scope
from gateway.errors import ErrorCode, GatewayError, bad_input
from gateway.kernel.context import Info
from gateway.kernel.costs import list_size
from gateway.kernel.permissions import needs
from gateway.quotas import Plan, effective_plan
from resolvers.common import MAX_PAGE_SIZE
from resolvers.quotas import QuotaOverridesInput, QuotaPlan, QuotaUsage


@strawberry.enum(description="test keys (pk_test_…) work only on test gateways and the sandbox; live keys only on live gateways.")
class ClientEnvironment(Enum):
    TEST = "test"
    LIVE = "live"


@strawberry.enum(description="ACTIVE clients can call the API; REVOKED ones cannot, ever again.")
class ClientStatus(Enum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"


@strawberry.type(name="Client", description="A known caller of parkgate, with the least access it needs.")
class ClientNode:
    id: strawberry.ID = strawberry.field(description="The client's id; `client_id` for POST /oauth/token.")
    name: str = strawberry.field(description="Unique name.")
    environment: ClientEnvironment = strawberry.field(description="Which gateways its keys work on.")
    scopes: list[str] = strawberry.field(description="Scopes granted.")
    facilities: list[str] | None = strawberry.field(description="Facilities it may see; null means all.")
    plan: str = strawberry.field(description="Quota plan.")
    status: ClientStatus = strawberry.field(description="ACTIVE or REVOKED.")
    created_at: datetime = strawberry.field(description="When it was created.")
    rotated_at: datetime | None = strawberry.field(description="When its key was last rotated.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked.")
    contact: str | None = strawberry.field(description="Who to call about it.")
    notes: str | None = strawberry.field(description="Free-form notes.")
    quota_overrides: JSON = strawberry.field(description="Per-client overrides of the plan, by field name.")
    record: strawberry.Private[Client]

    @strawberry.field(description="The quota that applies: the plan after this client's overrides.")
    def quota(self, info: Info) -> QuotaPlan:
        return QuotaPlan.of(client_plan(info, self.record))

    @strawberry.field(description="Its use of the current quota window.")
    async def usage(self, info: Info) -> QuotaUsage | None:
        return QuotaUsage.of(await info.context.runtime.quotas.usage(self.record.id, client_plan(info, self.record)))

    @strawberry.field(description="Its requests and cost minute by minute, the current minute last (every replica's, "
                                  "within a few seconds); minutes without traffic count zero.",
                      directives=list_size(slicing_arguments=["minutes"]))
    async def usage_history(
        self, info: Info,
        minutes: Annotated[int, strawberry.argument(description="How many minutes back, 1 to 1440.")] = 60,
    ) -> list[UsageMinute]:
        if not 1 <= minutes <= MAX_USAGE_MINUTES:
            raise bad_input(f"`minutes` must be between 1 and {MAX_USAGE_MINUTES}.", argument="minutes")
        return [UsageMinute(at=m.at, requests=m.requests, cost=m.cost)
                for m in await info.context.runtime.usage_log.minutes(self.record.id, minutes)]

    @classmethod
    def of(cls, client: Client) -> ClientNode:
        return cls(record=client, quota_overrides=JSON(dict(client.quota_overrides)),
            id=strawberry.ID(client.id), name=client.name, environment=ClientEnvironment(client.environment.value),
            scopes=sorted(client.scopes), facilities=None if client.facilities is None else sorted(client.facilities),
            plan=client.plan, status=ClientStatus(client.status.value), created_at=client.created_at,
            rotated_at=client.rotated_at, revoked_at=client.revoked_at, contact=client.contact, notes=client.notes,
        )


@strawberry.type(description="A client with its new API key. The key is shown this once and never again: store it now.")
class IssuedClientKey:
    client: ClientNode = strawberry.field(description="The client.")
    key: str = strawberry.field(description="The API key. Send it as `Authorization: Bearer <key>`.")
    key_id: str = strawberry.field(description="The key's public id (safe to log).")
    previous_keys_expire_at: datetime | None = strawberry.field(
        description="After a rotation: until when the client's previous keys keep working."
    )

    @classmethod
    def of(cls, issued: IssuedKey) -> IssuedClientKey:
        return cls(client=ClientNode.of(issued.client), key=issued.key, key_id=issued.key_id,
                   previous_keys_expire_at=issued.previous_key_expires_at)


@strawberry.type(description="One admin action: who did what to which client, when, before and after.")
class AuditLogEntry:
    id: strawberry.ID = strawberry.field(description="The entry's id.")
    at: datetime = strawberry.field(description="When.")
    actor: str = strawberry.field(description="Who: `client:<id> (<name>)` or `cli:<user>`.")
    action: str = strawberry.field(description="What: client.create, client.update, client.rotate_key, client.revoke.")
    client_id: str | None = strawberry.field(description="The client acted on.")
    before: JSON | None = strawberry.field(description="The client before (no key material, ever).")
    after: JSON | None = strawberry.field(description="The client after.")

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditLogEntry:
        return cls(id=strawberry.ID(entry.id), at=entry.at, actor=entry.actor, action=entry.action,
                   client_id=entry.client_id, before=_json(entry.before), after=_json(entry.after))


def _json(value: dict[str, Any] | None) -> JSON | None:
    return None if value is None else JSON(value)


@strawberry.type(description="A scope of the catalog.")
class ScopeInfo:
    name: str = strawberry.field(description="The scope, e.g. occupancy:read.")
    description: str = strawberry.field(description="What it allows.")


@strawberry.input(description="A new client.")
class CreateClientInput:
    name: str = strawberry.field(description="Unique name, 1-64 characters.")
    environment: ClientEnvironment = strawberry.field(description="test or live.")
    scopes: list[str] = strawberry.field(description="Scopes to grant (see `scopes`).")
    facilities: list[str] | None = strawberry.field(default=None, description="Facilities it may see; omit or null for all.")
    plan: str = strawberry.field(default="standard", description="Quota plan.")
    contact: str | None = strawberry.field(default=None, description="Who to call about it.")
    notes: str | None = strawberry.field(default=None, description="Free-form notes.")


@strawberry.input(description="Changes to a client; omitted fields stay as they are.")
class UpdateClientInput:
    scopes: list[str] | None = strawberry.field(default=strawberry.UNSET, description="The new set of scopes.")
    facilities: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="The new set of facilities; null for all."
    )
    plan: str | None = strawberry.field(default=strawberry.UNSET, description="The new quota plan.")
    contact: str | None = strawberry.field(default=strawberry.UNSET, description="Contact.")
    notes: str | None = strawberry.field(default=strawberry.UNSET, description="Notes.")
    quota_overrides: QuotaOverridesInput | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the client's overrides of its plan; null removes them all."
    )


def client_plan(info: Info, client: Client) -> Plan:
    plans = info.context.runtime.plans
    return effective_plan(plans.get(client.plan) or plans["standard"], client.quota_overrides)


def coded(error: AdminError) -> GatewayError:
    return GatewayError(ErrorCode(error.code), error.message)


MAX_USAGE_MINUTES = 1440


@strawberry.type(description="One minute of a client's use.")
class UsageMinute:
    at: datetime = strawberry.field(description="Start of the minute (UTC).")
    requests: int = strawberry.field(description="Requests admitted in that minute.")
    cost: int = strawberry.field(description="Cost points charged in that minute, net of refunds.")


@strawberry.type(description="A request refused with 429 because its client was out of quota.")
class ThrottleEvent:
    at: datetime = strawberry.field(description="When it was refused.")
    client_id: strawberry.ID = strawberry.field(description="The client refused.")
    refused_by: str = strawberry.field(description="Which limit refused it: `requests` or `cost`.")
    retry_after_seconds: int = strawberry.field(description="The Retry-After it was told.")


@strawberry.type
class AdminQueries:
    @strawberry.field(description="Every client, oldest first.", directives=needs(Scope.ADMIN) + list_size(assumed_size=50))
    async def clients(self, info: Info) -> list[ClientNode] | None:
        return [ClientNode.of(c) for c in await info.context.runtime.store.clients()]

    @strawberry.field(description="One client by id; null when there is none.", directives=needs(Scope.ADMIN))
    async def client(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The client's id.")]) -> ClientNode | None:
        client = await info.context.runtime.store.client(str(id))
        return ClientNode.of(client) if client else None

    @strawberry.field(description="The audit log, newest first.",
                      directives=needs(Scope.ADMIN) + list_size(slicing_arguments=["first"]))
    async def audit_log(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many entries, 1 to 100.")] = 50,
        client_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only entries about this client.")] = None,
    ) -> list[AuditLogEntry] | None:
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise bad_input(f"`first` must be between 1 and {MAX_PAGE_SIZE}.", argument="first")
        entries = await info.context.runtime.store.audit()
        if client_id is not None:
            entries = [e for e in entries if e.client_id == str(client_id)]
        return [AuditLogEntry.of(e) for e in entries[:first]]

    @strawberry.field(description="Requests refused with 429 for quota, newest first (every replica's, within a few seconds).",
                      directives=needs(Scope.ADMIN) + list_size(slicing_arguments=["first"]))
    async def throttle_events(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many events, 1 to 100.")] = 50,
        client_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only this client's.")] = None,
    ) -> list[ThrottleEvent] | None:
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise bad_input(f"`first` must be between 1 and {MAX_PAGE_SIZE}.", argument="first")
        found = await info.context.runtime.usage_log.throttles(first, None if client_id is None else str(client_id))
        return [ThrottleEvent(at=t.at, client_id=strawberry.ID(t.client_id), refused_by=t.refused_by,
                              retry_after_seconds=t.retry_after_s) for t in found]

    @strawberry.field(description="The configured quota plans.", directives=needs(Scope.ADMIN) + list_size(assumed_size=10))
    def plans(self, info: Info) -> list[QuotaPlan] | None:
        return [QuotaPlan.of(plan) for plan in info.context.runtime.plans.values()]

    @strawberry.field(description="The scope catalog.", directives=list_size(assumed_size=len(Scope)))
    def scopes(self) -> list[ScopeInfo]:
        return [ScopeInfo(name=s.value, description=SCOPE_DESCRIPTIONS[s]) for s in Scope]


@strawberry.type(description="Changes: admin operations on clients and keys.")
class AdminMutations:
    @strawberry.mutation(description="Create a client; its API key is in the answer, once.", directives=needs(Scope.ADMIN))
    async def create_client(self, info: Info, input: Annotated[CreateClientInput, strawberry.argument(description="The client.")]) -> IssuedClientKey | None:
        ctx = info.context
        try:
            issued = await ctx.runtime.admin.create_client(
                ctx.principal.actor, name=input.name, environment=Environment(input.environment.value),
                scopes=input.scopes, facilities=input.facilities, plan=input.plan, contact=input.contact, notes=input.notes,
            )
        except AdminError as exc:
            raise coded(exc) from None
        return IssuedClientKey.of(issued)

    @strawberry.mutation(description="Change a client's scopes, facilities, plan, contact or notes.", directives=needs(Scope.ADMIN))
    async def update_client(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The client's id.")],
        input: Annotated[UpdateClientInput, strawberry.argument(description="The changes.")],
    ) -> ClientNode | None:
        changes = {name: value for name, value in vars(input).items() if value is not strawberry.UNSET}
        if "quota_overrides" in changes:
            overrides = changes["quota_overrides"]
            changes["quota_overrides"] = {} if overrides is None else overrides.as_dict()
        for required in ("scopes", "plan"):
            if required in changes and changes[required] is None:
                raise bad_input(f"`{required}` cannot be null.", argument=f"input.{required}")
        ctx = info.context
        try:
            return ClientNode.of(await ctx.runtime.admin.update_client(ctx.principal.actor, str(id), **changes))
        except AdminError as exc:
            raise coded(exc) from None

    @strawberry.mutation(description="Issue a new key; the old ones keep working for the grace period, then stop.",
                         directives=needs(Scope.ADMIN))
    async def rotate_client_key(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The client's id.")],
        grace_period_seconds: Annotated[int | None, strawberry.argument(description="How long old keys keep working; default from configuration.")] = None,
    ) -> IssuedClientKey | None:
        ctx = info.context
        grace = ctx.config.auth.rotation_grace_s if grace_period_seconds is None else grace_period_seconds
        try:
            issued = await ctx.runtime.admin.rotate_key(ctx.principal.actor, str(id), timedelta(seconds=grace))
        except AdminError as exc:
            raise coded(exc) from None
        return IssuedClientKey.of(issued)

    @strawberry.mutation(description="Revoke a client now: every key and token of it stops working on every replica.",
                         directives=needs(Scope.ADMIN))
    async def revoke_client(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The client's id.")]) -> ClientNode | None:
        ctx = info.context
        try:
            return ClientNode.of(await ctx.runtime.admin.revoke(ctx.principal.actor, str(id)))
        except AdminError as exc:
            raise coded(exc) from None

