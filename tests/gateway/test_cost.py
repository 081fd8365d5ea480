"""Query cost: the rule by hand on a small schema of our own, the limits, the settlement after
execution, the product schema's defaults, and property tests that the cost never depends on
how a query is spelled."""

from __future__ import annotations

from datetime import timezone
from enum import Enum
from typing import Annotated, Any

import pytest
import strawberry
from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListTypeNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableDefinitionNode,
    VariableNode,
    get_introspection_query,
    get_named_type,
    get_operation_ast,
    is_composite_type,
    is_list_type,
    get_nullable_type,
    parse,
    print_ast,
    validate,
    value_from_ast_untyped,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from gateway.cost import (
    DEFAULT_LIST_SIZE,
    MUTATION_WEIGHT,
    Analysis,
    ComplexityLimits,
    CostModel,
    actual_cost,
    analyze,
)
from gateway.errors import ErrorCode
from gateway.errors import RequestError
from gateway.kernel.costs import Cost, ListSize, cost, list_size
from resolvers.schema import schema as product_schema
from resolvers.schema import sdl as product_sdl

# -- a small schema of our own ---------------------------------------------------------------


@strawberry.enum
class Color(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Tag:
    name: str
    color: Color


@strawberry.type
class Owner:
    name: str


@strawberry.type
class Part:
    name: str

    @strawberry.field(directives=list_size(assumed_size=2))
    def grid(self) -> list[list[Tag]]:  # a list of lists is multiplied once
        return [[Tag(name="g1", color=Color.RED)], [Tag(name="g2", color=Color.BLUE)]]


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    color: Color
    labels: list[str]  # scalars: 0, however many

    @strawberry.field(directives=cost(5))
    def price(self) -> int:
        return int(self.id) * 100

    @strawberry.field
    def tags(self) -> list[Tag]:  # undeclared: DEFAULT_LIST_SIZE
        return [Tag(name=f"t{i}", color=Color.RED) for i in range(2)]

    @strawberry.field(directives=list_size(assumed_size=3))
    def parts(self) -> list[Part]:
        return [Part(name="p")]

    @strawberry.field(directives=list_size(slicing_arguments=["first"]))
    def related(self, first: int = 2) -> list[Item]:
        return [make_item(int(self.id) + 1)][: max(0, min(first, 1))]

    @strawberry.field
    def owner(self) -> Owner | None:
        return None


def make_item(i: int) -> Item:
    return Item(id=strawberry.ID(str(i)), name=f"item {i}", color=Color.BLUE, labels=["a", "b"])


@strawberry.type
class ItemEdge:
    node: Item
    cursor: str


@strawberry.type
class PageInfo:
    has_next_page: bool


@strawberry.type
class ItemConnection:
    edges: list[ItemEdge]
    page_info: PageInfo
    total_count: int


Searchable = Annotated[Item | Tag, strawberry.union("Searchable")]


@strawberry.type
class Query:
    @strawberry.field(directives=list_size(slicing_arguments=["first", "last"], sized_fields=["edges"], assumed_size=50))
    def items(self, first: int | None = None, last: int | None = None) -> ItemConnection:
        n = first if first is not None else last if last is not None else 50
        edges = [ItemEdge(node=make_item(i), cursor=str(i)) for i in range(max(0, min(n, 3)))]
        return ItemConnection(edges=edges, page_info=PageInfo(has_next_page=n > 3), total_count=3)

    @strawberry.field
    def item(self, id: strawberry.ID) -> Item | None:
        return make_item(1) if str(id) == "1" else None

    @strawberry.field(directives=list_size(slicing_arguments=["limit"]))
    def search(self, limit: int = 5) -> list[Item]:
        return [make_item(i) for i in range(max(0, min(limit, 2)))]

    @strawberry.field
    def lookup(self, id: strawberry.ID) -> Searchable | None:
        return make_item(1) if str(id) == "1" else Tag(name="t", color=Color.BLUE)

    @strawberry.field(directives=cost(7))
    def report(self) -> str:
        return "ok"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def add_item(self, name: str) -> Item:
        return make_item(9)

    @strawberry.mutation
    def touch(self) -> bool:
        return True

    @strawberry.mutation(directives=cost(3) + list_size(slicing_arguments=["count"]))
    def import_items(self, count: int) -> list[Item]:
        return [make_item(i) for i in range(max(0, min(count, 2)))]


TEST_SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)
TEST_SDL = TEST_SCHEMA.as_str()
TEST_MODEL = CostModel.of(TEST_SCHEMA)
PRODUCT_MODEL = CostModel.of(product_schema)
LOOSE = ComplexityLimits(max_depth=10_000, max_aliases=10_000_000, max_root_fields=10_000_000)


def run(query: str, variables: dict[str, Any] | None = None, *, model: CostModel = TEST_MODEL,
        graphql_schema: GraphQLSchema | None = None, limits: ComplexityLimits = LOOSE, check: bool = True) -> Analysis:
    graphql_schema = graphql_schema or TEST_SCHEMA._schema
    document = parse(query)
    if check:
        assert validate(graphql_schema, document) == []
    operation = get_operation_ast(document)
    assert operation is not None
    return analyze(model, graphql_schema, document, operation, variables, limits)


def settle(query: str, variables: dict[str, Any] | None = None) -> tuple[int, int]:
    """(estimate, actual) for a query run on the test schema."""
    result = TEST_SCHEMA.execute_sync(query, variable_values=variables)
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    estimate = analyze(TEST_MODEL, TEST_SCHEMA._schema, document, operation, variables, LOOSE).cost
    return estimate, actual_cost(TEST_MODEL, TEST_SCHEMA._schema, document, operation, variables, result.data)


# -- declared in the SDL ------------------------------------------------------------------------


def test_directives_are_printed_in_the_sdl() -> None:
    assert "directive @cost(weight: Int!) on FIELD_DEFINITION" in TEST_SDL
    assert "directive @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!]) on FIELD_DEFINITION" in TEST_SDL
    assert 'items(first: Int = null, last: Int = null): ItemConnection! @listSize(assumedSize: 50, slicingArguments: ["first", "last"], sizedFields: ["edges"])' in TEST_SDL
    assert "price: Int! @cost(weight: 5)" in TEST_SDL
    assert "parts: [Part!]! @listSize(assumedSize: 3)" in TEST_SDL
    assert 'importItems(count: Int!): [Item!]! @cost(weight: 3) @listSize(slicingArguments: ["count"])' in TEST_SDL


def test_model_reads_the_directives_and_the_defaults() -> None:
    m = TEST_MODEL
    assert (m.field("Item", "price").weight, m.field("Item", "name").weight, m.field("Item", "color").weight) == (5, 0, 0)
    assert m.field("Query", "item").weight == 1
    assert m.field("Item", "tags").fixed_multiplier == DEFAULT_LIST_SIZE
    assert m.field("Item", "parts").fixed_multiplier == 3
    assert m.field("Query", "items").sized_fields == {"edges"}
    assert m.field("Query", "items").slicing == ("first", "last")
    assert m.field("Mutation", "addItem").weight == 1 + MUTATION_WEIGHT
    assert m.field("Mutation", "touch").weight == MUTATION_WEIGHT
    assert m.field("Mutation", "importItems").weight == 3
    assert m.field("Query", "lookup").weight == 1 and len(m.field("Query", "lookup").runtimes) == 2


def test_bad_declarations_fail_when_the_schema_is_built() -> None:
    @strawberry.type
    class Q:
        @strawberry.field(directives=list_size(slicing_arguments=["frist"]))
        def xs(self, first: int = 1) -> list[Tag]:
            return []

    with pytest.raises(ValueError, match="frist"):
        CostModel.of(strawberry.Schema(query=Q))

    @strawberry.type
    class Q2:
        @strawberry.field(directives=list_size(assumed_size=1))
        def x(self) -> Tag:
            return Tag(name="", color=Color.RED)

    with pytest.raises(ValueError, match="not a list"):
        CostModel.of(strawberry.Schema(query=Q2))
    with pytest.raises(ValueError):
        list_size()


# -- the rule, by hand --------------------------------------------------------------------------

ITEMS_PAGE = "totalCount pageInfo { hasNextPage } edges { cursor node { id tags { name } } }"  # 2 + n × 12

HAND: list[tuple[str, dict[str, Any] | None, int]] = [
    # object 1, scalars and enums 0, a declared weight on a scalar
    ('{ item(id: 1) { id name color price } }', None, 1 + 5),
    # undeclared list 10, assumedSize 3, scalar list 0
    ('{ item(id: 1) { tags { name } parts { name } labels } }', None, 1 + 10 * 1 + 3 * 1),
    # connection: the size goes to `edges`, not to the connection itself
    ('{ items(first: 4) { %s } }' % ITEMS_PAGE, None, 1 + 1 + 4 * (1 + (1 + 10))),
    ('{ items(last: 7) { %s } }' % ITEMS_PAGE, None, 2 + 7 * 12),
    ('{ items(first: null, last: 3) { %s } }' % ITEMS_PAGE, None, 2 + 3 * 12),
    ('{ items { %s } }' % ITEMS_PAGE, None, 2 + 50 * 12),
    ('{ items(first: 0) { %s } }' % ITEMS_PAGE, None, 2),
    ('{ items(first: -5) { edges { cursor node { id } } } }', None, 1),
    # nested lists: slicing-argument defaults apply
    ('{ search { related { related(first: 3) { id } } } }', None, 5 * (1 + 2 * (1 + 3 * 1))),
    # a list of lists is multiplied once
    ('{ item(id: 1) { parts { grid { name } } } }', None, 1 + 3 * (1 + 2 * 1)),
    # variables: given, the variable's default, absent (the argument's default), explicit null
    ('query ($n: Int = 6) { search(limit: $n) { id } }', {}, 6),
    ('query ($n: Int = 6) { search(limit: $n) { id } }', {"n": 2}, 2),
    ('query ($n: Int) { search(limit: $n) { id } }', {}, 5),
    ('query ($f: Int) { items(first: $f) { %s } }' % ITEMS_PAGE, {"f": None}, 2 + 50 * 12),
    ('query ($f: Int) { item(id: 1) { related(first: $f) { id } } }', {}, 1 + 2),
    ('query ($f: Int, $l: Int) { items(first: $f, last: $l) { %s } }' % ITEMS_PAGE, {"l": 2}, 2 + 2 * 12),
    # fragments, aliases
    ('{ a: item(id: 1) { ...F } b: item(id: 2) { ...F } } fragment F on Item { id tags { name } }', None, 2 * 11),
    ('{ item(id: 1) { ... on Item { tags { ... { name } } } } }', None, 11),
    # fields with one response key are resolved once, as execution merges them
    ('{ item(id: 1) { id } item(id: 1) { name tags { name } } }', None, 11),
    ('{ item(id: 1) { ...A ...A ...B } } fragment A on Item { tags { name } } fragment B on Item { tags { color } }', None, 11),
    # a union: the most expensive possible type
    ('{ lookup(id: 1) { ... on Item { tags { name } price } ... on Tag { name } } }', None, 1 + 15),
    ('{ lookup(id: 1) { __typename ... on Tag { name } } }', None, 1),
    # @skip / @include
    ('query ($s: Boolean!) { item(id: 1) { tags @skip(if: $s) { name } parts @include(if: false) { name } } }', {"s": True}, 1),
    ('query ($s: Boolean!) { item(id: 1) { tags @skip(if: $s) { name } parts @include(if: false) { name } } }', {"s": False}, 11),
    ('query ($s: Boolean = true) { item(id: 1) { ... @include(if: $s) { tags { name } } } }', None, 11),
    ('query ($s: Boolean = true) { item(id: 1) { ...F @skip(if: $s) } } fragment F on Item { tags { name } }', None, 1),
    # __typename and introspection are free
    ('{ report __typename }', None, 7),
    ('{ __schema { types { name fields { name } } } __type(name: "Item") { name } }', None, 0),
    # mutations: +10 on top, unless declared
    ('mutation { addItem(name: "x") { id tags { name } } touch }', None, (11 + 10) + 10),
    ('mutation { importItems(count: 4) { id } }', None, 4 * 3),
    ('mutation ($c: Int!) { importItems(count: $c) { tags { name } } }', {"c": 2}, 2 * (3 + 10)),
]


@pytest.mark.parametrize(("query", "variables", "expected"), HAND)
def test_cost_by_hand(query: str, variables: dict[str, Any] | None, expected: int) -> None:
    assert run(query, variables).cost == expected


def test_shape() -> None:
    analysis = run('{ a: item(id: 1) { ...F } b: item(id: 2) { ...F } item(id: 3) { id } report }'
                   ' fragment F on Item { related { x: related { id } } }')
    assert analysis == Analysis(cost=analysis.cost, depth=4, aliases=4, root_fields=4)
    assert run('{ __typename report }').root_fields == 1
    assert run('{ report: report }').aliases == 0


def test_variables_that_do_not_coerce_are_bad_user_input() -> None:
    with pytest.raises(RequestError) as raised:
        run('query ($n: Int!) { search(limit: $n) { id } }', {"n": "many"})
    assert raised.value.code is ErrorCode.BAD_USER_INPUT
    with pytest.raises(RequestError) as raised:  # null for `limit: Int! = 5`
        run('query ($n: Int) { search(limit: $n) { id } }', {"n": None})
    assert raised.value.code is ErrorCode.BAD_USER_INPUT


# -- limits -------------------------------------------------------------------------------------


def nested(levels: int) -> str:
    query = "id"
    for _ in range(levels - 2):
        query = f"related {{ {query} }}"
    return f"{{ item(id: 1) {{ {query} }} }}"


def test_depth_limit() -> None:
    limits = ComplexityLimits()
    assert run(nested(12), limits=limits).depth == 12
    with pytest.raises(RequestError) as raised:
        run(nested(13), limits=limits)
    assert (raised.value.code, raised.value.status) == (ErrorCode.QUERY_TOO_COMPLEX, 400)
    # through fragments too
    with pytest.raises(RequestError):
        run('{ item(id: 1) { ...A } } fragment A on Item { related { related { id } } }',
            limits=ComplexityLimits(max_depth=3))


def test_alias_limit() -> None:
    def aliased(n: int) -> str:
        return "{ " + " ".join(f"a{i}: report" for i in range(n)) + " }"

    assert run(aliased(30), limits=ComplexityLimits(max_root_fields=100)).aliases == 30
    with pytest.raises(RequestError) as raised:
        run(aliased(31), limits=ComplexityLimits(max_root_fields=100))
    assert raised.value.code is ErrorCode.QUERY_TOO_COMPLEX
    # aliases inside a fragment spread twice count twice
    with pytest.raises(RequestError):
        run('{ a: item(id: 1) { ...F } b: item(id: 2) { ...F } } fragment F on Item { x: id y: name }',
            limits=ComplexityLimits(max_aliases=5))


def test_root_field_limit() -> None:
    def roots(n: int) -> str:
        return "{ " + " ".join(f"r{i}: report" for i in range(n)) + " __typename }"

    assert run(roots(10), limits=ComplexityLimits()).root_fields == 10
    with pytest.raises(RequestError) as raised:
        run(roots(11), limits=ComplexityLimits())
    assert raised.value.code is ErrorCode.QUERY_TOO_COMPLEX


def test_introspection_passes_the_default_limits() -> None:
    query = get_introspection_query(descriptions=True)
    analysis = run(query, limits=ComplexityLimits())
    assert (analysis.cost, analysis.depth) == (0, 1)
    assert run(query, model=PRODUCT_MODEL, graphql_schema=product_schema._schema, limits=ComplexityLimits()).cost == 0


def test_fragment_cycles_do_not_recurse_forever() -> None:
    query = '{ item(id: 1) { ...A } } fragment A on Item { id related { ...A } }'  # invalid: never validated here
    with pytest.raises(RequestError) as raised:
        run(query, limits=ComplexityLimits(), check=False)
    assert raised.value.code is ErrorCode.QUERY_TOO_COMPLEX
    self_spread = '{ item(id: 1) { ...B } } fragment B on Item { id ...B }'
    assert run(self_spread, check=False).cost == 1
    document = parse(query)
    data = {"item": {"id": "1", "related": [{"id": "2", "related": []}]}}
    assert actual_cost(TEST_MODEL, TEST_SCHEMA._schema, document, get_operation_ast(document), None, data) == 1 + 1


# -- settling after execution -------------------------------------------------------------------


def test_actual_cost_counts_what_came_back() -> None:
    # 3 edges instead of 4, 2 tags instead of 10
    assert settle('{ items(first: 4) { %s } }' % ITEMS_PAGE) == (50, 1 + 1 + 3 * (1 + 1 + 2))
    # a null object costs its own weight and nothing below it
    assert settle('{ item(id: 2) { tags { name } parts { name } } }') == (1 + 10 + 3, 1)
    assert settle('{ item(id: 1) { owner { name } } }') == (2, 2)
    # lists of lists are counted item by item
    assert settle('{ item(id: 1) { parts { grid { name } } } }') == (1 + 3 * 3, 1 + 1 * (1 + 2))
    # a union, with and without __typename
    assert settle('{ lookup(id: 2) { __typename ... on Item { tags { name } } ... on Tag { name } } }') == (11, 1)
    assert settle('{ lookup(id: 1) { ... on Item { tags { name } } ... on Tag { name } } }') == (11, 3)
    assert settle('mutation { importItems(count: 5) { id } addItem(name: "x") { id } }') == (5 * 3 + 11, 2 * 3 + 11)
    assert settle('query ($s: Boolean!) { search { tags @include(if: $s) { name } } }', {"s": False}) == (5, 2)
    estimate, actual = settle('{ a: search(limit: 1) { ...F } b: search { ...F } } fragment F on Item { related { id } }')
    assert (estimate, actual) == (1 * (1 + 2) + 5 * (1 + 2), 1 * (1 + 1) + 2 * (1 + 1))


def test_actual_cost_of_nothing() -> None:
    document = parse("{ report }")
    assert actual_cost(TEST_MODEL, TEST_SCHEMA._schema, document, get_operation_ast(document), None, None) == 0


# -- the product schema: the defaults that hold whatever is declared ------------------------------


def product(query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> Analysis:
    return run(query, variables, model=PRODUCT_MODEL, graphql_schema=product_schema._schema, **kwargs)


def test_product_defaults() -> None:
    graphql_schema = product_schema._schema
    mutation = graphql_schema.mutation_type
    for type_name, graphql_type in graphql_schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            rule = PRODUCT_MODEL.field(type_name, field_name)
            assert rule is not None
            base = (1 if is_composite_type(get_named_type(field.type)) else 0) + (MUTATION_WEIGHT if graphql_type is mutation else 0)
            if not declares(type_name, field_name, Cost):
                assert rule.weight == base, rule
            if is_list_type(get_nullable_type(field.type)) and not declares(type_name, field_name, ListSize):
                assert rule.fixed_multiplier == DEFAULT_LIST_SIZE, rule


def declares(type_name: str, field_name: str, directive: type) -> bool:
    definition = product_schema.get_type_by_name(type_name)
    return any(isinstance(d, directive) for f in definition.fields
               if product_schema.config.name_converter.get_graphql_name(f) == field_name for d in f.directives)


def test_product_objects_scalars_mutations() -> None:
    assert product('{ facility(id: "f") { id name city capacity address { city } location { latitude } } }').cost == 1 + 1 + 1
    assert product('mutation { revokeClient(id: "c") { id name } }').cost == 1 + MUTATION_WEIGHT
    assert product('mutation { rotateClientKey(id: "c") { key client { id } } }').cost == 1 + MUTATION_WEIGHT + 1
    # a scalar list costs nothing
    assert product('{ client(id: "c") { scopes facilities } }').cost == 1


def test_product_lists() -> None:
    scopes = PRODUCT_MODEL.field("Query", "scopes")
    assert product("{ scopes { name } }").cost == scopes.fixed_multiplier * 1
    levels = PRODUCT_MODEL.field("Facility", "levels")
    assert product('{ facility(id: "f") { levels { id } } }').cost == 1 + levels.fixed_multiplier * 1
    audit = PRODUCT_MODEL.field("Query", "auditLog")
    expected = 7 if audit.slicing else audit.fixed_multiplier
    assert product('{ auditLog(first: 7) { id } }').cost == expected


REALISTIC = """
query Facilities($first: Int!, $after: String, $withRates: Boolean = false) {
  facilities(first: $first, after: $after, filter: {city: "Berlin"}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        ...FacilityCard
        rates @include(if: $withRates) { currency lines { kind amount { amount currency } } }
        levels { id name capacity occupancy { ...Figures } }
        sources { id kind status }
      }
    }
  }
}
fragment FacilityCard on Facility {
  id name city timeZone capacity
  address { street city }
  location { latitude longitude }
  occupancy { ...Figures discrepancy counted { ...Figure } sensed { ...Figure } }
}
fragment Figures on Occupancy { capacity occupied free status trend freshness ageSeconds }
fragment Figure on OccupancyFigure { source occupied free status observedAt consistency }
"""


def test_realistic_query_on_the_product_schema() -> None:
    analysis = product(REALISTIC, {"first": 20}, limits=ComplexityLimits())
    assert (analysis.depth, analysis.aliases, analysis.root_fields) == (6, 0, 1)
    m = PRODUCT_MODEL
    levels, sources = m.field("Facility", "levels").fixed_multiplier, m.field("Facility", "sources").fixed_multiplier
    node = 1 + 1 + 1 + (1 + 1 + 1) + levels * (1 + 1) + sources * 1
    edges = 20 * (1 + node) if m.field("Query", "facilities").sized_fields else DEFAULT_LIST_SIZE * (1 + node)
    assert analysis.cost == 1 + 1 + edges


async def test_settling_a_real_answer(bed: Any) -> None:
    query = "query { facilities(first: 3) { edges { node { id levels { id } sources { id } } } } }"
    body = await bed.graphql(query)
    document = parse(query)
    operation = get_operation_ast(document)
    estimate = analyze(PRODUCT_MODEL, product_schema._schema, document, operation, None, ComplexityLimits()).cost
    actual = actual_cost(PRODUCT_MODEL, product_schema._schema, document, operation, None, body["data"])
    edges = body["data"]["facilities"]["edges"]
    assert 0 < len(edges) <= 3
    assert actual == 1 + sum(1 + 1 + len(e["node"]["levels"]) + len(e["node"]["sources"]) for e in edges)
    assert actual <= estimate


# -- spelling never changes the cost: rewriters on the AST --------------------------------------


def type_node(type_: Any) -> Any:
    if isinstance(type_, GraphQLNonNull):
        return NonNullTypeNode(type=type_node(type_.of_type))
    if isinstance(type_, GraphQLList):
        return ListTypeNode(type=type_node(type_.of_type))
    return NamedTypeNode(name=NameNode(value=type_.name))


class Respell:
    """Rewrite an operation (without named fragments) keeping what it asks for."""

    def __init__(self, graphql_schema: GraphQLSchema, *, fragments: bool = False, inline: bool = False,
                 aliases: bool = False, variables: bool = False) -> None:
        self.schema = graphql_schema
        self.fragments, self.inline, self.aliases, self.variables = fragments, inline, aliases, variables
        self.definitions: list[FragmentDefinitionNode] = []
        self.variable_definitions: list[VariableDefinitionNode] = []
        self.values: dict[str, Any] = {}

    def document(self, document: DocumentNode) -> tuple[str, dict[str, Any]]:
        operation = get_operation_ast(document)
        assert operation is not None and not any(isinstance(d, FragmentDefinitionNode) for d in document.definitions)
        root = self.schema.get_root_type(operation.operation)
        selection_set = self.selection_set(operation.selection_set, root)
        rewritten = OperationDefinitionNode(
            operation=operation.operation, name=operation.name, directives=operation.directives,
            variable_definitions=tuple(operation.variable_definitions or ()) + tuple(self.variable_definitions),
            selection_set=selection_set,
        )
        return print_ast(DocumentNode(definitions=(rewritten, *self.definitions))), self.values

    def selection_set(self, selection_set: SelectionSetNode, parent: Any) -> SelectionSetNode:
        result = SelectionSetNode(selections=tuple(self.selection(s, parent) for s in selection_set.selections))
        if self.fragments:
            name = f"F{len(self.definitions)}"
            self.definitions.append(FragmentDefinitionNode(
                name=NameNode(value=name), type_condition=NamedTypeNode(name=NameNode(value=parent.name)),
                selection_set=result, directives=()))
            result = SelectionSetNode(selections=(FragmentSpreadNode(name=NameNode(value=name), directives=()),))
        if self.inline:
            result = SelectionSetNode(selections=(InlineFragmentNode(
                type_condition=NamedTypeNode(name=NameNode(value=parent.name)), selection_set=result, directives=()),))
        return result

    def selection(self, selection: Any, parent: Any) -> Any:
        if isinstance(selection, InlineFragmentNode):
            condition = self.schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
            return InlineFragmentNode(type_condition=selection.type_condition, directives=selection.directives,
                                      selection_set=self.selection_set(selection.selection_set, condition))
        assert isinstance(selection, FieldNode)
        name = selection.name.value
        field = None if name.startswith("__") else parent.fields[name]
        arguments = tuple(selection.arguments or ())
        if self.variables and field is not None:
            arguments = tuple(self.argument(argument, field) for argument in arguments)
        alias = selection.alias
        if self.aliases:
            alias = NameNode(value=(alias.value if alias else name) + "_respelt")
        sub = None
        if selection.selection_set is not None:
            sub = self.selection_set(selection.selection_set, get_named_type(field.type))
        return FieldNode(alias=alias, name=selection.name, arguments=arguments, directives=selection.directives,
                         selection_set=sub)

    def argument(self, argument: ArgumentNode, field: Any) -> ArgumentNode:
        if isinstance(argument.value, VariableNode):
            return argument
        name = f"v{len(self.variable_definitions)}"
        self.variable_definitions.append(VariableDefinitionNode(
            variable=VariableNode(name=NameNode(value=name)), type=type_node(field.args[argument.name.value].type),
            directives=()))
        self.values[name] = value_from_ast_untyped(argument.value)
        return ArgumentNode(name=argument.name, value=VariableNode(name=NameNode(value=name)))


SPELLINGS = {
    "named fragments": {"fragments": True},
    "inline fragments": {"inline": True},
    "aliases": {"aliases": True},
    "variables": {"variables": True},
    "all at once": {"fragments": True, "inline": True, "aliases": True, "variables": True},
}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_spellings(query: str, model: CostModel, graphql_schema: GraphQLSchema) -> None:
    document = parse(query)
    assert validate(graphql_schema, document) == [], query  # hypothesis-graphql's documents are valid
    operation = get_operation_ast(document)
    original = analyze(model, graphql_schema, document, operation, None, LOOSE)
    for spelling, options in SPELLINGS.items():
        text, variables = Respell(graphql_schema, **options).document(document)
        respelt = parse(text)
        assert validate(graphql_schema, respelt) == [], (spelling, text)
        analysis = analyze(model, graphql_schema, respelt, get_operation_ast(respelt), variables, LOOSE)
        assert (analysis.cost, analysis.depth, analysis.root_fields) == (original.cost, original.depth, original.root_fields), (
            spelling, query, text, variables)
        if not options.get("aliases"):
            assert analysis.aliases == original.aliases, (spelling, text)


@PROPERTY
@given(query=queries(TEST_SDL) | mutations(TEST_SDL))
def test_spelling_never_changes_the_cost(query: str) -> None:
    check_spellings(query, TEST_MODEL, TEST_SCHEMA._schema)


DATETIMES = st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: nodes.String(d.isoformat()))
PRODUCT_SCALARS = {"DateTime": DATETIMES, "Date": st.dates().map(lambda d: nodes.String(d.isoformat()))}


@PROPERTY
@given(query=queries(product_sdl(), custom_scalars=PRODUCT_SCALARS)
       | mutations(product_sdl(), custom_scalars=PRODUCT_SCALARS))
def test_spelling_never_changes_the_cost_on_the_product_schema(query: str) -> None:
    check_spellings(query, PRODUCT_MODEL, product_schema._schema)


@PROPERTY
@given(query=queries(TEST_SDL) | mutations(TEST_SDL))
def test_actual_cost_never_exceeds_the_estimate_when_lists_are_within_their_sizes(query: str) -> None:
    # the test schema's resolvers return at most the declared or default sizes
    document = parse(query)
    assert validate(TEST_SCHEMA._schema, document) == [], query
    estimate, actual = settle(query)
    assert 0 <= actual <= estimate
