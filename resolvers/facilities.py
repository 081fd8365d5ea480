"""Facilities: one entity whose fields come from several vendor systems.

The configuration says which garage is which in every system; each field fetches its part
from its own system through the request's loaders and the parts are merged here. A part
whose system fails is null with a coded error at its path; the rest of the answer stands.
"""

from __future__ import annotations

import bisect
import math
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import get_object_definition

from adapters import models
from adapters.models import SystemKind
from gateway.auth.scopes import Scope
from gateway.directory import FacilityEntry, LevelEntry
from gateway.errors import GatewayError, bad_input
from gateway.kernel.caching import max_age
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.costs import cost, list_size
from gateway.kernel.eager import gather_eagerly
from gateway.kernel.permissions import forbidden, needs, scopes_of
from gateway.kernel.selection import selected_below
from gateway.systems import FACILITIES
from resolvers.common import (
    Address,
    FacilityKind,
    GeoPoint,
    PageInfo,
    check_page_size,
    decode_cursor,
    encode_cursor,
)
from resolvers.enforcement import EnforcementSummary, load_enforcement
from resolvers.hospitality import HotelSummary, load_hotel
from resolvers.occupancy import Occupancy, load_part, merge
from resolvers.occupancy_history import HISTORY_COST, OccupancyHistory, occupancy_history
from resolvers.page_reads import read_page
from resolvers.rates import Quote, RateTable, load_quote, load_rates
from resolvers.sources import Source, source_of

EARTH_RADIUS_M = 6_371_000.0


async def parcs_facility(ctx: RequestContext, entry: FacilityEntry, info: Info | None = None) -> models.FacilityRecord | None:
    """The facility as its PARCS describes it (address, capacity, levels), or None without a PARCS."""
    ref = entry.ref(SystemKind.PARCS)
    if ref is None:
        return None
    return await ctx.record(ref, FACILITIES, "facility", info)


async def facility_occupancy(ctx: RequestContext, entry: FacilityEntry) -> Occupancy | None:
    async def compute() -> Occupancy | None:
        counted, sensed = await gather_eagerly(
            load_part(ctx, entry.ref(SystemKind.PARCS), entry.ref(SystemKind.PARCS), None),
            load_part(ctx, entry.ref(SystemKind.GUIDANCE), entry.ref(SystemKind.GUIDANCE), None),
        )
        return merge(counted, sensed, ctx.config.occupancy.prefer)

    return await ctx.once(("occupancy", entry.id), compute)


@strawberry.type(description="A level or zone of a facility.")
class Level:
    id: strawberry.ID = strawberry.field(description="Gateway id of the level: `<facility id>:<level id>`.")
    name: str = strawberry.field(description="Name of the level.")
    kind: FacilityKind = strawberry.field(description="LEVEL or ZONE.")
    capacity: int | None = strawberry.field(description="Spaces on the level, from configuration or the PARCS.")
    entry: strawberry.Private[LevelEntry | None]
    facility: strawberry.Private[FacilityEntry]

    @strawberry.field(description="Occupancy of the level, where a system measures it per level (usually the guidance sensors).",
                      directives=needs(Scope.OCCUPANCY_READ) + max_age(10))
    async def occupancy(self, info: Info) -> Occupancy | None:
        if self.entry is None:
            return None
        ctx = info.context
        counted, sensed = await gather_eagerly(*(
            load_part(ctx, self.entry.refs.get(kind), self.facility.ref(kind), self.capacity)
            for kind in (SystemKind.PARCS, SystemKind.GUIDANCE)
        ))
        occupancy = merge(counted, sensed, ctx.config.occupancy.prefer)
        if occupancy is not None:
            occupancy.note_stale(info)
        return occupancy


@strawberry.type(description="A parking facility, merged from every system that knows it.")
class Facility:
    id: strawberry.ID = strawberry.field(description="Gateway id of the facility.")
    name: str = strawberry.field(description="Name of the facility.")
    kind: FacilityKind = strawberry.field(description="Always FACILITY at this level; levels and zones are in `levels`.")
    city: str | None = strawberry.field(description="City the facility is in.")
    time_zone: str = strawberry.field(description="IANA time zone of the facility, for local times (e.g. Europe/Berlin).")
    entry: strawberry.Private[FacilityEntry]

    @classmethod
    def of(cls, entry: FacilityEntry) -> Facility:
        conf = entry.config
        return cls(id=strawberry.ID(entry.id), name=conf.name, kind=models.FacilityKind.FACILITY, city=conf.city,
                   time_zone=conf.time_zone, entry=entry)

    @strawberry.field(description="Postal address, from the PARCS.")
    async def address(self, info: Info) -> Address | None:
        record = await parcs_facility(info.context, self.entry, info)
        if record is None or record.address is None:
            return None
        a = record.address
        return Address(street=a.street, postal_code=a.postal_code, city=a.city, country=a.country)

    @strawberry.field(description="Position of the entrance, from configuration or else the PARCS.")
    async def location(self, info: Info) -> GeoPoint | None:
        point = await facility_location(info.context, self.entry)
        return GeoPoint(latitude=point.latitude, longitude=point.longitude) if point else None

    @strawberry.field(description="Total spaces, from the PARCS.")
    async def capacity(self, info: Info) -> int | None:
        record = await parcs_facility(info.context, self.entry, info)
        return record.capacity if record else None

    @strawberry.field(description="Levels and zones: from configuration where mapped, else as the PARCS lists them.",
                      directives=list_size(assumed_size=10))
    async def levels(self, info: Info) -> list[Level]:
        if self.entry.levels:
            return [
                Level(id=strawberry.ID(level.id), name=level.config.name, kind=models.FacilityKind(level.config.kind),
                      capacity=level.config.capacity, entry=level, facility=self.entry)
                for level in self.entry.levels
            ]
        record = await parcs_facility(info.context, self.entry, info)
        zones = record.zones if record else ()
        return [
            Level(id=strawberry.ID(f"{self.entry.id}:{zone.vendor_id}"), name=zone.name, kind=zone.kind,
                  capacity=zone.capacity, entry=None, facility=self.entry)
            for zone in zones
        ]

    @strawberry.field(description="Occupancy: counted (PARCS) and sensed (guidance) figures, one served, and their discrepancy.",
                      directives=needs(Scope.OCCUPANCY_READ) + max_age(10))
    async def occupancy(self, info: Info) -> Occupancy | None:
        occupancy = await facility_occupancy(info.context, self.entry)
        if occupancy is not None:
            occupancy.note_stale(info)
        return occupancy

    @strawberry.field(description="Occupancy over a time range, in equal buckets, per measuring system: the day's curve. "
                                  "Kept from the figures systems reported (webhooks and polls) for `occupancy.history_retention_s`.",
                      directives=needs(Scope.OCCUPANCY_READ) + cost(HISTORY_COST) + max_age(10))
    async def occupancy_history(
        self,
        info: Info,
        start: Annotated[datetime, strawberry.argument(name="from", description="Start of the range, with a UTC offset.")],
        end: Annotated[datetime, strawberry.argument(name="to", description="End of the range, with a UTC offset; after "
                                                                             "`from`, at most 7 days later.")],
        interval: Annotated[int, strawberry.argument(description="Bucket length in seconds, at least 10; at most 1440 "
                                                                 "buckets in the range.")] = 300,
    ) -> OccupancyHistory | None:
        return await occupancy_history(info, self.entry, start, end, interval)

    @strawberry.field(description="The tariff, from the PARCS.", directives=needs(Scope.RATES_READ) + max_age(3600))
    async def rates(self, info: Info) -> RateTable | None:
        return await load_rates(info.context, self.entry.ref(SystemKind.PARCS), info)

    @strawberry.field(description="A price for parking here from `start` to `end` (UTC instants), from the PARCS.",
                      directives=needs(Scope.RATES_READ) + cost(5) + max_age(60))
    async def quote(
        self,
        info: Info,
        start: Annotated[datetime, strawberry.argument(description="Arrival, with a UTC offset.")],
        end: Annotated[datetime, strawberry.argument(description="Departure, with a UTC offset; after `start`, at most 30 days later.")],
    ) -> Quote | None:
        return await load_quote(info.context, self.entry.id, self.entry.ref(SystemKind.PARCS), start, end)

    @strawberry.field(description="Enforcement at this facility: its zone, today's citations, from the enforcement platform.",
                      directives=needs(Scope.ENFORCEMENT_READ) + max_age(30))
    async def enforcement(self, info: Info) -> EnforcementSummary | None:
        return await load_enforcement(info.context, self.entry, info)

    @strawberry.field(description="The hotel this facility serves, from its property-management system.",
                      directives=needs(Scope.HOSPITALITY_READ) + max_age(60))
    async def hotel(self, info: Info) -> HotelSummary | None:
        return await load_hotel(info.context, self.entry, info)

    @strawberry.field(description="Every system that feeds this facility, with its id there and how it is doing.",
                      directives=list_size(assumed_size=len(SystemKind)) + max_age(5))
    def sources(self, info: Info) -> list[Source]:
        systems = info.context.runtime.systems
        return [source_of(systems, ref.system_id, ref.vendor_id) for ref in self.entry.refs.values()]


@strawberry.type(description="An edge in a facility connection.")
class FacilityEdge:
    node: Facility = strawberry.field(description="The facility.")
    cursor: str = strawberry.field(description="Opaque cursor of this edge; pass it as `after` to continue after it.")


@strawberry.type(description="A page of facilities (Relay connection).")
class FacilityConnection:
    edges: list[FacilityEdge] = strawberry.field(description="The facilities on this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits in the whole list.")
    total_count: int = strawberry.field(description="Facilities matching the filter, on all pages.")


@strawberry.input(description="A circle on the map: facilities whose entrance lies within it.")
class NearInput:
    latitude: float = strawberry.field(description="Latitude of the centre, decimal degrees.")
    longitude: float = strawberry.field(description="Longitude of the centre, decimal degrees.")
    radius_meters: float = strawberry.field(description="Radius in metres, up to 100 km.")


@strawberry.input(description="Ways to narrow the list of facilities; all given conditions must hold.")
class FacilityFilter:
    city: str | None = strawberry.field(default=None, description="Only facilities in this city (case-insensitive).")
    near: NearInput | None = strawberry.field(default=None, description="Only facilities within this circle.")
    has_free_spaces: bool | None = strawberry.field(
        default=None,
        description="true: only facilities whose served occupancy shows free spaces; false: only those without. Facilities whose occupancy is unknown match neither.",
    )


def distance_m(a: models.GeoPoint, lat: float, lon: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(a.latitude), math.radians(lat)
    dp, dl = p2 - p1, math.radians(lon - a.longitude)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


async def facility_location(ctx: RequestContext, entry: FacilityEntry) -> models.GeoPoint | None:
    configured = entry.config.location
    if configured is not None:
        return models.GeoPoint(configured.latitude, configured.longitude)
    record = await parcs_facility(ctx, entry)
    return record.location if record else None


def check_filter(where: FacilityFilter, scopes: frozenset[str]) -> None:
    if where.has_free_spaces is not None and Scope.OCCUPANCY_READ.value not in scopes:
        # Filtering on occupancy reveals it: the same scope as reading it.
        required = frozenset({Scope.OCCUPANCY_READ.value})
        raise forbidden("filter.hasFreeSpaces", required, required)
    near = where.near
    if near is None:
        return
    if not (-90 <= near.latitude <= 90 and -180 <= near.longitude <= 180):
        raise bad_input("`near` needs a latitude within ±90 and a longitude within ±180.", argument="filter.near")
    if not (0 < near.radius_meters <= 100_000):
        raise bad_input("`near.radiusMeters` must be more than 0 and at most 100000.", argument="filter.near.radiusMeters")


async def matches(ctx: RequestContext, entry: FacilityEntry, where: FacilityFilter) -> bool:
    if where.city is not None and (entry.config.city or "").casefold() != where.city.casefold():
        return False
    if where.near is not None:
        try:
            point = await facility_location(ctx, entry)
        except GatewayError:
            return False  # position unknown right now: not provably near
        if point is None or distance_m(point, where.near.latitude, where.near.longitude) > where.near.radius_meters:
            return False
    if where.has_free_spaces is not None:
        try:
            occupancy = await facility_occupancy(ctx, entry)
        except GatewayError:
            return False
        if occupancy is None or occupancy.free is None or (occupancy.free > 0) != where.has_free_spaces:
            return False
    return True


CURSOR_KIND = "facility"


async def list_facilities(ctx: RequestContext, first: int, after: str | None, where: FacilityFilter | None) -> FacilityConnection:
    check_page_size(first)
    entries = ctx.visible_entries()
    if where is not None:
        check_filter(where, ctx.principal.scopes)
        keep = await gather_eagerly(*(matches(ctx, entry, where) for entry in entries))
        entries = [entry for entry, ok in zip(entries, keep, strict=True) if ok]
    start = 0
    if after is not None:
        after_id = decode_cursor(CURSOR_KIND, after)
        position = ctx.directory.position
        if after_id not in position or not ctx.principal.sees(after_id):
            raise bad_input("`after` names a facility that does not exist.", argument="after")
        # Continue after the cursor's position in the full order, so a filter change does not skip items
        # (entries keep the directory's order: a binary search, not a scan per entry).
        start = bisect.bisect_right([position[entry.id] for entry in entries], position[after_id])
    page = entries[start:start + first]
    edges = [FacilityEdge(node=Facility.of(entry), cursor=encode_cursor(CURSOR_KIND, entry.id)) for entry in page]
    return FacilityConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=start + first < len(entries),
            has_previous_page=start > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=len(entries),
    )


#: the scopes each `Facility` field needs (its `@requiresScopes`), by GraphQL name
FACILITY_FIELD_SCOPES = {NameConverter().get_graphql_name(field): scopes_of(field)
                         for field in get_object_definition(Facility, strict=True).fields}


def readable_node_fields(info: Info) -> frozenset[str]:
    """The `Facility` fields the query selects on a page's nodes that this client may read."""
    granted = info.context.principal.scopes
    return frozenset(name for name in selected_below(info, "edges", "node")
                     if FACILITY_FIELD_SCOPES.get(name, frozenset()) <= granted)


@strawberry.type
class FacilityQueries:
    @strawberry.field(description="Facilities the client may see, a page at a time, optionally filtered.",
                      directives=needs(Scope.FACILITIES_READ) + list_size(slicing_arguments=["first"], sized_fields=["edges"])
                      + max_age(10))
    async def facilities(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 0 to 100.")] = 20,
        after: Annotated[str | None, strawberry.argument(description="Cursor of the edge to continue after.")] = None,
        filter: Annotated[FacilityFilter | None, strawberry.argument(description="Conditions the facilities must meet.")] = None,
    ) -> FacilityConnection | None:
        connection = await list_facilities(info.context, first, after, filter)
        await read_page(info.context, [edge.node.entry for edge in connection.edges], readable_node_fields(info))
        return connection

    @strawberry.field(description="One facility by its gateway id; null when there is none or the client may not see it.",
                      directives=needs(Scope.FACILITIES_READ) + max_age(60))
    def facility(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Gateway id of the facility.")]) -> Facility | None:
        ctx = info.context
        entry = ctx.directory.by_id.get(str(id))
        if entry is None or not ctx.principal.sees(entry.id):
            return None  # a facility the client may not see does not exist for it
        return Facility.of(entry)

    @strawberry.field(description="The vendor systems behind the facilities the client may see, and how each is doing.",
                      directives=needs(Scope.FACILITIES_READ) + list_size(assumed_size=10) + max_age(5))
    def sources(self, info: Info) -> list[Source] | None:
        ctx = info.context
        systems = ctx.runtime.systems
        if ctx.principal.facilities is None:
            return [source_of(systems, system_id) for system_id in systems.adapters]
        feeding = {ref.system_id for entry in ctx.visible_entries() for ref in entry.refs.values()}
        return [source_of(systems, system_id) for system_id in systems.adapters if system_id in feeding]
