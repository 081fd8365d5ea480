"""What a query asks for below the field being resolved: the field names it selects at a path.

A list resolver that knows which fields of its items the query wants can have their data read
for the whole page at once, before any item's field resolves (resolvers/page_reads.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def selected_below(info: strawberry.Info, *path: str) -> frozenset[str]:
    """The names of the fields selected at `path` below the current field (e.g. `("edges", "node")`
    under a connection), through aliases and fragments. A field that `@skip` or `@include` leaves
    out is not counted; `@defer`-style directives are not told apart (a field is selected or not)."""
    level = [child for own in _fields(info.selected_fields) for child in _fields(own.selections)]
    for name in path:
        level = [child for field in level if field.name == name for child in _fields(field.selections)]
    return frozenset(field.name for field in level)


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, fragments opened (whatever their type condition: a list's items
    are of one type here), those a directive leaves out skipped."""
    for selection in selections:
        if not _included(selection.directives):
            continue
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def _included(directives: dict[str, dict[str, object]]) -> bool:
    skip, include = directives.get("skip"), directives.get("include")
    return not (skip is not None and skip.get("if") is True) and not (include is not None and include.get("if") is False)
