"""Enforcement: what the LPR/citation platform knows about a facility's zone."""

from __future__ import annotations

import strawberry

from adapters import models
from adapters.errors import UpstreamError
from adapters.models import SystemKind
from gateway.directory import FacilityEntry, SystemRef
from gateway.errors import ErrorCode, GatewayError, from_upstream
from resolvers.context import Info, RequestContext
from resolvers.local_time import every_local_today, local_day


@strawberry.type(description="Enforcement at a facility, from the enforcement platform.")
class EnforcementSummary:
    zone_id: str = strawberry.field(description="The enforcement zone's code in the enforcement platform.")
    zone_name: str = strawberry.field(description="Name of the enforcement zone.")
    max_stay_minutes: int | None = strawberry.field(description="Longest permitted stay in the zone, where one applies.")
    ref: strawberry.Private[SystemRef]
    time_zone: strawberry.Private[str]

    @strawberry.field(description="Citations issued in the zone since local midnight (the facility's time zone), void ones excluded.")
    async def citations_today(self, info: Info) -> int:
        ctx = info.context
        since, _ = local_day(ctx.now, self.time_zone)
        window_start, _ = every_local_today(ctx.now)
        try:
            citations = await ctx.loaders.resource(self.ref.system_id, "citations", window_start)
        except UpstreamError as exc:
            raise from_upstream(exc) from None
        return sum(
            1 for c in citations.items.values()
            if c.zone_id == self.ref.vendor_id and c.issued_at >= since and c.status != "VOID"
        )


async def load_enforcement(ctx: RequestContext, entry: FacilityEntry) -> EnforcementSummary | None:
    ref = entry.ref(SystemKind.ENFORCEMENT)
    if ref is None:
        return None
    try:
        zones = await ctx.loaders.resource(ref.system_id, "zones")
    except UpstreamError as exc:
        raise from_upstream(exc) from None
    zone: models.EnforcementZone | None = zones.items.get(ref.vendor_id)
    if zone is None:
        raise GatewayError(ErrorCode.UPSTREAM_ERROR, f"Source {ref.system_id!r} does not know zone {ref.vendor_id!r}.",
                           system=ref.system_id)
    return EnforcementSummary(zone_id=zone.vendor_id, zone_name=zone.name, max_stay_minutes=zone.max_stay_minutes,
                              ref=ref, time_zone=entry.config.time_zone)
