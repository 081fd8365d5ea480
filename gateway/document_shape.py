"""A document's shape once its fragments are spread, bounded before anything else walks it.

Every later walk over a document — validation, the cost estimate, execution — expands fragment
spreads, and a few hundred bytes of fragments that spread each other can stand for millions of
selections. So right after parsing, and before validation, one walk expands the document the way
execution would (fields merged by response key, a fragment spread once per merged selection set)
and stops as soon as one of the bounds is passed:

- `max_selections`: selections visited (fields, spreads and inline fragments, every occurrence);
  this is the walk's own work, so the walk takes time linear in the expanded size and never
  more than the ceiling;
- `max_depth`: field nesting (root fields are depth 1); below `__schema` / `__type`,
  `max_introspection_depth` instead (15): the standard introspection queries (graphql-js's, so
  GraphiQL's, and graphql-core's) nest `ofType` nine times, which makes them exactly 15 deep;
- `MAX_OVERLAPS`: pairs of fields that share a response path. Validation compares each such pair
  (graphql-core's OverlappingFieldsCanBeMerged is quadratic in them: 800 copies of one field
  take 0.8 s), so their number bounds what validation can cost.

The walk knows no types: it follows every inline fragment and spread whatever its type
condition, so what it counts is an upper bound of what execution will select. A fragment spread
twice in one merged set is expanded once, which also stops cycles (validation refuses those).
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from gateway.errors import ErrorCode, RequestError

#: pairs of same-path fields validation may have to compare (≈ 1.2 µs each here: ~12 ms)
MAX_OVERLAPS = 10_000
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})

__all__ = ["MAX_OVERLAPS", "Shape", "ShapeLimits", "measure"]


@dataclass(frozen=True, slots=True)
class ShapeLimits:
    max_selections: int = 2_000
    max_depth: int = 12
    max_introspection_depth: int = 15


@dataclass(frozen=True, slots=True)
class Shape:
    selections: int  # selections visited with every spread expanded
    depth: int  # deepest field nesting, introspection included
    overlaps: int  # pairs of fields sharing a response path


class _Expansion:
    __slots__ = ("depth", "fragments", "limits", "overlaps", "selections")

    def __init__(self, fragments: dict[str, FragmentDefinitionNode], limits: ShapeLimits) -> None:
        self.fragments = fragments
        self.limits = limits
        self.selections = 0
        self.depth = 0
        self.overlaps = 0

    def merged(self, selection_sets: list[SelectionSetNode], depth: int, introspection: bool = False) -> None:
        """Walk selection sets that execution merges into one, then their fields' merged children."""
        groups: dict[str, list[FieldNode]] = {}
        spread: set[str] = set()
        for selection_set in selection_sets:
            self._collect(selection_set, groups, spread)
        if not groups:
            return
        limit = self.limits.max_introspection_depth if introspection else self.limits.max_depth
        if depth > limit:
            what = "introspection query" if introspection else "query"
            raise RequestError(ErrorCode.QUERY_TOO_COMPLEX, f"The {what} is nested more than {limit} fields deep.")
        self.depth = max(self.depth, depth)
        for key, nodes in groups.items():
            if len(nodes) > 1:
                self.overlaps += len(nodes) * (len(nodes) - 1) // 2
                if self.overlaps > MAX_OVERLAPS:
                    raise RequestError(
                        ErrorCode.QUERY_TOO_COMPLEX,
                        f"The query selects `{key}` {len(nodes)} times in one place (with its fragments spread); "
                        "ask for each field once.")
            children = [node.selection_set for node in nodes if node.selection_set is not None]
            if children:
                self.merged(children, depth + 1, introspection or nodes[0].name.value in INTROSPECTION_ROOTS)

    def _collect(self, selection_set: SelectionSetNode, groups: dict[str, list[FieldNode]], spread: set[str]) -> None:
        """Fields by response key, inline fragments and spreads expanded. A fragment is spread once per
        merged set (as execution does), which also stops a cycle; a stack, not recursion, so a long
        chain of fragments cannot exhaust Python's."""
        pending = [selection_set]
        while pending:
            for selection in pending.pop().selections:
                self.selections += 1
                if self.selections > self.limits.max_selections:
                    raise RequestError(
                        ErrorCode.QUERY_TOO_COMPLEX,
                        f"The query selects more than {self.limits.max_selections} fields once its fragments "
                        "are spread; ask for less in one request.")
                if type(selection) is FieldNode:
                    key = selection.alias.value if selection.alias else selection.name.value
                    groups.setdefault(key, []).append(selection)
                elif type(selection) is InlineFragmentNode:
                    pending.append(selection.selection_set)
                elif type(selection) is FragmentSpreadNode:
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is not None and name not in spread:
                        spread.add(name)
                        pending.append(fragment.selection_set)


def measure(document: DocumentNode, limits: ShapeLimits) -> Shape:
    """The expanded shape of every operation in `document` (and of fragments no operation uses,
    which validation walks too); QUERY_TOO_COMPLEX as soon as a bound is passed."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    expansion = _Expansion(fragments, limits)
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            expansion.merged([definition.selection_set], 1)
    used = _spread_names(document)
    for name, fragment in fragments.items():
        if name not in used:
            expansion.merged([fragment.selection_set], 1)
    return Shape(expansion.selections, expansion.depth, expansion.overlaps)


def _spread_names(document: DocumentNode) -> set[str]:
    """Names of the fragments spread anywhere in the document (linear: no expansion)."""
    names: set[str] = set()
    pending = [d.selection_set for d in document.definitions
               if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)]
    while pending:
        for selection in pending.pop().selections:
            if type(selection) is FragmentSpreadNode:
                names.add(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                pending.append(selection.selection_set)
    return names
