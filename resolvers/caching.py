"""How long an answer may be reused: `@cacheControl(maxAge:)` next to the fields (as Apollo does).

A field that declares no maxAge inherits from its parent; a root field that declares none
makes the answer uncacheable (admin data, `rateLimit`). The response cache keeps an answer for
the smallest maxAge of the fields it selected, and GET answers say so in `Cache-Control`.
"""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)
from strawberry.schema_directive import Location

UNCACHEABLE = 0


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    description="How many seconds an answer including this field may be reused (the smallest maxAge of a query wins).",
)
class CacheControl:
    max_age: int = strawberry.field(description="Seconds; 0 means never reuse.")


def max_age(seconds: int) -> list[object]:
    return [CacheControl(max_age=seconds)]


@dataclass(frozen=True)
class CachePolicy:
    """Declared maxAge per field coordinate, read once from the schema."""

    declared: dict[str, int]
    schema: GraphQLSchema

    @classmethod
    def of(cls, schema: strawberry.Schema) -> CachePolicy:
        declared: dict[str, int] = {}
        for type_name, graphql_type in schema._schema.type_map.items():
            if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
                continue
            for field in getattr(schema.get_type_by_name(type_name), "fields", ()):
                ages = [d.max_age for d in field.directives if isinstance(d, CacheControl)]
                if ages:
                    declared[f"{type_name}.{schema.config.name_converter.get_graphql_name(field)}"] = min(ages)
        return cls(declared, schema._schema)

    def ttl(self, document: DocumentNode, operation: OperationDefinitionNode) -> int:
        """Seconds the answer to this operation may be reused; 0 when it may not."""
        return _ttl(self, document, operation)


def _ttl(policy: CachePolicy, document: DocumentNode, operation: OperationDefinitionNode) -> int:
    if operation.operation is not OperationType.QUERY:
        return UNCACHEABLE
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition") and hasattr(d, "name")}
    root = policy.schema.query_type
    assert root is not None
    smallest: list[int] = []

    def walk(selections: SelectionSetNode, parent: GraphQLObjectType, inherited: int | None, seen: frozenset[str]) -> None:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue
                declared = policy.declared.get(f"{parent.name}.{name}")
                if declared is None and inherited is None:
                    smallest.append(UNCACHEABLE)  # a root field that says nothing: never reuse
                    continue
                age = declared if declared is not None else inherited
                smallest.append(age)  # type: ignore[arg-type]
                field = parent.fields.get(name)
                child = get_named_type(field.type) if field else None
                if selection.selection_set is not None and isinstance(child, GraphQLObjectType):
                    walk(selection.selection_set, child, age, seen)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, parent, inherited, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    walk(fragment.selection_set, parent, inherited, seen | {selection.name.value})

    walk(operation.selection_set, root, None, frozenset())
    return min(smallest, default=UNCACHEABLE)
