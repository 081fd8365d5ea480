"""Hotel parking validations: the front desk validates a guest's car by hand (`validateParking`),
and lists what has been validated. Check-ins validate on their own (gateway/events/guest_validations.py).

A PMS client validates only at the facilities it is given (tenancy, like every other path).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeAlias

import strawberry

from adapters.models import SystemKind
from adapters.operation_models import Validation as DomainValidation
from adapters.operation_models import ValidationStatus as DomainStatus
from gateway.auth.scopes import Scope
from gateway.codec import dump, load
from gateway.errors import bad_input
from gateway.kernel.context import Info, RequestContext
from gateway.kernel.costs import list_size
from gateway.kernel.permissions import needs
from gateway.kernel.pii import personal
from gateway.validation_grants import DEFAULT_VALIDITY, MAX_VALIDITY, grant
from resolvers.reservations import IdempotencyKey
from resolvers.writes import aware, idempotent, live_read, plate_of, system_of, text_of, vendor_call, visible_facility

ValidationStatus: TypeAlias = DomainStatus  # the domain enum, made a GraphQL enum in place (see resolvers/common.py)
strawberry.enum(ValidationStatus, description="ACTIVE, EXPIRED or REVOKED.")


@strawberry.type(description="Parking validated for a car: it parks free, the hotel (or merchant) is invoiced.")
class ParkingValidation:
    id: strawberry.ID = strawberry.field(description="Gateway id: `<facility id>:<id in the PARCS>`.")
    facility_id: strawberry.ID = strawberry.field(description="The facility.")
    plate: str = strawberry.field(description="The validated plate, normalized; masked without scope pii:read.")
    guest_name: str | None = strawberry.field(description="The guest; masked without scope pii:read.")
    valid_from: datetime = strawberry.field(description="Valid from (UTC).")
    valid_until: datetime = strawberry.field(description="Valid until (UTC).")
    status: ValidationStatus = strawberry.field(description="Where it stands now.")
    source: str | None = strawberry.field(description="What granted it, e.g. the PMS reservation or the front desk.")
    created_at: datetime = strawberry.field(description="When it was granted.")

    @classmethod
    def of(cls, ctx: RequestContext, facility_id: str, v: DomainValidation) -> ParkingValidation:
        return cls(id=strawberry.ID(f"{facility_id}:{v.vendor_id}"), facility_id=strawberry.ID(facility_id),
                   plate=personal(v.plate, ctx.principal) or "", guest_name=personal(v.guest_name, ctx.principal),
                   valid_from=v.valid_from, valid_until=v.valid_until, status=v.status, source=v.source,
                   created_at=v.created_at)


@strawberry.input(description="A guest's car to validate.")
class ValidateParkingInput:
    facility_id: strawberry.ID = strawberry.field(description="The hotel's facility.")
    plate: str = strawberry.field(description="The car's plate (case, spaces and dashes do not matter).")
    guest_name: str | None = strawberry.field(default=None, description="The guest, up to 200 characters.")
    valid_until: datetime | None = strawberry.field(default=None, description="Until when; default 24 hours from now, at most 30 days.")
    stay_id: str | None = strawberry.field(default=None, description="The PMS reservation it belongs to, for the record.")


@strawberry.type
class ValidationQueries:
    @strawberry.field(description="Parking validations at a facility this client may see (not expired more than 7 days ago).",
                      directives=needs(Scope.HOSPITALITY_WRITE) + list_size(assumed_size=50))
    async def parking_validations(
        self, info: Info,
        facility_id: Annotated[strawberry.ID, strawberry.argument(description="The facility.")],
        plate: Annotated[str | None, strawberry.argument(description="Only this plate.")] = None,
    ) -> list[ParkingValidation] | None:
        ctx = info.context
        entry = visible_facility(ctx, str(facility_id))
        ref = system_of(entry, SystemKind.PARCS, "validations")
        adapter = ctx.runtime.systems.parcs(ref.system_id)
        found = await live_read(ctx, ref.system_id, adapter.validations(None if plate is None else plate_of(plate)))
        mine = sorted((v for v in found.items if v.vendor_facility_id == ref.vendor_id), key=lambda v: v.created_at,
                      reverse=True)
        return [ParkingValidation.of(ctx, entry.id, v) for v in mine]


@strawberry.type
class ValidationMutations:
    @strawberry.mutation(description="Validate a guest's parking by hand (the front desk); check-ins at the PMS do it on their own.",
                         directives=needs(Scope.HOSPITALITY_WRITE))
    async def validate_parking(self, info: Info,
                               input: Annotated[ValidateParkingInput, strawberry.argument(description="The car to validate.")],
                               idempotency_key: IdempotencyKey) -> ParkingValidation | None:
        ctx = info.context
        plate = plate_of(input.plate, "input.plate")
        guest = text_of(input.guest_name, "input.guestName")
        stay = text_of(input.stay_id, "input.stayId", 100)
        valid_until = ctx.now + DEFAULT_VALIDITY if input.valid_until is None else aware(input.valid_until, "input.validUntil")
        if not ctx.now < valid_until <= ctx.now + MAX_VALIDITY:
            raise bad_input("`input.validUntil` must be in the future and at most 30 days ahead.", argument="input.validUntil")
        entry = visible_facility(ctx, str(input.facility_id), "input.facilityId")
        ref = system_of(entry, SystemKind.PARCS, "validations")
        arguments = {"facility": entry.id, "plate": plate, "guest": guest, "stay": stay,
                     "until": input.valid_until and valid_until.isoformat()}
        source = f"front desk ({ctx.principal.client_name})" + (f", stay {stay}" if stay else "")

        async def validate(reference: str) -> dict[str, Any]:
            granted = await vendor_call(ctx, ref.system_id, grant(
                ctx.runtime, entry, plate=plate, valid_from=ctx.now, valid_until=valid_until, reference=reference,
                guest_name=guest, source=source))
            return {"facility_id": entry.id, "validation": dump(granted)}

        stored = await idempotent(ctx, "validateParking", idempotency_key, arguments, validate)
        return ParkingValidation.of(ctx, stored["facility_id"], load(DomainValidation, stored["validation"]))
