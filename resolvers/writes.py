"""What every write resolver does the same way: find the facility the client may act on, make the
write idempotent, reach the vendor, and turn the vendor's "no" into a coded error.

A write never goes through the upstream cache (it must reach the vendor, once); it goes through
`Systems.track`, so the system's health and breaker still see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.base import ParcsAdapter
from adapters.errors import UpstreamError
from adapters.models import SystemKind
from adapters.operation_models import RefusalReason, VendorRefused, normalize_plate
from gateway.directory import FacilityEntry, SystemRef
from gateway.errors import ErrorCode, GatewayError, bad_input, from_upstream
from gateway.idempotency import check_key, fingerprint_of, reference_for
from gateway.kernel.context import RequestContext
from gateway.systems import Records

T = TypeVar("T")
R = TypeVar("R", bound=Any)  # a PARCS record: it has a `vendor_facility_id`

#: how a vendor's refusal reads to a client: (code, what to say)
REFUSALS: dict[RefusalReason, ErrorCode] = {
    RefusalReason.NOT_FOUND: ErrorCode.NOT_FOUND,
    RefusalReason.DUPLICATE: ErrorCode.CONFLICT,
    RefusalReason.FULLY_BOOKED: ErrorCode.CONFLICT,
    RefusalReason.CLOSED: ErrorCode.CONFLICT,
    RefusalReason.INVALID_WINDOW: ErrorCode.BAD_USER_INPUT,
    RefusalReason.PRICE_CHANGED: ErrorCode.CONFLICT,
    RefusalReason.AMOUNT_MISMATCH: ErrorCode.CONFLICT,
    RefusalReason.WRONG_STATE: ErrorCode.CONFLICT,
    RefusalReason.DECLINED: ErrorCode.PAYMENT_DECLINED,
    RefusalReason.INVALID: ErrorCode.BAD_USER_INPUT,
}
MAX_TEXT = 200


def not_found(noun: str, value: str, argument: str | None = None) -> GatewayError:
    """The one answer for an id that names nothing this client may have — whether nothing has that id,
    or it is at a facility (or belongs to a client) this one may not see: the two read the same,
    message and extensions, so a client cannot tell them apart or count another facility's records."""
    return GatewayError(ErrorCode.NOT_FOUND, f"No {noun} {value!r}.", **({} if argument is None else {"argument": argument}))


def visible_facility(ctx: RequestContext, facility_id: str, argument: str = "facilityId") -> FacilityEntry:
    """The facility, if this client may see it; a facility outside its list reads as unknown."""
    entry = ctx.directory.by_id.get(facility_id)
    if entry is None or not ctx.principal.sees(entry.id):
        raise not_found("facility", facility_id, argument)
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
    raise not_found("enforcement zone", str(zone_id), f"{prefix}zoneId")


def system_of(entry: FacilityEntry, kind: SystemKind, what: str) -> SystemRef:
    ref = entry.ref(kind)
    if ref is None:
        raise GatewayError(ErrorCode.BAD_USER_INPUT, f"Facility {entry.id!r} has no {kind.value} system, "
                                                     f"so it takes no {what}.", reason="NOT_SUPPORTED")
    return ref


async def parcs_record(ctx: RequestContext, value: str, noun: str, fetch: Callable[[ParcsAdapter, str], Awaitable[R]],
                       argument: str = "id") -> tuple[FacilityEntry, SystemRef, R]:
    """The PARCS record behind a `<facility id>:<PARCS id>` (`fetch(adapter, vendor id)` reads it), with
    its facility and PARCS; `not_found` when there is none, or when the client may not see its
    facility (an id cannot reach past a client's tenancy).

    The answers do not tell these apart, neither by what they say nor by what they cost: an id at a
    facility the client sees is read from the PARCS whether the record is there, at another facility
    of the same PARCS, or nowhere (one vendor call each); an id at a facility it does not see is
    refused without a call, exactly like an id at a facility that does not exist."""
    facility_id, _, vendor_id = value.partition(":")
    entry = ctx.directory.by_id.get(facility_id)
    ref = entry.ref(SystemKind.PARCS) if entry is not None else None
    # "." or ".." would name a vendor's collection or its parent, not a record
    if entry is None or ref is None or not ctx.principal.sees(facility_id) or vendor_id in ("", ".", ".."):
        raise not_found(noun, value, argument)
    record = await vendor_read(ctx, ref.system_id, fetch(ctx.runtime.systems.parcs(ref.system_id), vendor_id))
    if record is None or record.vendor_facility_id != ref.vendor_id:
        raise not_found(noun, value, argument)
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


async def parcs_records(ctx: RequestContext, entries: list[FacilityEntry], resource: Records[str | None, Any],
                        plate: str | None, info: Any) -> list[tuple[str, Any]]:
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
    """One write to a vendor, its failures as coded errors. Never cut short by the operation's
    deadline: a write abandoned in flight has an outcome nobody knows (gateway/deadline.py)."""
    return await _coded(system_id, ctx.runtime.systems.track(system_id, call))


async def live_read(ctx: RequestContext, system_id: str, call: Awaitable[T]) -> T:
    """One read that must be live (not from the cache: a plate's rights, its sessions), its failures
    as coded errors."""
    return await _coded(system_id, _within_deadline(ctx, system_id, call))


def _within_deadline(ctx: RequestContext, system_id: str, call: Awaitable[T]) -> Awaitable[T]:
    """A live read, tracked in the system's health and bounded by the operation's deadline as the
    cached reads are (UPSTREAM_TIMEOUT naming it)."""
    return ctx.loaders.deadline.bound(system_id, ctx.runtime.systems.track(system_id, call))


async def _coded(system_id: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except VendorRefused as exc:
        raise GatewayError(REFUSALS[exc.reason], f"{system_id!r} refused: {exc.detail}", reason=exc.reason.value,
                           system=system_id) from None
    except UpstreamError as exc:
        raise from_upstream(exc) from None


async def vendor_read(ctx: RequestContext, system_id: str, call: Awaitable[T]) -> T | None:
    """One record read live by its id, within the operation's deadline; None when the vendor has none.
    Any refusal counts as none (an id the vendor will not read names nothing, for a client); the
    system failing is a coded error."""
    try:
        return await _within_deadline(ctx, system_id, call)
    except VendorRefused:
        return None
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
