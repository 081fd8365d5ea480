"""A second subgraph for the Federation tests (tests/e2e/test_federation.py): an EV-charging operator's
graph, written with strawberry's federation support, that extends parkgate's `Facility` with its
charging points and points each charging point back at its facility. It knows facilities only by id;
everything else about them comes from parkgate, through the router."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL


@dataclass(frozen=True)
class Charger:
    facility_id: str
    power_kw: float
    connector: str


#: charging point id -> where it is and what it is
CHARGERS: dict[str, Charger] = {
    "cp-hbf-1": Charger("berlin-hbf", 22.0, "TYPE_2"),
    "cp-hbf-2": Charger("berlin-hbf", 150.0, "CCS"),
    "cp-elbe-1": Charger("hamburg-elbe", 11.0, "TYPE_2"),
    "cp-kx-1": Charger("london-kings-cross", 50.0, "CCS"),
}


@strawberry.federation.type(keys=["id"], description="A charging point of the EV-charging operator.")
class ChargingPoint:
    id: strawberry.ID = strawberry.field(description="The charging point's id.")
    power_kw: float = strawberry.field(description="Maximum power in kW.")
    connector: str = strawberry.field(description="TYPE_2 or CCS.")

    @classmethod
    def of(cls, point_id: str) -> ChargingPoint:
        charger = CHARGERS[point_id]
        return cls(id=strawberry.ID(point_id), power_kw=charger.power_kw, connector=charger.connector)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> ChargingPoint | None:
        return cls.of(str(id)) if str(id) in CHARGERS else None

    # nullable: parkgate resolves nothing for a facility the asking client may not see
    @strawberry.field(description="The parking facility it stands in (resolved by parkgate).")
    def facility(self) -> Facility | None:
        return Facility(id=strawberry.ID(CHARGERS[str(self.id)].facility_id))


# parkgate's type and the root type: described by their owners (a description here that differed from
# parkgate's would be a composition hint)
@strawberry.federation.type(keys=["id"])
class Facility:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Facility:
        return cls(id=id)

    @strawberry.field(description="The charging points in this facility.")
    def charging_points(self) -> list[ChargingPoint]:
        return [ChargingPoint.of(point_id) for point_id, c in CHARGERS.items() if c.facility_id == str(self.id)]


@strawberry.type
class Query:
    @strawberry.field(description="Every charging point.")
    def charging_points(self) -> list[ChargingPoint]:
        return [ChargingPoint.of(point_id) for point_id in CHARGERS]

    @strawberry.field(description="One charging point by id.")
    def charging_point(self, id: strawberry.ID) -> ChargingPoint | None:
        return ChargingPoint.resolve_reference(id)


def charging_app() -> Starlette:
    """The subgraph at /graphql (in a Starlette app, for its lifespan under uvicorn)."""
    return Starlette(routes=[Route("/graphql", GraphQL(strawberry.federation.Schema(query=Query)))])
