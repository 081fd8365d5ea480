"""Permits: a plate's standing right to park at a facility, written to the PARCS that runs its gates.

The PARCS is the system that owns permits here: it is what opens the barrier for a permit
holder. Ids are `<facility id>:<id in the PARCS>`; every write is idempotent (resolvers/writes.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeAlias

import strawberry

from adapters.models import SystemKind
from adapters.operation_models import Permit as DomainPermit
from adapters.operation_models import PermitChange, PermitRequest
from adapters.operation_models import PermitStatus as DomainStatus
from gateway.auth.scopes import Scope
from gateway.codec import dump, load
from gateway.directory import FacilityEntry, SystemRef
from gateway.errors import bad_input
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.costs import list_size
from gateway.kernel.permissions import needs
from gateway.kernel.pii import personal
from gateway.systems import PERMITS
from resolvers.common import MAX_PAGE_SIZE
from resolvers.reservations import IdempotencyKey
from resolvers.writes import (
    aware,
    idempotent,
    parcs_record,
    parcs_records,
    plate_of,
    system_of,
    text_of,
    vendor_call,
    visible_facility,
)

PermitStatus: TypeAlias = DomainStatus  # the domain enum, made a GraphQL enum in place (see resolvers/common.py)
strawberry.enum(PermitStatus, description="ACTIVE, PENDING (starts later), EXPIRED or REVOKED.")


@strawberry.type(description="A permit: a plate's standing right to park at a facility.")
class Permit:
    id: strawberry.ID = strawberry.field(description="Gateway id: `<facility id>:<id in the PARCS>`.")
    facility_id: strawberry.ID = strawberry.field(description="The facility.")
    plate: str = strawberry.field(description="The permitted plate, normalized; masked without scope pii:read.")
    holder_name: str = strawberry.field(description="Who holds it; masked without scope pii:read.")
    valid_from: datetime = strawberry.field(description="Valid from (UTC).")
    valid_until: datetime | None = strawberry.field(description="Valid until (UTC); null: until revoked.")
    status: PermitStatus = strawberry.field(description="Where the permit stands now.")
    description: str | None = strawberry.field(description="What kind of permit, e.g. \"Monthly commuter\".")
    created_at: datetime = strawberry.field(description="When it was issued.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    version: int = strawberry.field(description="The PARCS's version of the record.")

    @classmethod
    def of(cls, ctx: RequestContext, facility_id: str, p: DomainPermit) -> Permit:
        principal = ctx.principal
        return cls(id=strawberry.ID(f"{facility_id}:{p.vendor_id}"), facility_id=strawberry.ID(facility_id),
                   plate=personal(p.plate, principal) or "", holder_name=personal(p.holder_name, principal) or "",
                   valid_from=p.valid_from, valid_until=p.valid_until, status=p.status, description=p.description,
                   created_at=p.created_at, updated_at=p.updated_at, version=p.version)


@strawberry.input(description="A permit to issue.")
class IssuePermitInput:
    facility_id: strawberry.ID = strawberry.field(description="The facility it is for.")
    plate: str = strawberry.field(description="The plate (case, spaces and dashes do not matter).")
    holder_name: str = strawberry.field(description="Who holds it, up to 200 characters.")
    valid_from: datetime = strawberry.field(description="Valid from.")
    valid_until: datetime | None = strawberry.field(default=None, description="Valid until; leave out for open-ended.")
    description: str | None = strawberry.field(default=None, description="What kind of permit.")


@strawberry.input(description="Changes to a permit; fields left out stay as they are.")
class UpdatePermitInput:
    plate: str | None = strawberry.field(default=None, description="New plate.")
    holder_name: str | None = strawberry.field(default=None, description="New holder name.")
    valid_from: datetime | None = strawberry.field(default=None, description="New start.")
    valid_until: datetime | None = strawberry.field(default=None, description="New end.")
    description: str | None = strawberry.field(default=None, description="New description.")


def _answer(ctx: RequestContext, stored: dict[str, Any]) -> Permit:
    return Permit.of(ctx, stored["facility_id"], load(DomainPermit, stored["permit"]))


def _stored(entry: FacilityEntry, permit: DomainPermit) -> dict[str, Any]:
    return {"facility_id": entry.id, "permit": dump(permit)}


async def find_permit(ctx: RequestContext, permit_id: str) -> tuple[FacilityEntry, SystemRef, DomainPermit]:
    """The permit behind a gateway id, if the client may see its facility; NOT_FOUND otherwise."""
    return await parcs_record(ctx, permit_id, "permit", lambda adapter, vendor_id: adapter.permit(vendor_id))


@strawberry.type
class PermitQueries:
    @strawberry.field(description="Permits at the facilities this client may see, by plate and facility.",
                      directives=needs(Scope.PERMITS_READ) + list_size(slicing_arguments=["first"]))
    async def permits(
        self, info: Info,
        facility_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only this facility.")] = None,
        plate: Annotated[str | None, strawberry.argument(description="Only this plate.")] = None,
        status: Annotated[PermitStatus | None, strawberry.argument(description="Only permits in this state.")] = None,
        first: Annotated[int, strawberry.argument(description="At most this many, 1 to 100, newest first.")] = 50,
    ) -> list[Permit] | None:
        ctx = info.context
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise bad_input(f"`first` must be between 1 and {MAX_PAGE_SIZE}.", argument="first")
        entries = [visible_facility(ctx, str(facility_id))] if facility_id is not None else ctx.visible_entries()
        wanted = None if plate is None else plate_of(plate)
        found = [(facility, p) for facility, p in await parcs_records(ctx, entries, PERMITS, wanted, info)
                 if status is None or p.status is status]
        found.sort(key=lambda item: item[1].created_at, reverse=True)
        return [Permit.of(ctx, facility, p) for facility, p in found[:first]]


@strawberry.type
class PermitMutations:
    @strawberry.mutation(description="Issue a permit at a facility (written to its PARCS).", directives=needs(Scope.PERMITS_WRITE))
    async def issue_permit(self, info: Info, input: Annotated[IssuePermitInput, strawberry.argument(description="The permit.")],
                           idempotency_key: IdempotencyKey) -> Permit | None:
        ctx = info.context
        plate = plate_of(input.plate, "input.plate")
        holder = text_of(input.holder_name, "input.holderName")
        description = text_of(input.description, "input.description")
        valid_from = aware(input.valid_from, "input.validFrom")
        valid_until = None if input.valid_until is None else aware(input.valid_until, "input.validUntil")
        if valid_until is not None and valid_until <= valid_from:
            raise bad_input("`input.validUntil` must be after `input.validFrom`.", argument="input.validUntil")
        entry = visible_facility(ctx, str(input.facility_id), "input.facilityId")
        ref = system_of(entry, SystemKind.PARCS, "permits")
        arguments = {"facility": entry.id, "plate": plate, "holder": holder, "from": valid_from.isoformat(),
                     "until": valid_until and valid_until.isoformat(), "description": description}

        async def issue(reference: str) -> dict[str, Any]:
            adapter = ctx.runtime.systems.parcs(ref.system_id)
            request = PermitRequest(ref.vendor_id, plate, holder or "", valid_from, valid_until, reference, description)
            return _stored(entry, await vendor_call(ctx, ref.system_id, adapter.create_permit(request)))

        return _answer(ctx, await idempotent(ctx, "issuePermit", idempotency_key, arguments, issue))

    @strawberry.mutation(description="Change a permit's plate, holder, validity or description.", directives=needs(Scope.PERMITS_WRITE))
    async def update_permit(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The permit's id.")],
                            input: Annotated[UpdatePermitInput, strawberry.argument(description="What changes.")],
                            idempotency_key: IdempotencyKey) -> Permit | None:
        ctx = info.context
        change = PermitChange(
            plate=None if input.plate is None else plate_of(input.plate, "input.plate"),
            holder_name=text_of(input.holder_name, "input.holderName"),
            valid_from=None if input.valid_from is None else aware(input.valid_from, "input.validFrom"),
            valid_until=None if input.valid_until is None else aware(input.valid_until, "input.validUntil"),
            description=text_of(input.description, "input.description"),
        )
        if change == PermitChange():
            raise bad_input("Nothing to change.", argument="input")
        arguments = {"id": str(id), "change": dump(change)}

        async def update(reference: str) -> dict[str, Any]:
            entry, ref, current = await find_permit(ctx, str(id))
            starts, ends = change.valid_from or current.valid_from, change.valid_until or current.valid_until
            if ends is not None and ends <= starts:
                raise bad_input("The permit must end after it starts.", argument="input.validUntil")
            adapter = ctx.runtime.systems.parcs(ref.system_id)
            return _stored(entry, await vendor_call(ctx, ref.system_id, adapter.update_permit(current.vendor_id, change)))

        return _answer(ctx, await idempotent(ctx, "updatePermit", idempotency_key, arguments, update))

    @strawberry.mutation(description="Revoke a permit now (revoking a revoked one returns it as it is).",
                         directives=needs(Scope.PERMITS_WRITE))
    async def revoke_permit(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The permit's id.")],
                            idempotency_key: IdempotencyKey) -> Permit | None:
        ctx = info.context

        async def revoke(reference: str) -> dict[str, Any]:
            entry, ref, current = await find_permit(ctx, str(id))
            adapter = ctx.runtime.systems.parcs(ref.system_id)
            return _stored(entry, await vendor_call(ctx, ref.system_id, adapter.revoke_permit(current.vendor_id)))

        return _answer(ctx, await idempotent(ctx, "revokePermit", idempotency_key, {"id": str(id)}, revoke))
