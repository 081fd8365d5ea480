"""Granting parking validations: a hotel (or merchant) grants a car free parking and is invoiced for it.

One way to grant them, used by the front desk's `validateParking` mutation and by the
check-in worker (gateway/events/guest_validations.py): written to the facility's PARCS, which
lets the car out without charge and bills the validation's owner.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.models import SystemKind
from adapters.operation_models import Validation, ValidationRequest
from gateway.directory import FacilityEntry
from gateway.runtime import Runtime

MAX_VALIDITY = timedelta(days=30)
DEFAULT_VALIDITY = timedelta(hours=24)
#: a departing guest may still need to reach the car and leave
DEPARTURE_GRACE = timedelta(hours=2)


async def grant(runtime: Runtime, entry: FacilityEntry, *, plate: str, valid_from: datetime, valid_until: datetime,
                reference: str, guest_name: str | None = None, source: str | None = None) -> Validation:
    """Write a validation to the facility's PARCS; the same `reference` twice grants it once.
    Callers wrap it in `Systems.track` (the system's health sees the call)."""
    ref = entry.ref(SystemKind.PARCS)
    if ref is None:
        raise LookupError(f"facility {entry.id!r} has no PARCS to validate parking in")
    adapter = runtime.systems.parcs(ref.system_id)
    request = ValidationRequest(ref.vendor_id, plate, valid_from, valid_until, reference, guest_name, source)
    return await adapter.create_validation(request)
