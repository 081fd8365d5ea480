"""The baseline for facilities_bench: a plain strawberry schema serving captured data from memory.

Its own small types mirror the shape of the gateway's answer to THE facilities query (same
field names, same enums as enums, same nullability where it matters), and `facilities` hands
back objects built once at start-up from an answer captured from the sandbox. No vendor calls,
no merging, no loaders: what strawberry + graphql-core + starlette + uvicorn cost on their own
for a response of the same shape and size.

Schema extensions are stock strawberry ParserCache and ValidationCache, passed as classes
(strawberry 0.341 constructs a fresh extension per request from a class or factory; passing
instances is deprecated because one instance would be shared by concurrent requests; the LRU
caches themselves live at module level in strawberry, so caching still spans requests).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.enum
class OccupancyStatus(Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    SPACES_AVAILABLE = "SPACES_AVAILABLE"
    ALMOST_FULL = "ALMOST_FULL"
    FULL = "FULL"
    UNKNOWN = "UNKNOWN"


@strawberry.enum
class Freshness(Enum):
    LIVE = "LIVE"
    STALE = "STALE"
    NO_DATA = "NO_DATA"


@strawberry.enum
class OccupancyMethod(Enum):
    COUNTED = "COUNTED"
    SENSED = "SENSED"


@strawberry.enum
class RateKind(Enum):
    FLAT = "FLAT"
    TIERED = "TIERED"
    INCREMENTING = "INCREMENTING"


@strawberry.enum
class SourceStatus(Enum):
    UP = "UP"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


@strawberry.type
class OccupancyFigure:
    occupied: int | None


@strawberry.type
class Occupancy:
    free: int | None
    occupied: int | None
    percent_occupied: float | None
    status: OccupancyStatus
    freshness: Freshness
    served: OccupancyMethod | None
    counted: OccupancyFigure | None
    sensed: OccupancyFigure | None


@strawberry.type
class Money:
    amount: str
    currency: str


@strawberry.type
class RateLine:
    kind: RateKind
    amount: Money


@strawberry.type
class RateTable:
    currency: str
    lines: list[RateLine]


@strawberry.type
class Source:
    id: strawberry.ID
    status: SourceStatus


@strawberry.type
class Facility:
    id: strawberry.ID
    name: str
    city: str | None
    time_zone: str
    capacity: int | None
    occupancy: Occupancy | None
    rates: RateTable | None
    sources: list[Source]


@strawberry.type
class FacilityEdge:
    node: Facility


@strawberry.type
class FacilityConnection:
    total_count: int
    edges: list[FacilityEdge]


# --- building the in-memory objects from a captured GraphQL answer ------------------------------


def _figure(d: dict[str, Any] | None) -> OccupancyFigure | None:
    return None if d is None else OccupancyFigure(occupied=d["occupied"])


def _occupancy(d: dict[str, Any] | None) -> Occupancy | None:
    if d is None:
        return None
    return Occupancy(
        free=d["free"],
        occupied=d["occupied"],
        percent_occupied=d["percentOccupied"],
        status=OccupancyStatus(d["status"]),
        freshness=Freshness(d["freshness"]),
        served=None if d["served"] is None else OccupancyMethod(d["served"]),
        counted=_figure(d["counted"]),
        sensed=_figure(d["sensed"]),
    )


def _rates(d: dict[str, Any] | None) -> RateTable | None:
    if d is None:
        return None
    return RateTable(
        currency=d["currency"],
        lines=[
            RateLine(kind=RateKind(line["kind"]), amount=Money(amount=line["amount"]["amount"], currency=line["amount"]["currency"]))
            for line in d["lines"]
        ],
    )


def _facility(d: dict[str, Any]) -> Facility:
    return Facility(
        id=strawberry.ID(d["id"]),
        name=d["name"],
        city=d["city"],
        time_zone=d["timeZone"],
        capacity=d["capacity"],
        occupancy=_occupancy(d["occupancy"]),
        rates=_rates(d["rates"]),
        sources=[Source(id=strawberry.ID(s["id"]), status=SourceStatus(s["status"])) for s in d["sources"]],
    )


def build_schema(data: dict[str, Any]) -> strawberry.Schema:
    """A schema whose `facilities` serves the facilities in `data` (the `data` of a captured answer)."""
    facilities = [_facility(edge["node"]) for edge in data["facilities"]["edges"]]

    @strawberry.type
    class Query:
        @strawberry.field
        async def facilities(self, first: int = 20) -> FacilityConnection:
            page = facilities[:first]
            return FacilityConnection(total_count=len(facilities), edges=[FacilityEdge(node=f) for f in page])

    return strawberry.Schema(query=Query, extensions=[ParserCache, ValidationCache])


def build_app(data: dict[str, Any]):  # noqa: ANN201 - a Starlette app
    """Strawberry's stock ASGI GraphQL app on starlette at /graphql, plus /healthz."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from strawberry.asgi import GraphQL

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    graphql_app = GraphQL(build_schema(data), graphql_ide=None)
    return Starlette(routes=[Route("/graphql", graphql_app), Route("/healthz", healthz, methods=["GET"])])
