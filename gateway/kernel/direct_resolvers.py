"""Resolvers of the `(self, info)` kind called directly, without strawberry's per-call wrapping.

For every call of a field with a resolver, strawberry builds its `Info`, converts the (here
absent) arguments, runs the (here absent) field extensions through a chain of partials, and,
for an async resolver, wraps the call in one more coroutine. For a method that takes the source
as `self` and the `Info` as `info`, with no GraphQL arguments, no field extensions and no
exception handlers in the schema, all of that comes down to `method(source, info=Info(...))`:
that is what is installed instead (an async one started eagerly, gateway/kernel/eager.py).
Everything else keeps strawberry's resolver. Install before `enforce_scopes`, so the scope
check wraps the direct call as it wrapped strawberry's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLObjectType
from strawberry.types.field import StrawberryField

from gateway.kernel.eager import eagerly


def direct_resolvers(schema: strawberry.Schema) -> None:
    """Call the `(self, info)` resolvers of `schema` directly (see the module's description)."""
    if getattr(schema.schema_converter, "_exception_handler_specs", True):
        return  # the schema has exception handlers (or a strawberry that says nothing of them)
    info_class = schema.config.info_class
    subscription = schema._schema.subscription_type
    for type_name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__") or graphql_type is subscription:
            continue
        definition = schema.get_type_by_name(type_name)
        for field in getattr(definition, "fields", ()):
            name = schema.config.name_converter.get_graphql_name(field)
            if name in graphql_type.fields and _plain_method(field):
                graphql_type.fields[name].resolve = _direct(field, info_class)


def _plain_method(field: StrawberryField) -> bool:
    resolver = field.base_resolver
    return (resolver is not None and not field.extensions and not field.arguments
            and list(resolver.signature.parameters) == ["self", "info"])


def _direct(field: StrawberryField, info_class: type) -> Callable[..., Any]:
    assert field.base_resolver is not None
    method: Callable[..., Any] = field.base_resolver.wrapped_func  # type: ignore[assignment]  # a plain method (`_plain_method`)
    if field.base_resolver.is_async:

        def resolve_async(source: Any, info: Any) -> Any:
            return eagerly(method(source, info=info_class(_raw_info=info, _field=field)))

        return resolve_async

    def resolve(source: Any, info: Any) -> Any:
        return method(source, info=info_class(_raw_info=info, _field=field))

    return resolve
