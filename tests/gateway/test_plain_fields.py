"""Plain fields read directly (gateway/plain_fields.py) answer exactly what graphql-core's own
execution answers: the same data in the same key order, the same errors at the same paths, on
the gateway's schema over the sandbox and on a schema whose plain fields go wrong."""

from __future__ import annotations

from enum import Enum
from typing import Any

import orjson
import strawberry

from gateway.execution import Executor
from gateway.kernel.context import RequestContext
from gateway.kernel.selection import selected_below
from resolvers.schema import schema as gateway_schema
from tests.resolvers.test_facilities import FACILITIES
from tests.support.bed import Bed


def answer(result: Any) -> bytes:
    """data and errors (message, path) as bytes: key order counts."""
    errors = [(e.message, e.path) for e in result.errors or ()]
    return orjson.dumps({"data": result.data, "errors": sorted(errors, key=str)})


async def both(schema: strawberry.Schema, query: str, context: Any, variables: dict[str, Any] | None = None
               ) -> tuple[bytes, bytes]:
    """(the Executor's answer, strawberry's `schema.execute` answer) to `query`."""
    executor = Executor(schema)
    ours = await executor.execute(executor.prepare(query, None), context, variables, None)
    theirs = await schema.execute(query, variable_values=variables, context_value=context)
    return answer(ours), answer(theirs)


async def test_the_facilities_answer_is_graphql_cores_own(bed: Bed) -> None:
    runtime = bed.sandbox.runtime
    principal = await runtime.authenticator.authenticate(f"Bearer {bed.key('admin')}", None)
    queries = [
        FACILITIES,
        "{ facilities(first: 3) { edges { node { ...F } } } } fragment F on Facility { id name rates { currency lines { amount { amount } } } }",
        "query ($skip: Boolean!) { facilities { edges { node { id city @skip(if: $skip) sources { id status @include(if: $skip) } } } } }",
    ]
    for query in queries:
        for variables in ({"skip": True}, {"skip": False}):
            ours, theirs = await both(gateway_schema, query, RequestContext.for_request(runtime, principal), variables)
            assert ours == theirs, query


class Color(Enum):
    RED = "red"


@strawberry.type
class Leaf:
    name: str
    color: Color


@strawberry.type
class Thing:
    label: str
    count: int | None
    leaves: list[Leaf]


@strawberry.type
class Node:
    a: str
    b: str
    c: str
    d: str
    e: str


@strawberry.type
class Edge:
    node: Node


@strawberry.type
class Page:
    seen: list[str]
    edges: list[Edge]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        good = Thing(label="good", count=1, leaves=[Leaf(name="a", color=Color.RED)])
        no_label = Thing(label=None, count=2, leaves=[])  # type: ignore[arg-type]  # null where the type forbids it
        odd = Thing(label="odd", count="many", leaves=[Leaf(name="b", color="blue")])  # type: ignore[arg-type]
        return [good, no_label, odd]

    @strawberry.field
    def page(self, info: strawberry.Info) -> Page:
        return Page(seen=sorted(selected_below(info, "edges", "node")), edges=[])


async def test_plain_values_that_go_wrong_are_reported_as_graphql_core_reports_them() -> None:
    schema = strawberry.Schema(query=Query)
    ours, theirs = await both(schema, "{ things { label count leaves { name color } } }", None)
    assert ours == theirs
    assert b"Cannot return null for non-nullable field Thing.label" in ours
    assert b"Int cannot represent non-integer value" in ours


async def test_selected_below_follows_aliases_and_fragments_and_honours_skip_and_include() -> None:
    schema = strawberry.Schema(query=Query)
    query = ("query ($yes: Boolean!) { page { seen edges { node { a x: a ...F b @skip(if: $yes) ... on Node { c } } } } } "
             "fragment F on Node { d @include(if: $yes) e @include(if: false) }")
    result = await schema.execute(query, variable_values={"yes": True})
    assert result.errors is None and result.data == {"page": {"seen": ["a", "c", "d"], "edges": []}}
