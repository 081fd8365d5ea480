"""Citations: issue one to the enforcement platform, void one, list them by facility and time.

The enforcement platform owns citations; a facility's zone there is in the configuration
(`systems: {enforcement: "<zone code>"}`). Tenancy: a client acts only in the zones of the
facilities it may see, and a citation from another zone reads as unknown.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import strawberry

from adapters.models import Citation as DomainCitation
from adapters.models import CitationRequest, SystemKind
from gateway.auth.scopes import Scope
from gateway.codec import dump, load
from gateway.directory import FacilityEntry
from gateway.errors import bad_input
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.costs import list_size
from gateway.kernel.permissions import needs
from gateway.kernel.pii import personal
from resolvers.common import Money, PageInfo, offset_page
from resolvers.enforcement import CitationNode
from resolvers.reservations import IdempotencyKey
from resolvers.writes import (
    aware,
    facility_or_zone,
    idempotent,
    live_read,
    not_found,
    plate_of,
    system_of,
    text_of,
    vendor_call,
    vendor_read,
    visible_facility,
)

MAX_RANGE = timedelta(days=92)
_REGION = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"


def citation_node(ctx: RequestContext, c: DomainCitation) -> CitationNode:
    return CitationNode(number=c.number, issued_at=c.issued_at, plate=personal(c.plate, ctx.principal) or "",
                        region=c.region, violation_code=c.violation_code, violation=c.violation,
                        fine=Money.of(c.fine), status=c.status)


@strawberry.input(description="A citation to issue.")
class IssueCitationInput:
    plate: str = strawberry.field(description="The plate as read (case, spaces and dashes do not matter).")
    violation_code: str = strawberry.field(description="The enforcement platform's violation code, e.g. V12.")
    facility_id: strawberry.ID | None = strawberry.field(default=None, description="Where: the facility; or give `zoneId`.")
    zone_id: str | None = strawberry.field(default=None, description="Where: the platform's zone code; or give `facilityId`.")
    region: str | None = strawberry.field(default=None, description="The plate's region, e.g. DE-BE.")
    note: str | None = strawberry.field(default=None, description="The officer's note, up to 200 characters.")


@strawberry.type(description="One citation in a list.")
class CitationEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this citation.")
    node: CitationNode = strawberry.field(description="The citation.")
    facility_id: strawberry.ID = strawberry.field(description="The facility whose zone it was issued in.")


@strawberry.type(description="A page of citations.")
class CitationConnection:
    edges: list[CitationEdge] = strawberry.field(description="The citations of this page, newest first.")
    page_info: PageInfo = strawberry.field(description="Paging.")
    total_count: int = strawberry.field(description="Citations matching the filter, on every page.")


def zones_of(entries: list[FacilityEntry]) -> dict[tuple[str, str], FacilityEntry]:
    """(enforcement system, zone code) -> facility, for the facilities given."""
    return {(ref.system_id, ref.vendor_id): entry for entry in entries
            if (ref := entry.ref(SystemKind.ENFORCEMENT)) is not None}


@strawberry.type
class CitationQueries:
    @strawberry.field(description="Citations issued in the zones of the facilities this client may see, newest first.",
                      directives=needs(Scope.ENFORCEMENT_READ) + list_size(slicing_arguments=["first"], sized_fields=["edges"]))
    async def citations(
        self, info: Info,
        since: Annotated[datetime, strawberry.argument(description="Issued at or after (UTC offset required).")],
        until: Annotated[datetime | None, strawberry.argument(description="Issued before; default now.")] = None,
        facility_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only this facility.")] = None,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 20,
        after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
    ) -> CitationConnection | None:
        ctx = info.context
        since = aware(since, "since")
        until = ctx.now if until is None else aware(until, "until")
        if until <= since or until - since > MAX_RANGE:
            raise bad_input("`until` must be after `since`, at most 92 days later.", argument="until")
        entries = [visible_facility(ctx, str(facility_id))] if facility_id is not None else ctx.visible_entries()
        zones = zones_of(entries)
        found: list[tuple[FacilityEntry, DomainCitation]] = []
        for system_id in sorted({s for s, _ in zones}):
            batch = await live_read(ctx, system_id, ctx.runtime.systems.enforcement(system_id).citations(since))
            found += [(zones[(system_id, c.zone_id or "")], c) for c in batch.items
                      if (system_id, c.zone_id or "") in zones and since <= c.issued_at < until]
        found.sort(key=lambda item: (item[1].issued_at, item[1].number), reverse=True)
        edges, page_info = offset_page("citations", found, first, after)
        return CitationConnection(
            edges=[CitationEdge(cursor=cursor, node=citation_node(ctx, c), facility_id=strawberry.ID(entry.id))
                   for cursor, (entry, c) in edges],
            page_info=page_info, total_count=len(found))


@strawberry.type
class CitationMutations:
    @strawberry.mutation(description="Issue a citation to the enforcement platform.", directives=needs(Scope.ENFORCEMENT_WRITE))
    async def issue_citation(self, info: Info, input: Annotated[IssueCitationInput, strawberry.argument(description="The citation.")],
                             idempotency_key: IdempotencyKey) -> CitationNode | None:
        ctx = info.context
        plate = plate_of(input.plate, "input.plate")
        code = text_of(input.violation_code, "input.violationCode", 20)
        region = text_of(input.region, "input.region", 10)
        if region is not None and not all(ch in _REGION for ch in region.upper()):
            raise bad_input("`input.region` must be a region code such as DE-BE.", argument="input.region")
        note = text_of(input.note, "input.note")
        entry = facility_or_zone(ctx, None if input.facility_id is None else str(input.facility_id), input.zone_id,
                                 "input.")
        ref = system_of(entry, SystemKind.ENFORCEMENT, "citations")
        arguments = {"zone": [ref.system_id, ref.vendor_id], "plate": plate, "code": code, "region": region, "note": note}

        async def issue(reference: str) -> dict[str, Any]:
            adapter = ctx.runtime.systems.enforcement(ref.system_id)
            request = CitationRequest(ref.vendor_id, plate, code or "", reference, region and region.upper(), note)
            return dump(await vendor_call(ctx, ref.system_id, adapter.issue_citation(request)))

        return citation_node(ctx, load(DomainCitation, await idempotent(ctx, "issueCitation", idempotency_key, arguments, issue)))

    @strawberry.mutation(description="Void a citation (voiding a void one returns it as it is).", directives=needs(Scope.ENFORCEMENT_WRITE))
    async def void_citation(
        self, info: Info,
        number: Annotated[str, strawberry.argument(description="The citation number.")],
        reason: Annotated[str, strawberry.argument(description="Why it is voided, up to 200 characters.")],
        idempotency_key: IdempotencyKey,
    ) -> CitationNode | None:
        ctx = info.context
        why = text_of(reason, "reason")
        number = text_of(number, "number", 40) or ""

        async def void(reference: str) -> dict[str, Any]:
            # Every enforcement system of the client's zones is asked, whether the number is in one of
            # them, in another zone, or nowhere: the answer and its cost do not tell those apart.
            zones = zones_of(ctx.visible_entries())
            for system_id in sorted({s for s, _ in zones}):
                adapter = ctx.runtime.systems.enforcement(system_id)
                citation = await vendor_read(ctx, system_id, adapter.citation(number))
                if citation is not None and (system_id, citation.zone_id or "") in zones:
                    return dump(await vendor_call(ctx, system_id, adapter.void_citation(number, why or "")))
            raise not_found("citation", number, "number")

        return citation_node(ctx, load(DomainCitation, await idempotent(ctx, "voidCitation", idempotency_key,
                                                                         {"number": number, "reason": why}, void)))
