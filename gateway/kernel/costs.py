"""Query cost declared next to the fields, visibly in the SDL (the IBM / Apollo cost directives).

    @strawberry.field(description="…", directives=needs(Scope.FACILITIES_READ) + list_size(
        slicing_arguments=["first"], sized_fields=["edges"]))

prints as `facilities(first: Int! = 20, …): FacilityConnection @requiresScopes(…)
@listSize(slicingArguments: ["first"], sizedFields: ["edges"])`. `gateway.cost.CostModel`
reads these back when the schema is built, like `enforce_scopes` reads `@requiresScopes`.

Without a directive a field weighs 1 when it returns an object (0 for a scalar or enum), a
mutation 10 more, and a list field counts its items as `DEFAULT_LIST_SIZE`.
"""

from __future__ import annotations

import strawberry
from strawberry.schema_directive import Location
from strawberry.types.unset import UNSET


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    description="What one resolution of this field costs in query-cost points, instead of the default "
                "(1 for an object, 0 for a scalar or enum, 10 more for a mutation).",
)
class Cost:
    weight: int = strawberry.field(description="Points per resolution; a list field pays it per item.")


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    description="How many items a list field (or the lists named in `sizedFields`) is costed at: the value "
                "of the first slicing argument given, else `assumedSize`.",
)
class ListSize:
    assumed_size: int | None = strawberry.field(
        default=UNSET, description="Items assumed when no slicing argument gives a size.")
    slicing_arguments: list[str] | None = strawberry.field(
        default=UNSET, description="Arguments whose value is the number of items, e.g. `first`; the first one present counts.")
    sized_fields: list[str] | None = strawberry.field(
        default=UNSET, description="Fields of the returned object that are the sized lists (a connection's `edges`), "
                                   "instead of this field itself.")


def cost(weight: int) -> list[object]:
    """`directives=cost(5)`, or `needs(…) + cost(5)`."""
    return [Cost(weight=weight)]


def list_size(
    *,
    assumed_size: int | None = None,
    slicing_arguments: list[str] | None = None,
    sized_fields: list[str] | None = None,
) -> list[object]:
    """`directives=list_size(assumed_size=5)`, or `needs(…) + list_size(slicing_arguments=["first"])`."""
    if assumed_size is None and not slicing_arguments:
        raise ValueError("list_size needs an assumed_size or slicing_arguments")
    return [ListSize(
        assumed_size=UNSET if assumed_size is None else assumed_size,
        slicing_arguments=UNSET if not slicing_arguments else list(slicing_arguments),
        sized_fields=UNSET if not sized_fields else list(sized_fields),
    )]
