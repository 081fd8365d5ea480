"""A page of facilities reads its records together, before any facility's field resolves.

Several `Facility` fields pick records of a vendor list by key: its PARCS record (capacity,
address…), its occupancy readings, its tariff, its zone, its hotel. Resolved one facility at a
time, each such field waits for the loaders' batch, and every wait costs graphql-core a
coroutine handed up, a `gather`, a task per field and trips through the event loop. The list
resolver knows the page and which fields the query selects, so it asks the loaders for all of
those records at once (one slice per system and list, as the fields' own batch would be); the
fields, started eagerly (gateway/kernel/eager.py), then find them in hand and finish at once.

The fields still read through the same loaders (`RequestContext.load_record` and friends), so
errors, stale notes and their paths are theirs as before: reading ahead changes when a record
is read, never what a field answers. Only fields the client may read are read ahead (a field
it lacks the scope for costs no vendor call, as before); a field missing here only waits.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from adapters.models import SystemKind
from gateway.directory import FacilityEntry
from gateway.kernel.context import RequestContext
from gateway.systems import FACILITIES, OCCUPANCY, PROPERTIES, RATES, ZONES, Records

Read = tuple[str, Records[Any], Hashable]  # (system id, list, key): what `Loaders.record` is asked


def _by_ref(kind: SystemKind, resource: Records[Any]) -> Callable[[FacilityEntry], Iterator[Read]]:
    """The facility's record in `resource` of its system of `kind`, keyed by its id there."""

    def reads(entry: FacilityEntry) -> Iterator[Read]:
        ref = entry.ref(kind)
        if ref is not None:
            yield ref.system_id, resource, ref.vendor_id

    return reads


parcs_record = _by_ref(SystemKind.PARCS, FACILITIES)


def occupancy_readings(entry: FacilityEntry) -> Iterator[Read]:
    """The facility-wide reading of each system that measures it (resolvers/occupancy.py `load_part`)."""
    for kind in (SystemKind.PARCS, SystemKind.GUIDANCE):
        ref = entry.ref(kind)
        if ref is not None:
            yield ref.system_id, OCCUPANCY, (ref.vendor_id, None)


def _unless(configured: Callable[[FacilityEntry], object], reads: Callable[[FacilityEntry], Iterator[Read]]
            ) -> Callable[[FacilityEntry], Iterator[Read]]:
    """`reads`, for a facility whose configuration does not already answer the field."""
    return lambda entry: iter(()) if configured(entry) else reads(entry)


#: what each `Facility` field reads by key, by its GraphQL name
FIELD_READS: dict[str, Callable[[FacilityEntry], Iterator[Read]]] = {
    "capacity": parcs_record,
    "address": parcs_record,
    "levels": _unless(lambda entry: entry.levels, parcs_record),
    "location": _unless(lambda entry: entry.config.location is not None, parcs_record),
    "occupancy": occupancy_readings,
    "rates": _by_ref(SystemKind.PARCS, RATES),
    "enforcement": _by_ref(SystemKind.ENFORCEMENT, ZONES),
    "hotel": _by_ref(SystemKind.HOSPITALITY, PROPERTIES),
}


async def read_page(ctx: RequestContext, entries: Iterable[FacilityEntry], fields: Iterable[str]) -> None:
    """Read, for every facility of `entries`, what the selected `fields` (GraphQL names, those the
    client may read) will pick by key, all at once."""
    readers = [FIELD_READS[name] for name in fields if name in FIELD_READS]
    if readers:
        await ctx.loaders.read_ahead(read for entry in entries for reader in readers for read in reader(entry))
