"""Enforcement: what the LPR/citation platform knows about a facility's zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from adapters import models
from adapters.models import SystemKind
from gateway.directory import FacilityEntry, SystemRef
from gateway.errors import bad_input
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.costs import list_size
from gateway.kernel.local_time import every_local_today, local_day
from gateway.kernel.pii import personal
from gateway.systems import CITATIONS, ZONES
from resolvers.common import MAX_PAGE_SIZE, Money


@strawberry.type(name="Citation", description="A citation issued by the enforcement platform.")
class CitationNode:
    number: str = strawberry.field(description="The citation number.")
    issued_at: datetime = strawberry.field(description="When it was issued (UTC).")
    plate: str = strawberry.field(description="Licence plate as read; masked (e.g. B-•••34) without scope pii:read.")
    region: str | None = strawberry.field(description="Region of the plate, e.g. DE-BE.")
    violation_code: str = strawberry.field(description="The platform's violation code.")
    violation: str | None = strawberry.field(description="The violation in words.")
    fine: Money | None = strawberry.field(description="The fine.")
    status: str = strawberry.field(description="ISSUED, PAID, VOID or APPEALED, as the platform says.")


@strawberry.type(description="Enforcement at a facility, from the enforcement platform.")
class EnforcementSummary:
    zone_id: str = strawberry.field(description="The enforcement zone's code in the enforcement platform.")
    zone_name: str = strawberry.field(description="Name of the enforcement zone.")
    max_stay_minutes: int | None = strawberry.field(description="Longest permitted stay in the zone, where one applies.")
    ref: strawberry.Private[SystemRef]
    time_zone: strawberry.Private[str]

    async def _today(self, ctx: RequestContext, info: Info) -> list[models.Citation]:
        """The zone's citations since local midnight (the facility's time zone), newest first."""
        since, _ = local_day(ctx.now, self.time_zone)
        window_start, _ = every_local_today(ctx.now)
        citations = await ctx.load(self.ref.system_id, CITATIONS, window_start, info=info)
        mine = [c for c in citations.items.values() if c.zone_id == self.ref.vendor_id and c.issued_at >= since]
        return sorted(mine, key=lambda c: c.issued_at, reverse=True)

    @strawberry.field(description="Citations issued in the zone since local midnight (the facility's time zone), void ones excluded.")
    async def citations_today(self, info: Info) -> int:
        return sum(1 for c in await self._today(info.context, info) if c.status != "VOID")

    @strawberry.field(description="The latest citations issued in the zone today (local day), newest first.",
                      directives=list_size(slicing_arguments=["first"]))
    async def citations_issued_today(
        self, info: Info, first: Annotated[int, strawberry.argument(description="How many, 1 to 100.")] = 10
    ) -> list[CitationNode]:
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise bad_input(f"`first` must be between 1 and {MAX_PAGE_SIZE}.", argument="first")
        principal = info.context.principal
        return [
            CitationNode(number=c.number, issued_at=c.issued_at, plate=personal(c.plate, principal) or "",
                         region=c.region, violation_code=c.violation_code, violation=c.violation,
                         fine=Money.of(c.fine), status=c.status)
            for c in (await self._today(info.context, info))[:first]
        ]


async def load_enforcement(ctx: RequestContext, entry: FacilityEntry, info: Info) -> EnforcementSummary | None:
    ref = entry.ref(SystemKind.ENFORCEMENT)
    if ref is None:
        return None
    zone: models.EnforcementZone = await ctx.record(ref, ZONES, "zone", info)
    return EnforcementSummary(zone_id=zone.vendor_id, zone_name=zone.name, max_stay_minutes=zone.max_stay_minutes,
                              ref=ref, time_zone=entry.config.time_zone)
