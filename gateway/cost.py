"""Query cost, computed before execution from the document, and settled after it from the data.

The rule (in the spirit of the IBM / Apollo cost directives, GitHub's and Shopify's points):

    cost(field) = multiplier × (weight + Σ cost(children))

- weight: `@cost(weight:)` where declared, else 1 for an object / interface / union, 0 for a
  scalar or enum; a Mutation root field weighs `MUTATION_WEIGHT` more unless it declares `@cost`.
- multiplier: for a list field, the value of the first slicing argument present (literal,
  variable or argument default; a list argument counts its elements, as Federation's
  `_entities(representations:)` does), else `@listSize(assumedSize:)`, else `DEFAULT_LIST_SIZE`; 1
  for anything else. A field with `@listSize(sizedFields: [...])` (a connection) passes its
  size to those child fields instead of multiplying itself.

Fields are collected the way execution collects them (fragments, inline fragments, @skip /
@include, merged by response key), so the cost does not depend on how a query is spelled.
`__typename` and introspection cost nothing. For an interface or union, the most expensive
possible type counts. A list of lists is multiplied once.

`analyze` also enforces the shape limits (depth, aliases, root fields) with QUERY_TOO_COMPLEX;
comparing the cost with a client's ceiling is the caller's (COST_LIMIT_EXCEEDED). The same walk
gives the answer's reuse time (`max_age`: the smallest `@cacheControl(maxAge:)` of the fields it
visits, a field without one inheriting its parent's, a root field without one making the answer
uncacheable), so no second walk over the document is needed for the response cache. The walk
runs on documents whose expanded size gateway/document_shape.py has already bounded, and counts
its own visits too (`max_selections`).
`actual_cost` applies the same rule to the data a response carries (real list lengths; a null
object costs its own weight and nothing below), so a charge taken up front can be settled.

Everything that depends only on the schema is computed once, in `CostModel`; a request is one
walk over its document with dictionary look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_composite_type,
    is_list_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from gateway.errors import ErrorCode, RequestError
from gateway.kernel.caching import UNCACHEABLE, CacheControl
from gateway.kernel.costs import Cost, ListSize

DEFAULT_LIST_SIZE = 10
MUTATION_WEIGHT = 10
#: the typed walk may visit a selection once per possible type of an abstract field
ABSTRACT_FANOUT = 16

__all__ = [
    "DEFAULT_LIST_SIZE",
    "MUTATION_WEIGHT",
    "Analysis",
    "ComplexityLimits",
    "CostModel",
    "FieldCost",
    "actual_cost",
    "analyze",
]


@dataclass(frozen=True, slots=True)
class ComplexityLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_root_fields: int = 10
    max_selections: int = 2_000


@dataclass(frozen=True, slots=True)
class Analysis:
    cost: int
    depth: int  # deepest field nesting; root fields are depth 1
    aliases: int  # fields (after merging by response key) whose response key is not their name
    root_fields: int  # distinct root fields, `__typename` not counted
    max_age: int = UNCACHEABLE  # seconds the answer may be reused (queries only)


class _Runtime:
    """An object type as a runtime type: its fields' cost rules and the type conditions it meets."""

    __slots__ = ("matches", "name", "table")

    def __init__(self, name: str, matches: frozenset[str]) -> None:
        self.name = name
        self.table: dict[str, FieldCost] = {}
        self.matches = matches


class FieldCost:
    """The cost rule of one field coordinate, resolved once per schema."""

    __slots__ = (
        "assumed_size",
        "coordinate",
        "field",
        "fixed_multiplier",
        "is_list",
        "leaf_cost",
        "max_age",
        "runtimes",
        "sized_fields",
        "slicing",
        "weight",
    )

    def __init__(self, coordinate: str, field: GraphQLField, weight: int, is_list: bool,
                 slicing: tuple[str, ...], assumed_size: int | None, sized_fields: frozenset[str],
                 runtimes: tuple[_Runtime, ...], max_age: int | None = None) -> None:
        self.coordinate = coordinate
        self.max_age = max_age  # declared @cacheControl(maxAge:), None to inherit the parent's
        self.field = field
        self.weight = weight
        self.is_list = is_list
        self.slicing = slicing  # keys of get_argument_values' result, in declared order
        self.assumed_size = assumed_size
        self.sized_fields = sized_fields
        self.runtimes = runtimes  # possible object types of the result; () for a leaf
        if sized_fields:
            self.fixed_multiplier = 1
        elif assumed_size is not None:
            self.fixed_multiplier = assumed_size
        else:
            self.fixed_multiplier = DEFAULT_LIST_SIZE if is_list else 1
        # A leaf without slicing arguments costs the same wherever it is: no need to look closer.
        self.leaf_cost = None if runtimes or slicing else self.fixed_multiplier * weight

    def __repr__(self) -> str:
        return (f"FieldCost({self.coordinate}, weight={self.weight}, list={self.is_list}, slicing={self.slicing}, "
                f"assumed_size={self.assumed_size}, sized_fields={sorted(self.sized_fields)})")


class CostModel:
    """Per field coordinate: weight and list-size rule, from `@cost` / `@listSize` and the defaults."""

    def __init__(self, schema: GraphQLSchema, declared: dict[str, tuple[int | None, ListSize | None]] | None = None,
                 max_ages: dict[str, int] | None = None) -> None:
        """`declared`: coordinate ("Type.field") -> (weight or None, ListSize or None);
        `max_ages`: coordinate -> declared @cacheControl(maxAge:)."""
        declared = declared or {}
        max_ages = max_ages or {}
        self.schema = schema
        unions_of: dict[str, set[str]] = {}
        for named in schema.type_map.values():
            if isinstance(named, GraphQLUnionType):
                for member in named.types:
                    unions_of.setdefault(member.name, set()).add(named.name)
        runtimes: dict[str, _Runtime] = {}
        for name, named in schema.type_map.items():
            if isinstance(named, GraphQLObjectType) and not name.startswith("__"):
                matches = {name, *(i.name for i in named.interfaces), *unions_of.get(name, ())}
                runtimes[name] = _Runtime(name, frozenset(matches))
        mutation = schema.mutation_type
        for name, runtime in runtimes.items():
            object_type = schema.type_map[name]
            assert isinstance(object_type, GraphQLObjectType)
            for field_name, field in object_type.fields.items():
                coordinate = f"{name}.{field_name}"
                weight, size = declared.get(coordinate, (None, None))
                for interface in object_type.interfaces:  # an implementation may inherit the rule
                    inherited = declared.get(f"{interface.name}.{field_name}")
                    if inherited is not None:
                        weight = inherited[0] if weight is None else weight
                        size = inherited[1] if size is None else size
                runtime.table[field_name] = self._rule(coordinate, field, weight, size,
                                                       object_type is mutation, runtimes)
                runtime.table[field_name].max_age = max_ages.get(coordinate)
        self._runtimes = runtimes
        self._roots = {
            OperationType.QUERY: runtimes.get(schema.query_type.name) if schema.query_type else None,
            OperationType.MUTATION: runtimes.get(mutation.name) if mutation else None,
            OperationType.SUBSCRIPTION: runtimes.get(schema.subscription_type.name) if schema.subscription_type else None,
        }

    @classmethod
    def of(cls, schema: strawberry.Schema) -> CostModel:
        """Read `@cost`, `@listSize` and `@cacheControl` from the strawberry definitions, as
        `enforce_scopes` reads scopes."""
        graphql_schema: GraphQLSchema = schema._schema
        declared: dict[str, tuple[int | None, ListSize | None]] = {}
        max_ages: dict[str, int] = {}
        for type_name, graphql_type in graphql_schema.type_map.items():
            if not isinstance(graphql_type, (GraphQLObjectType, GraphQLInterfaceType)) or type_name.startswith("__"):
                continue
            definition = schema.get_type_by_name(type_name)
            for field in getattr(definition, "fields", ()):
                coordinate = f"{type_name}.{schema.config.name_converter.get_graphql_name(field)}"
                weight = next((d.weight for d in field.directives if isinstance(d, Cost)), None)
                size = next((d for d in field.directives if isinstance(d, ListSize)), None)
                if weight is not None or size is not None:
                    declared[coordinate] = (weight, size)
                ages = [d.max_age for d in field.directives if isinstance(d, CacheControl)]
                if ages:
                    max_ages[coordinate] = min(ages)
        # Federation's `_entities` (subgraph mode) answers one item per representation it is given:
        # priced like a list sliced by `first`, so a router's batch of 500 references costs 500 lookups.
        query = graphql_schema.query_type
        if query is not None and "_entities" in query.fields:
            declared.setdefault(f"{query.name}._entities", (None, ListSize(slicing_arguments=["representations"])))
        return cls(graphql_schema, declared, max_ages)

    def _rule(self, coordinate: str, field: GraphQLField, weight: int | None, size: ListSize | None,
              on_mutation: bool, runtimes: dict[str, _Runtime]) -> FieldCost:
        named = get_named_type(field.type)
        is_list = is_list_type(get_nullable_type(field.type))
        if is_abstract_type(named):
            possible = sorted(t.name for t in self.schema.get_possible_types(named))
            field_runtimes = tuple(runtimes[n] for n in possible)
        elif isinstance(named, GraphQLObjectType):
            field_runtimes = (runtimes[named.name],)
        else:
            field_runtimes = ()
        if weight is None:
            weight = (1 if is_composite_type(named) else 0) + (MUTATION_WEIGHT if on_mutation else 0)
        slicing: tuple[str, ...] = ()
        assumed: int | None = None
        sized: frozenset[str] = frozenset()
        if size is not None:
            for argument in _given(size.slicing_arguments):
                if argument not in field.args:
                    raise ValueError(f"@listSize on {coordinate}: no argument {argument!r}")
            slicing = tuple(field.args[a].out_name or a for a in _given(size.slicing_arguments))
            assumed = size.assumed_size if isinstance(size.assumed_size, int) else None
            if assumed is not None and assumed < 0:
                raise ValueError(f"@listSize on {coordinate}: assumedSize must not be negative")
            sized = frozenset(_given(size.sized_fields))
            if sized:
                if not field_runtimes:
                    raise ValueError(f"@listSize on {coordinate}: sizedFields on a field without subfields")
                for runtime_type in field_runtimes:
                    object_type = self.schema.type_map[runtime_type.name]
                    assert isinstance(object_type, GraphQLObjectType)  # runtimes are object types
                    missing = sized - set(object_type.fields)
                    if missing:
                        raise ValueError(f"@listSize on {coordinate}: {named.name} has no field {sorted(missing)}")
            elif not is_list:
                raise ValueError(f"@listSize on {coordinate}: not a list; name its lists in sizedFields")
        return FieldCost(coordinate, field, weight, is_list, slicing, assumed, sized, field_runtimes)

    def field(self, type_name: str, field_name: str) -> FieldCost | None:
        runtime = self._runtimes.get(type_name)
        return runtime.table.get(field_name) if runtime else None

    def root(self, operation: OperationType) -> _Runtime:
        runtime = self._roots.get(operation)
        if runtime is None:
            raise RequestError(ErrorCode.BAD_REQUEST, f"The schema has no {operation.value} type.")
        return runtime


def _given(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else []


_NO_VARIABLES = VariableValues({}, {})
_MISSING = object()


class _Walk:
    """One request's walk: the fragments, the coerced variables, the counters."""

    __slots__ = ("aliases", "depth", "fragments", "limits", "max_visits", "min_age", "variables", "visits")

    def __init__(self, graphql_schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
                 variables: dict[str, Any] | None, limits: ComplexityLimits | None) -> None:
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.variables = _coerce(graphql_schema, operation, variables)
        self.limits = limits
        self.depth = 0
        self.aliases = 0
        self.visits = 0
        self.max_visits = limits.max_selections * ABSTRACT_FANOUT if limits is not None else None
        self.min_age: int | None = None  # the smallest maxAge of the fields visited so far

    # -- collecting fields, as execution does -------------------------------------------------

    def collect(self, matches: frozenset[str], selection_sets: list[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        groups: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._visit(matches, selection_set, groups, visited)
        return groups

    def _visit(self, matches: frozenset[str], selection_set: SelectionSetNode,
               groups: dict[str, list[FieldNode]], visited: set[str]) -> None:
        for selection in selection_set.selections:
            self.visits += 1
            if self.max_visits is not None and self.visits > self.max_visits:
                raise RequestError(ErrorCode.QUERY_TOO_COMPLEX, "The query selects too many fields once its "
                                   "fragments are spread; ask for less in one request.")
            if selection.directives and not self._included(selection):
                continue
            if type(selection) is FieldNode:
                key = selection.alias.value if selection.alias else selection.name.value
                group = groups.get(key)
                if group is None:
                    groups[key] = [selection]
                else:
                    group.append(selection)
            elif type(selection) is InlineFragmentNode:
                condition = selection.type_condition
                if condition is None or condition.name.value in matches:
                    self._visit(matches, selection.selection_set, groups, visited)
            elif type(selection) is FragmentSpreadNode:
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = self.fragments.get(name)
                if fragment is not None and fragment.type_condition.name.value in matches:
                    self._visit(matches, fragment.selection_set, groups, visited)

    def _included(self, node: Any) -> bool:
        for directive in node.directives:
            name = directive.name.value
            if name == "skip" and self._directive_if(GraphQLSkipDirective, directive):
                return False
            if name == "include" and not self._directive_if(GraphQLIncludeDirective, directive):
                return False
        return True

    def _directive_if(self, definition: Any, directive: Any) -> bool:
        try:
            return bool(get_argument_values(definition, directive, self.variables)["if"])
        except GraphQLError as error:
            raise RequestError(ErrorCode.BAD_USER_INPUT, error.message, errors=(error,)) from None

    def size(self, rule: FieldCost, node: FieldNode) -> int | None:
        """The value of the first slicing argument that has one (literal, variable or default)."""
        try:
            values = get_argument_values(rule.field, node, self.variables)
        except GraphQLError as error:
            raise RequestError(ErrorCode.BAD_USER_INPUT, error.message, errors=(error,)) from None
        for key in rule.slicing:
            value = values.get(key)
            if type(value) is int:
                return max(0, value)
            if type(value) is list:  # a list argument (`_entities(representations:)`): one item per element
                return len(value)
        return None

    # -- the estimate ---------------------------------------------------------------------------

    def estimate(self, runtime: _Runtime, selection_sets: list[SelectionSetNode], depth: int,
                 sized: frozenset[str] | None, size: int | None,
                 groups: dict[str, list[FieldNode]] | None = None, age: int | None = None) -> int:
        """The cost of selection sets on one runtime type; `age`: the maxAge its fields inherit."""
        if groups is None:
            groups = self.collect(runtime.matches, selection_sets)
        if not groups:
            return 0
        limits = self.limits
        if depth > self.depth:
            self.depth = depth
            if limits is not None and depth > limits.max_depth:
                raise RequestError(ErrorCode.QUERY_TOO_COMPLEX,
                                   f"The query is nested more than {limits.max_depth} fields deep.")
        table = runtime.table
        total = 0
        for key, nodes in groups.items():
            name = nodes[0].name.value
            if key != name:
                self.aliases += 1
                if limits is not None and self.aliases > limits.max_aliases:
                    raise RequestError(ErrorCode.QUERY_TOO_COMPLEX,
                                       f"The query uses more than {limits.max_aliases} aliases.")
            rule = table.get(name)
            if rule is None:  # __typename, __schema, __type: free, and not walked
                continue
            field_age = rule.max_age if rule.max_age is not None else age
            if field_age is None:  # a root field that declares no maxAge: the answer is never reused
                field_age = UNCACHEABLE
            if self.min_age is None or field_age < self.min_age:
                self.min_age = field_age
            leaf_cost = rule.leaf_cost
            if leaf_cost is not None and (sized is None or name not in sized):
                total += leaf_cost
                continue
            total += self.estimate_field(rule, nodes, depth, size if sized is not None and name in sized else None,
                                         field_age)
        return total

    def estimate_field(self, rule: FieldCost, nodes: list[FieldNode], depth: int, override: int | None,
                       age: int | None = None) -> int:
        size = self.size(rule, nodes[0]) if rule.slicing else None
        if size is None:
            size = rule.assumed_size
        if rule.sized_fields:
            multiplier = 1 if override is None else override
            sized: frozenset[str] | None = rule.sized_fields
            child_size = size
        else:
            if override is not None:
                multiplier = override
            elif size is not None:
                multiplier = size
            else:
                multiplier = rule.fixed_multiplier
            sized = child_size = None
        runtimes = rule.runtimes
        if not runtimes:
            return multiplier * rule.weight
        selection_sets = [node.selection_set for node in nodes if node.selection_set is not None]
        if len(runtimes) == 1:
            children = self.estimate(runtimes[0], selection_sets, depth + 1, sized, child_size, age=age)
        else:  # the most expensive possible type; aliases counted as in that worst case
            aliases = self.aliases
            children = most = 0
            for runtime in runtimes:
                self.aliases = aliases
                children = max(children, self.estimate(runtime, selection_sets, depth + 1, sized, child_size, age=age))
                most = max(most, self.aliases)
            self.aliases = most
        return multiplier * (rule.weight + children)

    # -- the settlement -------------------------------------------------------------------------

    def actual(self, runtime: _Runtime, groups: dict[str, list[FieldNode]], data: dict[str, Any]) -> int:
        table = runtime.table
        total = 0
        for key, nodes in groups.items():
            rule = table.get(nodes[0].name.value)
            if rule is None:
                continue
            value = data.get(key, _MISSING)
            if value is not _MISSING:
                total += self.actual_field(rule, nodes, value)
        return total

    def actual_field(self, rule: FieldCost, nodes: list[FieldNode], value: Any) -> int:
        if value is None:
            return 0 if rule.is_list else rule.weight
        if rule.is_list:
            items = _flatten(value)
            total = rule.weight * len(items)
        else:
            items = [value]
            total = rule.weight
        runtimes = rule.runtimes
        if not runtimes:
            return total
        selection_sets = [node.selection_set for node in nodes if node.selection_set is not None]
        if len(runtimes) == 1:
            runtime = runtimes[0]
            groups = self.collect(runtime.matches, selection_sets)
            for item in items:
                if isinstance(item, dict):
                    total += self.actual(runtime, groups, item)
            return total
        by_type: dict[str, tuple[_Runtime, dict[str, list[FieldNode]]]] = {}

        def grouped(runtime: _Runtime) -> tuple[_Runtime, dict[str, list[FieldNode]]]:
            found = by_type.get(runtime.name)
            if found is None:
                found = by_type[runtime.name] = (runtime, self.collect(runtime.matches, selection_sets))
            return found

        for item in items:
            if not isinstance(item, dict):
                continue
            typename = item.get("__typename")
            candidates = [r for r in runtimes if r.name == typename] or runtimes
            total += max(self.actual(*grouped(r), item) for r in candidates)
        return total


def _flatten(value: Any) -> list[Any]:
    if not isinstance(value, list):
        return [value]
    if not any(isinstance(item, list) for item in value):
        return value
    flat: list[Any] = []
    for item in value:
        flat.extend(_flatten(item) if isinstance(item, list) else (item,))
    return flat


def _coerce(graphql_schema: GraphQLSchema, operation: OperationDefinitionNode,
            variables: dict[str, Any] | None) -> VariableValues:
    definitions = operation.variable_definitions
    if not definitions:
        return _NO_VARIABLES
    coerced = get_variable_values(graphql_schema, definitions, variables or {}, max_errors=10)
    if isinstance(coerced, list):
        raise RequestError(ErrorCode.BAD_USER_INPUT, coerced[0].message, errors=tuple(coerced))
    return coerced


def analyze(model: CostModel, graphql_schema: GraphQLSchema, document: DocumentNode,
            operation: OperationDefinitionNode, variables: dict[str, Any] | None,
            limits: ComplexityLimits) -> Analysis:
    """The estimated cost and the shape of one operation; QUERY_TOO_COMPLEX past `limits`.

    Variables that do not coerce raise BAD_USER_INPUT (execution would refuse them too).
    """
    walk = _Walk(graphql_schema, document, operation, variables, limits)
    root = model.root(operation.operation)
    groups = walk.collect(root.matches, [operation.selection_set])
    root_fields = sum(1 for nodes in groups.values() if nodes[0].name.value != "__typename")
    if root_fields > limits.max_root_fields:
        raise RequestError(ErrorCode.QUERY_TOO_COMPLEX,
                           f"The query asks for {root_fields} root fields; at most {limits.max_root_fields} are allowed.")
    cost = walk.estimate(root, [operation.selection_set], 1, None, None, groups)
    min_age = walk.min_age  # None: no field says how long its answer may be reused
    max_age = min_age if operation.operation is OperationType.QUERY and min_age is not None else UNCACHEABLE
    return Analysis(cost=cost, depth=walk.depth, aliases=walk.aliases, root_fields=root_fields, max_age=max_age)


def actual_cost(model: CostModel, graphql_schema: GraphQLSchema, document: DocumentNode,
                operation: OperationDefinitionNode, variables: dict[str, Any] | None,
                data: dict[str, Any] | None) -> int:
    """The same rule over the data a response carries: real list lengths, nothing below a null."""
    if not data:
        return 0
    walk = _Walk(graphql_schema, document, operation, variables, None)
    root = model.root(operation.operation)
    return walk.actual(root, walk.collect(root.matches, [operation.selection_set]), data)
