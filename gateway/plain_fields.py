"""Plain fields read directly: graphql-core execution without its per-field machinery where a
field is nothing but an attribute.

Most of an answer is fields with no resolver of their own: a facility's `name`, an occupancy
figure's `free`, a tariff's lines and their amounts. strawberry gives each a resolver that reads
the attribute, and graphql-core executes each like any field: a path entry, a resolve-info
object, the resolver, an awaitable check, then value completion through the type's wrappers,
and for an object the collection of its selection and the same again for each of its fields.

The execution context made here reads such fields directly: `getattr`, then the leaf type's
`coerce_output_value`, and for an object or a list of them whose selection is plain all the way
down, the whole subtree in one walk (a resolver's result too: a `RateTable`, a `Source` list).
Every other field (resolvers, arguments, interfaces and unions, `@stream` and `@defer`) goes to
graphql-core as before, and the response keeps its key order.

A field is plain when its resolver is strawberry's own attribute reader as strawberry made it
(a field with a scope check is wrapped, so it is not), it takes no arguments, and its type is a
scalar, an enum, an object type without an `is_type_of` of its own, or a list or non-null of
those. A value that is not plain in fact (null where the type forbids it, a value the type
refuses, a missing attribute) hands the whole field back to graphql-core, which reads it again
and reports it as it always did: answers, errors and their paths do not change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

import strawberry
from graphql import (
    DirectiveNode,
    DocumentNode,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    Node,
    Undefined,
    VariableNode,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import Executor as ExecutionContext
from graphql.pyutils import Path

#: plans and readers made for one document, kept for its every execution (when `collected_alike`):
#: keyed by the ids of its field nodes, which live exactly as long as the document that keeps this
Plans = dict[tuple[int, tuple[Any, ...]], Any]

NOT_PLAIN: Any = object()  # what a reader answers for a value graphql-core must complete (and report) itself

#: type name -> field name -> the attribute it reads, for every field whose resolver reads one
Attributes = dict[str, dict[str, str]]


class Reader(Protocol):
    def complete(self, value: Any) -> Any:
        """`value` completed as the response holds it, or NOT_PLAIN."""


@dataclass(frozen=True, slots=True)
class LeafReader:
    type: GraphQLLeafType

    def complete(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Exception) or value is NOT_PLAIN:
            return NOT_PLAIN
        try:
            coerced = self.type.coerce_output_value(value)
        except Exception:  # noqa: BLE001 - graphql-core completes it again and reports the error at its path
            return NOT_PLAIN
        return NOT_PLAIN if coerced is None or coerced is Undefined else coerced


@dataclass(frozen=True, slots=True)
class NonNullReader:
    inner: Reader

    def complete(self, value: Any) -> Any:
        completed = self.inner.complete(value)
        return NOT_PLAIN if completed is None else completed


@dataclass(frozen=True, slots=True)
class ListReader:
    item: Reader

    def complete(self, value: Any) -> Any:
        if value is None:
            return None
        if type(value) is not list and type(value) is not tuple:
            return NOT_PLAIN
        completed = []
        for item in value:
            done = self.item.complete(item)
            if done is NOT_PLAIN:
                return NOT_PLAIN
            completed.append(done)
        return completed


@dataclass(frozen=True, slots=True)
class ObjectReader:
    fields: tuple[tuple[str, str, Reader], ...]  # (response name, attribute, reader) in selection order

    def complete(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Exception) or value is NOT_PLAIN:
            return NOT_PLAIN
        completed = {}
        for name, attribute, reader in self.fields:
            done = reader.complete(getattr(value, attribute, NOT_PLAIN))
            if done is NOT_PLAIN:
                return NOT_PLAIN
            completed[name] = done
        return completed


@dataclass(frozen=True, slots=True)
class SelectionPlan:
    """An object's selection: (response name, attribute, reader) per field, attribute and reader
    None for a field graphql-core executes; `reader` is the whole object's when every field is plain."""

    fields: tuple[tuple[str, str | None, Reader | None], ...]
    reader: ObjectReader | None


def attributes_of(schema: strawberry.Schema) -> Attributes:
    """The fields of each object type that read an attribute, as strawberry resolves them."""
    found: Attributes = {}
    if schema.config.default_resolver is not getattr:
        return found  # attributes are read some other way: leave every field to graphql-core
    for type_name, graphql_type in schema._schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        definition = schema.get_type_by_name(type_name)
        python_names = {schema.config.name_converter.get_graphql_name(field): field.python_name
                        for field in getattr(definition, "fields", ())}
        reading = {name: python_names[name] for name, field in graphql_type.fields.items()
                   if name in python_names and not field.args and _reads_attribute(field.resolve)}
        if reading:
            found[type_name] = reading
    return found


def _reads_attribute(resolve: Any) -> bool:
    """strawberry's resolver of a field without one of its own, as strawberry made it (unwrapped)."""
    return resolve is not None and getattr(resolve, "_is_default", False) and not hasattr(resolve, "__wrapped__")


def is_awaitable(value: Any) -> TypeGuard[Awaitable[Any]]:
    """graphql-core's test, without its checks for generator-based coroutines (gone since Python 3.11)."""
    return hasattr(value, "__await__")


def plain_fields_context(schema: strawberry.Schema) -> type[ExecutionContext]:
    """`schema`'s execution context class, reading its plain fields directly."""
    base: type[ExecutionContext] = schema.execution_context_class
    attributes = attributes_of(schema)

    class PlainFieldsContext(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, plans: Plans | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # per execution, like graphql-core's own memo of collected fields; keyed by identity,
            # the keys kept alive beside
            self._plans: dict[int, tuple[object, SelectionPlan | None]] = {}
            self._readers: dict[tuple[int, int], tuple[object, Reader | None]] = {}
            #: the document's plans, kept for every execution of it (`Plans`), when it has them
            self._shared = plans

        def execute_fields(self, parent_type: GraphQLObjectType, source_value: Any, path: Path | None,
                           grouped_field_set: GroupedFieldSet, position_context: Any) -> Any:
            plan = self._plan(parent_type, grouped_field_set)
            if plan is None:
                return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
            if plan.reader is not None:
                done = plan.reader.complete(source_value)
                if done is not NOT_PLAIN:
                    return done
            read: dict[str, Any] = {}
            rest: GroupedFieldSet = {}
            for name, attribute, reader in plan.fields:
                done = NOT_PLAIN
                if attribute is not None and reader is not None:
                    done = reader.complete(getattr(source_value, attribute, NOT_PLAIN))
                if done is NOT_PLAIN:
                    rest[name] = grouped_field_set[name]
                else:
                    read[name] = done
            if not rest:
                return read
            executed = super().execute_fields(parent_type, source_value, path, rest, position_context)
            if self.is_awaitable(executed):
                return _in_order(grouped_field_set, read, executed)
            return {name: read[name] if name in read else executed[name] for name in grouped_field_set}

        def complete_value(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList,
                           info: Any, path: Path, result: Any, position_context: Any) -> Any:
            reader = self._reader(return_type, field_details_list)
            if reader is not None:
                done = reader.complete(result)
                if done is not NOT_PLAIN:
                    return done
            return super().complete_value(return_type, field_details_list, info, path, result, position_context)

        def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> SelectionPlan | None:
            """How to read the fields of `grouped_field_set` on `parent_type`; None when none is plain."""
            known = self._plans.get(id(grouped_field_set))
            if known is None:
                shared = self._shared
                if shared is None:
                    plan = self._new_plan(parent_type, grouped_field_set)
                else:
                    key = (id(parent_type), tuple((name, _nodes(details)) for name, details in grouped_field_set.items()))
                    plan = shared.get(key, NOT_PLAIN)
                    if plan is NOT_PLAIN:
                        plan = shared[key] = self._new_plan(parent_type, grouped_field_set)
                known = self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
            return known[1]

        def _new_plan(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> SelectionPlan | None:
            reading = attributes.get(parent_type.name, {})
            fields = []
            for name, details in grouped_field_set.items():
                attribute = reading.get(details[0].node.name.value)
                reader = None
                if attribute is not None:
                    reader = self._reader(parent_type.fields[details[0].node.name.value].type, details)
                fields.append((name, attribute if reader is not None else None, reader))
            plan = None
            if any(reader is not None for _, _, reader in fields):
                whole = None
                if all(reader is not None for _, _, reader in fields) and parent_type.is_type_of is None:
                    whole = ObjectReader(tuple((n, a, r) for n, a, r in fields if a is not None and r is not None))
                plan = SelectionPlan(tuple(fields), whole)
            return plan

        def _reader(self, return_type: GraphQLOutputType, details: FieldDetailsList) -> Reader | None:
            """How to complete a value of `return_type` for the fields `details`; None: not plainly."""
            key = (id(return_type), id(details))
            known = self._readers.get(key)
            if known is None:
                shared = self._shared
                if shared is None:
                    reader = self._new_reader(return_type, details)
                else:
                    shared_key = (id(return_type), _nodes(details))
                    reader = shared.get(shared_key, NOT_PLAIN)
                    if reader is NOT_PLAIN:
                        reader = shared[shared_key] = self._new_reader(return_type, details)
                known = self._readers[key] = (details, reader)
            return known[1]

        def _new_reader(self, return_type: GraphQLOutputType, details: FieldDetailsList) -> Reader | None:
            if isinstance(return_type, GraphQLNonNull):
                inner = self._new_reader(return_type.of_type, details)
                return None if inner is None else NonNullReader(inner)
            if isinstance(return_type, GraphQLList):
                if any(detail.node.directives for detail in details):
                    return None  # @stream, or anything else that is not ours to read past
                item = self._new_reader(return_type.of_type, details)
                return None if item is None else ListReader(item)
            if isinstance(return_type, GraphQLLeafType):
                return LeafReader(return_type)
            if isinstance(return_type, GraphQLObjectType) and return_type.is_type_of is None:
                grouped, deferred, forbidden = self.collect_subfields(return_type, details)
                if not deferred and not forbidden:
                    plan = self._plan(return_type, grouped)
                    return None if plan is None else plan.reader
            return None  # an interface or union, an object that checks its values, a deferred part

    return PlainFieldsContext


def _nodes(details: FieldDetailsList) -> tuple[int, ...]:
    return tuple(id(detail.node) for detail in details)


def collected_alike(document: DocumentNode) -> bool:
    """Whether every execution of `document` selects the same fields: no directive of it takes a
    variable (`@skip(if: $x)`, `@include`, `@defer`…), so what is selected is the document's alone."""
    return not any(isinstance(argument.value, VariableNode)
                   for node in _directives(document) for argument in node.arguments or ())


def _directives(node: Any) -> Iterator[DirectiveNode]:
    for key in node.keys:
        value = getattr(node, key, None)
        for child in value if isinstance(value, tuple | list) else (value,):
            if isinstance(child, DirectiveNode):
                yield child
            if isinstance(child, Node):
                yield from _directives(child)


async def _in_order(grouped_field_set: GroupedFieldSet, read: dict[str, Any],
                    executing: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    executed = await executing
    return {name: read[name] if name in read else executed[name] for name in grouped_field_set}
