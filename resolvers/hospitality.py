"""Hospitality: the hotel a facility serves, from the hotel's property-management system."""

from __future__ import annotations

import strawberry

from adapters import models
from adapters.models import GuestStayState, SystemKind
from gateway.directory import FacilityEntry, SystemRef
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.local_time import every_local_today, local_day
from gateway.systems import PROPERTIES, STAYS


@strawberry.type(description="Today's guests at a hotel, as counts (no personal data).")
class GuestCounts:
    in_house: int = strawberry.field(description="Guests checked in now.")
    in_house_with_car: int = strawberry.field(description="Checked-in guests with a car registration on file.")
    arrivals_today: int = strawberry.field(description="Bookings due to arrive today (local day), not yet checked in.")
    departures_today: int = strawberry.field(description="Checked-in guests due to leave today (local day).")


@strawberry.type(description="The hotel a facility serves, from its property-management system.")
class HotelSummary:
    property_id: str = strawberry.field(description="The hotel's id in its property-management system.")
    name: str = strawberry.field(description="Name of the hotel.")
    ref: strawberry.Private[SystemRef]
    time_zone: strawberry.Private[str]

    @strawberry.field(description="Today's guest counts, from the property-management system.")
    async def guests(self, info: Info) -> GuestCounts:
        ctx = info.context
        start, end = local_day(ctx.now, self.time_zone)
        stays = await ctx.load(self.ref.system_id, STAYS, *every_local_today(ctx.now), info=info)
        mine = [s for s in stays.items.values() if s.property_id == self.ref.vendor_id]
        in_house = [s for s in mine if s.state is GuestStayState.CHECKED_IN]
        return GuestCounts(
            in_house=len(in_house),
            in_house_with_car=sum(1 for s in in_house if s.car_registration),
            arrivals_today=sum(
                1 for s in mine if s.state is GuestStayState.BOOKED and s.arrives_at and start <= s.arrives_at < end
            ),
            departures_today=sum(1 for s in in_house if s.departs_at and start <= s.departs_at < end),
        )


async def load_hotel(ctx: RequestContext, entry: FacilityEntry, info: Info) -> HotelSummary | None:
    ref = entry.ref(SystemKind.HOSPITALITY)
    if ref is None:
        return None
    hotel: models.HotelProperty = await ctx.record(ref, PROPERTIES, "property", info)
    return HotelSummary(property_id=hotel.vendor_id, name=hotel.name, ref=ref, time_zone=entry.config.time_zone)
