"""What every write resolver does the same way: find the facility the client may act on, make the
write idempotent, reach the vendor, and turn the vendor's "no" into a coded error.

A write never goes through the upstream cache (it must reach the vendor, once); it goes through
`Systems.track`, so the system's health and breaker still see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.errors import UpstreamError
from adapters.models import SystemKind
from adapters.operations import Refusal, VendorRefused, normalize_plate
from gateway.directory import FacilityEntry, SystemRef
from gateway.errors import ErrorCode, GatewayError, bad_input, from_upstream
from gateway.idempotency import check_key, fingerprint_of, reference_for
from resolvers.context import RequestContext

T = TypeVar("T")
R = TypeVar("R", bound=Any)  # a PARCS record: it has a `vendor_facility_id`

#: how a vendor's refusal reads to a client: (code, what to say)
REFUSALS: dict[Refusal, ErrorCode] = {
    Refusal.NOT_FOUND: ErrorCode.NOT_FOUND,
    Refusal.DUPLICATE: ErrorCode.CONFLICT,
    Refusal.FULLY_BOOKED: ErrorCode.CONFLICT,
    Refusal.CLOSED: ErrorCode.CONFLICT,
    Refusal.INVALID_WINDOW: ErrorCode.BAD_USER_INPUT,
    Refusal.PRICE_CHANGED: ErrorCode.CONFLICT,
    Refusal.AMOUNT_MISMATCH: ErrorCode.CONFLICT,
    Refusal.WRONG_STATE: ErrorCode.CONFLICT,
    Refusal.DECLINED: ErrorCode.PAYMENT_DECLINED,
    Refusal.INVALID: ErrorCode.BAD_USER_INPUT,
}
MAX_TEXT = 200


def not_found(noun: str, value: str) -> GatewayError:
    return GatewayError(ErrorCode.NOT_FOUND, f"No {noun} {value!r}.")


def visible_facility(ctx: RequestContext, facility_id: str, argument: str = "facilityId") -> FacilityEntry:
    """The facility, if this client may see it; a facility outside its list reads as unknown."""
    entry = ctx.directory.by_id.get(facility_id)
    if entry is None or not ctx.principal.sees(entry.id):
        raise GatewayError(ErrorCode.NOT_FOUND, f"No facility {facility_id!r}.", argument=argument)
    return entry


def facility_or_zone(ctx: RequestContext, facility_id: str | None, zone_id: str | None,
                     prefix: str = "") -> FacilityEntry:
    """The facility named by its id or by its enforcement zone code (exactly one of them), if this
    client may see it; an argument `prefix` such as "input." says where they sit in the request."""
    if (facility_id is None) == (zone_id is None):
        extensions = {"argument": prefix.rstrip(".")} if prefix else {}
        raise bad_input(f"Give exactly one of `{prefix}facilityId` and `{prefix}zoneId`.", **extensions)
    if facility_id is not None:
        return visible_facility(ctx, facility_id, f"{prefix}facilityId")
    for entry in ctx.visible_entries():
        ref = entry.ref(SystemKind.ENFORCEMENT)
        if ref is not None and ref.vendor_id == zone_id:
            return entry
    raise not_found("enforcement zone", str(zone_id))


def system_of(entry: FacilityEntry, kind: SystemKind, what: str) -> SystemRef:
    ref = entry.ref(kind)
    if ref is None:
        raise GatewayError(ErrorCode.BAD_USER_INPUT, f"Facility {entry.id!r} has no {kind.value} system, "
                                                     f"so it takes no {what}.", reason="NOT_SUPPORTED")
    return ref


def split_id(value: str, noun: str) -> tuple[str, str]:
    """`<facility id>:<vendor id>` -> its parts; NOT_FOUND for anything else."""
    facility_id, _, vendor_id = value.partition(":")
    if not facility_id or vendor_id in ("", ".", ".."):  # "." would name a vendor's collection, not a record
        raise not_found(noun, value)
    return facility_id, vendor_id


async def parcs_record(ctx: RequestContext, value: str, noun: str,
                       fetch: Callable[[Any, str], Awaitable[R]]) -> tuple[FacilityEntry, SystemRef, R]:
    """The PARCS record behind a `<facility id>:<PARCS id>` (`fetch(adapter, vendor id)` reads it), with
    its facility and PARCS — NOT_FOUND when the client may not see the facility, or when the record
    is not at that facility (an id cannot reach past a client's tenancy)."""
    facility_id, vendor_id = split_id(value, noun)
    entry = ctx.directory.by_id.get(facility_id)
    ref = entry.ref(SystemKind.PARCS) if entry is not None else None
    if entry is None or ref is None or not ctx.principal.sees(facility_id):
        raise not_found(noun, value)
    record = await vendor_call(ctx, ref.system_id, fetch(ctx.runtime.systems.adapter(ref.system_id), vendor_id))
    if record.vendor_facility_id != ref.vendor_id:
        raise not_found(noun, value)
    return entry, ref, record


def plate_of(raw: str, argument: str = "plate") -> str:
    try:
        return normalize_plate(raw)
    except ValueError as exc:
        raise bad_input(f"`{argument}`: {exc}.", argument=argument) from None


def text_of(raw: str | None, argument: str, max_length: int = MAX_TEXT) -> str | None:
    if raw is None:
        return None
    raw = raw.strip()
    if not raw or len(raw) > max_length or not raw.isprintable():
        raise bad_input(f"`{argument}` must be 1 to {max_length} printable characters.", argument=argument)
    return raw


#: instants parkgate acts on; outside, a time is a typo (and year 1 or 9999 breaks zone arithmetic)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def aware(value: datetime, argument: str) -> datetime:
    """A client's instant: with an offset, between 2000 and 2100; BAD_USER_INPUT otherwise."""
    if value.tzinfo is None:
        raise bad_input(f"`{argument}` needs a time zone offset (e.g. 2026-12-01T09:00:00Z).", argument=argument)
    try:
        in_range = EARLIEST <= value < LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise bad_input(f"`{argument}` must lie between 2000 and 2100.", argument=argument)
    return value


async def parcs_records(ctx: RequestContext, entries: list[FacilityEntry], resource: str, plate: str | None,
                        info: Any) -> list[tuple[str, Any]]:
    """(facility id, record) for every record of `resource` (reservations, permits) that the PARCS
    of these facilities hold there, asking each system once for this request."""
    by_vendor = {(ref.system_id, ref.vendor_id): entry.id for entry in entries
                 if (ref := entry.ref(SystemKind.PARCS)) is not None}
    found: list[tuple[str, Any]] = []
    for system_id in sorted({system_id for system_id, _ in by_vendor}):
        indexed = await ctx.load(system_id, resource, plate, info=info)
        found += [(by_vendor[key], record) for record in indexed.items.values()
                  if (key := (system_id, record.vendor_facility_id)) in by_vendor]
    return found


async def vendor_call(ctx: RequestContext, system_id: str, call: Awaitable[T]) -> T:
    """One write (or a read that must be live) to a vendor, its failures as coded errors."""
    try:
        return await ctx.runtime.systems.track(system_id, call)
    except VendorRefused as exc:
        raise GatewayError(REFUSALS[exc.reason], f"{system_id!r} refused: {exc.detail}", reason=exc.reason.value,
                           system=system_id) from None
    except UpstreamError as exc:
        raise from_upstream(exc) from None


async def idempotent(ctx: RequestContext, operation: str, key: str, arguments: dict[str, Any],
                     work: Callable[[str], Awaitable[Any]]) -> Any:
    """Run `work(reference)` once per (client, operation, key); a retry gets the first result.

    `arguments` are the request's inputs as JSON-able values: the same key with other arguments
    is a CONFLICT. `work` returns a JSON-able result (stored for retries).
    """
    check_key(key)
    client_id = ctx.principal.client_id
    fingerprint = fingerprint_of(arguments)
    reference = reference_for(client_id, operation, key, fingerprint)
    return await ctx.runtime.idempotency.run(f"{client_id}:{operation}", key, fingerprint, lambda: work(reference))
