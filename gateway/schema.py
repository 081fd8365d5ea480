"""The public schema, assembled from the resolvers' domain areas.

`schema.graphql` at the top of the repository is this schema printed (`parkgate schema`);
a test fails when the committed file is stale.
"""

from __future__ import annotations

import strawberry

from resolvers.facilities import FacilityQueries


@strawberry.type(description="Read access to the operator's facilities and the systems behind them.")
class Query(FacilityQueries):
    pass


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query)


schema = build_schema()


def sdl() -> str:
    return schema.as_str() + "\n"
