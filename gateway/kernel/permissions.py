"""Field-level permissions: a field declares the scopes it needs, visibly in the SDL.

    @strawberry.field(description="…", directives=needs(Scope.OCCUPANCY_READ))

prints as `occupancy: Occupancy @requiresScopes(scopes: ["occupancy:read"])`. When the schema
is built, `enforce_scopes` wraps the resolver of exactly those fields with a check against the
request principal's scopes, decided once per request (a frozenset). Fields without the
directive pay nothing, unlike per-field permission classes, which halve list throughput here.
A client lacking a scope gets null at that path and a FORBIDDEN error naming the missing
scopes; the rest of the answer stands. Mutations are checked before their resolver runs, so
before any vendor is called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLObjectType, default_field_resolver
from strawberry.federation.schema_directives import RequiresScopes as FederationRequiresScopes
from strawberry.schema_directive import Location

from gateway.auth.scopes import Scope
from gateway.errors import ErrorCode, GatewayError


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    description="The scopes a client needs for this field; without them the field is null with a FORBIDDEN error.",
)
class RequiresScopes:
    scopes: list[str] = strawberry.field(description="Every one of these scopes is needed.")


def needs(*scopes: Scope) -> list[object]:
    return [RequiresScopes(scopes=[scope.value for scope in scopes])]


def scopes_of(field: Any) -> frozenset[str]:
    """The scopes a field's `@requiresScopes` names (none for a field without it, or no field).

    In subgraph mode (resolvers/subgraph.py) the directive is Federation's, whose `scopes` lists
    alternatives of scopes all needed: parkgate writes exactly one alternative, read here the same."""
    found: set[str] = set()
    for directive in getattr(field, "directives", ()):
        if isinstance(directive, RequiresScopes):
            found.update(directive.scopes)
        elif isinstance(directive, FederationRequiresScopes):
            if len(directive.scopes) != 1:
                raise ValueError("parkgate's fields need one set of scopes, not alternatives")
            found.update(directive.scopes[0])
    return frozenset(found)


def forbidden(field: str, missing: frozenset[str], required: frozenset[str]) -> GatewayError:
    return GatewayError(
        ErrorCode.FORBIDDEN,
        f"{field} needs scope {', '.join(sorted(missing))}, which this client does not have.",
        missingScopes=sorted(missing),
        requiredScopes=sorted(required),
    )


def guarded(resolve: Callable[..., Any], required: frozenset[str], field: str) -> Callable[..., Any]:
    @functools.wraps(resolve)
    def check(root: Any, info: Any, **kwargs: Any) -> Any:
        granted: frozenset[str] = info.context.principal.scopes
        if not required <= granted:
            raise forbidden(field, required - granted, required)
        return resolve(root, info, **kwargs)

    return check


def enforce_scopes(schema: strawberry.Schema) -> dict[str, frozenset[str]]:
    """Install the checks; return field coordinate -> required scopes (for docs and tests)."""
    required_by_field: dict[str, frozenset[str]] = {}
    for type_name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        definition = schema.get_type_by_name(type_name)
        for field in getattr(definition, "fields", ()):
            scopes = scopes_of(field)
            if not scopes:
                continue
            name = schema.config.name_converter.get_graphql_name(field)
            coordinate = f"{type_name}.{name}"
            graphql_field = graphql_type.fields[name]
            graphql_field.resolve = guarded(graphql_field.resolve or default_field_resolver, scopes, coordinate)
            required_by_field[coordinate] = scopes
    return required_by_field
