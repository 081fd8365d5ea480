"""parkgate as a Federation v2 subgraph (`server.subgraph: true`, `--subgraph` on `serve` and `sandbox`).

The same types, resolvers and checks as the standalone schema (resolvers/schema.py), as a router
sees them:

- `@key` on the entities another graph joins to: Facility (`id`), Reservation (`id`), Permit
  (`id`), Citation (`number`); `_entities` resolves their references (resolvers/entities.py) with
  the scopes, tenancy, loaders and cost of the lookup by id;
- `@shareable` on value types another subgraph may well define too (Money, GeoPoint, Address,
  PageInfo);
- `@inaccessible` on the administration operations: the operator manages parkgate's clients on
  parkgate itself, not through a partner's router;
- every field's scopes as Federation's `@requiresScopes(scopes: [["occupancy:read"]])` (one
  alternative: all of its scopes), so a router that enforces them (Apollo Router's authorization,
  Hive Gateway's) refuses early what parkgate would refuse anyway; parkgate still checks. A router
  that cannot load `@requiresScopes` (@apollo/gateway) gets the SDL without it
  (`server.subgraph_scopes: false`); parkgate's own checks are the same either way.

The standalone schema stays as it is (schema.graphql does not change): the federation directives
are put on the shared strawberry definitions only while the subgraph schema is built and its SDL
printed (`federation_view`), and taken off again. `_service { sdl }` serves that SDL as printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import strawberry
from graphql import GraphQLObjectType
from strawberry.federation.schema import FederationAny
from strawberry.federation.schema_directives import Inaccessible, Key, Shareable
from strawberry.federation.schema_directives import RequiresScopes as FederationRequiresScopes
from strawberry.federation.types import FieldSet
from strawberry.printer import print_schema

from gateway.kernel.context import Info
from gateway.kernel.direct_resolvers import direct_resolvers
from gateway.kernel.eager import eager_resolvers
from gateway.kernel.permissions import RequiresScopes, enforce_scopes
from resolvers.admin import AdminMutations, AdminQueries
from resolvers.common import Address, GeoPoint, Money, PageInfo
from resolvers.entities import ENTITY_KINDS, resolve_reference
from resolvers.schema import Mutation, Query, Subscription
from resolvers.schema import schema as standalone

#: the lowest Federation version with `@requiresScopes`, so the most routers can load the supergraph
FEDERATION_VERSION: Literal["2.5"] = "2.5"
#: value types another subgraph may resolve as well
SHAREABLE: tuple[type, ...] = (Money, GeoPoint, Address, PageInfo)
#: a field's scopes in the printed subgraph SDL (strawberry prints them in this one shape)
_SCOPES_USAGE = re.compile(r' @requiresScopes\(scopes: \[\[[^\]]*\]\]\)')
#: root types whose fields a router does not expose (administration stays on parkgate's own endpoint)
INACCESSIBLE_ROOTS: tuple[type, ...] = (AdminQueries, AdminMutations)


class SubgraphSchema(strawberry.federation.Schema):
    """strawberry's Federation schema, its `_entities` resolving through resolvers/entities.py."""

    def entities_resolver(self, info: Info, representations: list[FederationAny]) -> list[FederationAny]:
        # Each item is an object, None, a coded error or an awaitable: graphql-core awaits them together,
        # so every reference's fields load through the same per-request loaders in one batch.
        return [FederationAny(resolve_reference(info, representation)) for representation in representations]


@contextmanager
def federation_view() -> Iterator[None]:
    """While open, the standalone schema's strawberry definitions carry the federation directives."""
    saved: list[tuple[Any, list[object]]] = []

    def put(holder: Any, directives: list[object]) -> None:
        saved.append((holder, holder.directives))
        holder.directives = directives

    for name, kind in ENTITY_KINDS.items():
        definition = kind.type_.__strawberry_definition__  # type: ignore[attr-defined]
        assert definition.name == name, (definition.name, name)
        put(definition, [*definition.directives, Key(fields=FieldSet(kind.key))])
    for type_ in SHAREABLE:
        definition = type_.__strawberry_definition__  # type: ignore[attr-defined]
        put(definition, [*definition.directives, Shareable()])
    # the admin fields as Query and Mutation hold them (the same field objects as their mixins')
    inaccessible = {id(field) for root in INACCESSIBLE_ROOTS for field in root.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    for concrete in standalone.schema_converter.type_map.values():
        for field in getattr(concrete.definition, "fields", ()):
            directives = [FederationRequiresScopes(scopes=[sorted(d.scopes)]) if isinstance(d, RequiresScopes) else d
                          for d in field.directives]
            if id(field) in inaccessible:
                directives.append(Inaccessible())
            if directives != field.directives:
                put(field, directives)
    try:
        yield
    finally:
        for holder, directives in reversed(saved):
            holder.directives = directives


def serve_sdl(built: SubgraphSchema, sdl: str) -> None:
    """`_service { sdl }` answers the SDL printed in the federation view (strawberry's own resolver would
    print the definitions as they are now, without the federation directives)."""
    service = built._schema.type_map["_Service"]
    assert isinstance(service, GraphQLObjectType)
    service.fields["sdl"].resolve = lambda _root, _info: sdl


@dataclass(frozen=True)
class Subgraph:
    schema: SubgraphSchema
    sdl: str  # what `_service { sdl }` answers
    required_scopes: dict[str, frozenset[str]]  # field coordinate -> the scopes its check requires


def without_scopes(sdl: str) -> str:
    """The SDL without `@requiresScopes`, for a router that refuses a supergraph using it (@apollo/gateway:
    "feature …/requiresScopes/v0.1 is for: SECURITY but is unsupported"). parkgate checks the scopes anyway."""
    stripped = _SCOPES_USAGE.sub("", sdl).replace('"@requiresScopes", ', "").replace(', "@requiresScopes"', "")
    assert "requiresScopes" not in stripped, "the @link import or a usage took a shape this does not expect"
    return stripped


@cache
def build_subgraph(*, scopes: bool = True) -> Subgraph:
    """The subgraph schema with its scope checks installed, and its SDL (with the fields' scopes as
    `@requiresScopes` unless `scopes=False`); built once per process."""
    with federation_view():
        built = SubgraphSchema(query=Query, mutation=Mutation, subscription=Subscription,
                               federation_version=FEDERATION_VERSION)
        sdl = print_schema(built) + "\n"
        if not scopes:
            sdl = without_scopes(sdl)
        # The field definitions are the federation view's here (Query's and Mutation's may be copies
        # that keep it): the checks read both kinds of @requiresScopes.
        direct_resolvers(built)
        required = enforce_scopes(built)
    eager_resolvers(built)
    serve_sdl(built, sdl)
    return Subgraph(built, sdl, required)


def served_schema(subgraph: bool, scopes: bool = True) -> strawberry.Schema:
    """What a gateway serves (`server.subgraph`, `server.subgraph_scopes` in its configuration): the
    standalone schema or this one."""
    return build_subgraph(scopes=scopes).schema if subgraph else standalone
