"""What a query asks for below the field being resolved: the field names it selects at a path.

A list resolver that knows which fields of its items the query wants can have their data read
for the whole page at once, before any item's field resolves (resolvers/page_reads.py).

The walk reads the document itself, fragments by reference, each fragment opened once per
level as graphql-core's own field collection does: a document whose fragments spread each other
over and over (a "fragment bomb") costs its size, not its expansion. (strawberry's
`info.selected_fields` expands every spread: that is exponential in such a document.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import strawberry
from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionNode,
    VariableNode,
)


def selected_below(info: strawberry.Info, *path: str) -> frozenset[str]:
    """The names of the fields selected at `path` below the current field (e.g. `("edges", "node")`
    under a connection), through aliases and fragments (whatever their type condition: a list's
    items are of one type here). A field that `@skip` or `@include` leaves out is not counted."""
    raw = info._raw_info
    fragments: dict[str, Any] = raw.fragments
    given: Any = raw.variable_values  # strawberry's executor passes the coerced dict, graphql-core's a container of it
    variables: dict[str, Any] = getattr(given, "coerced", given) or {}
    level: list[FieldNode] = list(raw.field_nodes)
    for name in path:
        level = [field for field in _fields(level, fragments, variables) if field.name.value == name]
    return frozenset(field.name.value for field in _fields(level, fragments, variables))


def _fields(parents: Iterable[FieldNode], fragments: dict[str, Any], variables: dict[str, Any]) -> Iterator[FieldNode]:
    """The fields selected directly under `parents`, each fragment opened once."""
    opened: set[str] = set()
    pending: list[SelectionNode] = [s for parent in parents if parent.selection_set for s in parent.selection_set.selections]
    while pending:
        selection = pending.pop(0)
        if not _included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            pending[0:0] = selection.selection_set.selections
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in opened:
            opened.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                pending[0:0] = fragment.selection_set.selections


def _included(selection: SelectionNode, variables: dict[str, Any]) -> bool:
    for directive in selection.directives or ():
        if directive.name.value not in ("skip", "include"):
            continue
        condition = next((arg.value for arg in directive.arguments or () if arg.name.value == "if"), None)
        if isinstance(condition, VariableNode):
            value = variables.get(condition.name.value)
        else:
            value = condition.value if isinstance(condition, BooleanValueNode) else None
        if (directive.name.value == "skip") is (value is True):
            return False
    return True
