"""Entities: how a router's reference (`{"__typename": "Facility", "id": "berlin-hbf"}`) becomes a
parkgate object, in subgraph mode (resolvers/subgraph.py serves them as Federation's `_entities`).

A reference is a lookup by key, so it gets exactly what the lookup by id gets: the scope of the
type's own root field (`facility(id)` needs facilities:read; a reference to a Facility too), the
client's tenancy (a reference to a facility it may not see, or to a record there, resolves to null,
like one that names nothing), and the same per-request loaders (500 references to facilities,
reservations or permits cost one vendor call per system and resource, as a list of them does).
The objects returned are the standalone schema's own, so every field below them keeps its
permissions (`occupancy` still needs occupancy:read), masking and cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from adapters.models import SystemKind
from gateway.auth.scopes import Scope
from gateway.errors import ErrorCode, GatewayError
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.permissions import forbidden
from gateway.systems import CITATIONS, PERMITS, RESERVATIONS, Records
from resolvers.citations import MAX_RANGE, citation_node, zones_of
from resolvers.enforcement import CitationNode
from resolvers.facilities import Facility
from resolvers.permits import Permit
from resolvers.reservations import Reservation

#: what resolving one reference gives: the object, None (nothing this client may have), or a coded error
Resolved = object | None | GatewayError


@dataclass(frozen=True)
class EntityKind:
    """One entity type: its key field, the scope its lookup needs, and the lookup itself."""

    type_: type
    key: str  # the key field, as GraphQL names it
    scope: Scope
    resolve: Callable[[RequestContext, str, Info], Resolved | Awaitable[Resolved]]


def facility_reference(ctx: RequestContext, facility_id: str, info: Info) -> Facility | None:
    """As `facility(id)`: no vendor call here; the fields asked for load through the request's loaders."""
    entry = ctx.directory.by_id.get(facility_id)
    if entry is None or not ctx.principal.sees(entry.id):
        return None
    return Facility.of(entry)


async def parcs_reference(ctx: RequestContext, gateway_id: str, resource: Records[str | None, Any],
                          info: Info) -> tuple[str, Any] | None:
    """The record of `resource` behind `<facility id>:<PARCS id>`, picked from the PARCS's whole list as
    this request loads it (one call per PARCS however many references); None for a facility the client
    may not see (no call, like an unknown one) and for an id its PARCS does not hold there."""
    facility_id, _, vendor_id = gateway_id.partition(":")
    entry = ctx.directory.by_id.get(facility_id)
    ref = entry.ref(SystemKind.PARCS) if entry is not None else None
    if entry is None or ref is None or not ctx.principal.sees(entry.id) or not vendor_id:
        return None
    record = (await ctx.load(ref.system_id, resource, None, info=info)).items.get(vendor_id)
    if record is None or record.vendor_facility_id != ref.vendor_id:
        return None
    return entry.id, record


async def reservation_reference(ctx: RequestContext, reservation_id: str, info: Info) -> Reservation | None:
    found = await parcs_reference(ctx, reservation_id, RESERVATIONS, info)
    return None if found is None else Reservation.of(ctx, *found)


async def permit_reference(ctx: RequestContext, permit_id: str, info: Info) -> Permit | None:
    found = await parcs_reference(ctx, permit_id, PERMITS, info)
    return None if found is None else Permit.of(ctx, *found)


async def citation_reference(ctx: RequestContext, number: str, info: Info) -> CitationNode | None:
    """A citation by number, from the zones of the client's facilities, issued within the window
    `citations` reads (92 days; the platform is read by window, once per system for the request)."""
    zones = zones_of(ctx.visible_entries())
    # from midnight UTC, so every request of a day shares the upstream cache's answer
    since = (ctx.now - MAX_RANGE).replace(hour=0, minute=0, second=0, microsecond=0)
    for system_id in sorted({system_id for system_id, _ in zones}):
        citation = (await ctx.load(system_id, CITATIONS, since, info=info)).items.get(number)
        if citation is not None and (system_id, citation.zone_id or "") in zones:
            return citation_node(ctx, citation)
    return None


#: GraphQL type name -> how its references resolve (the `@key`s resolvers/subgraph.py declares)
ENTITY_KINDS: dict[str, EntityKind] = {
    "Facility": EntityKind(Facility, "id", Scope.FACILITIES_READ, facility_reference),
    "Reservation": EntityKind(Reservation, "id", Scope.RESERVATIONS_READ, reservation_reference),
    "Permit": EntityKind(Permit, "id", Scope.PERMITS_READ, permit_reference),
    "Citation": EntityKind(CitationNode, "number", Scope.ENFORCEMENT_READ, citation_reference),
}


def resolve_reference(info: Info, representation: object) -> Resolved | Awaitable[Resolved]:
    """One item of `_entities`: the object, None, or the coded error at its path (graphql-core raises an
    error returned in a list; an awaitable is awaited with the others, so loaders batch across items)."""
    if not isinstance(representation, dict):
        return GatewayError(ErrorCode.BAD_USER_INPUT, "A representation is an object with `__typename` and its key.",
                            argument="representations")
    typename = representation.get("__typename")
    kind = ENTITY_KINDS.get(typename) if isinstance(typename, str) else None
    if kind is None:
        return GatewayError(ErrorCode.BAD_USER_INPUT, f"parkgate resolves no entity of type {typename!r}; it resolves "
                            f"{', '.join(sorted(ENTITY_KINDS))}.", argument="representations")
    ctx = info.context
    if kind.scope.value not in ctx.principal.scopes:
        required = frozenset({kind.scope.value})
        return forbidden(f"A {typename} reference", required, required)
    key = representation.get(kind.key)
    if not isinstance(key, str) or not key:
        return GatewayError(ErrorCode.BAD_USER_INPUT, f"A {typename} representation needs its key `{kind.key}` "
                            "as a non-empty string.", argument="representations")
    return kind.resolve(ctx, key, info)
