"""The municipal citation file: every citation issued in the facilities' zones, one CSV row each.

A city's adjudication office takes this file to pursue fines, so it carries the full plate
(the endpoint requires pii:read) and both the UTC instant and the facility's local time the
officer saw. Columns (docs/exports.md):

    citation_number, issued_at_utc, issued_at_local, issue_date_local, plate, plate_region,
    violation_code, violation_description, fine_amount, fine_currency, status, zone_code,
    facility_id, facility_name, latitude, longitude

Citations are read from each enforcement system once (`citations(since)`, bypassing the cache
like every finance read), kept when their zone belongs to a requested facility and they were
issued inside that facility's local days, and written in issue order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from adapters.models import Citation, RecordError, SystemKind
from gateway.deadline import Deadline
from gateway.directory import FacilityEntry
from gateway.finance.formats import CSV_MEDIA, Rendered, csv_bytes, money
from gateway.finance.ledger import FacilityInfo, check_range, facility_info, local_window

if TYPE_CHECKING:
    from gateway.runtime import Runtime

COLUMNS = ("citation_number", "issued_at_utc", "issued_at_local", "issue_date_local", "plate", "plate_region",
           "violation_code", "violation_description", "fine_amount", "fine_currency", "status", "zone_code",
           "facility_id", "facility_name", "latitude", "longitude")
#: a spreadsheet would run a cell starting with one of these as a formula (CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class PlacedCitation:
    citation: Citation
    facility: FacilityInfo


@dataclass
class CitationFile:
    first_day: date
    last_day: date
    citations: list[PlacedCitation] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


async def load_citations(runtime: Runtime, entries: Sequence[FacilityEntry], first_day: date,
                         last_day: date, deadline: Deadline) -> CitationFile:
    """The citations of `entries`' zones on the local days first_day..last_day; UpstreamError propagates."""
    check_range(first_day, last_day)
    by_system: dict[str, list[FacilityEntry]] = {}
    for entry in entries:
        ref = entry.ref(SystemKind.ENFORCEMENT)
        if ref is not None:
            by_system.setdefault(ref.system_id, []).append(entry)
    systems = list(by_system)
    results = await asyncio.gather(*(system_citations(runtime, s, by_system[s], first_day, last_day, deadline)
                                     for s in systems),
                                   return_exceptions=True)
    out = CitationFile(first_day, last_day)
    for result in results:
        if isinstance(result, BaseException):
            raise result
        placed, errors = result
        out.citations.extend(placed)
        out.errors.extend(errors)
    out.citations.sort(key=lambda p: (p.citation.issued_at, p.citation.number))
    return out


async def system_citations(runtime: Runtime, system_id: str, entries: Sequence[FacilityEntry], first_day: date,
                           last_day: date, deadline: Deadline) -> tuple[list[PlacedCitation], list[RecordError]]:
    windows = {entry.id: local_window(entry.config.time_zone, first_day, last_day) for entry in entries}
    since = min(w[0] for w in windows.values())
    adapter = runtime.systems.enforcement(system_id)
    batch = await deadline.bound(system_id, runtime.systems.track(system_id, adapter.citations(since)))
    by_zone: dict[str, list[FacilityEntry]] = {}
    for entry in entries:
        ref = entry.ref(SystemKind.ENFORCEMENT)
        assert ref is not None
        by_zone.setdefault(ref.vendor_id, []).append(entry)
    placed = []
    for citation in batch.items:
        for entry in by_zone.get(citation.zone_id or "", ()):
            start, end = windows[entry.id]
            if start <= citation.issued_at < end:
                placed.append(PlacedCitation(citation, facility_info(entry)))
    return placed, list(batch.errors)


def text(value: str | None) -> str:
    """A vendor's text as a cell that stays text when the file is opened in a spreadsheet."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def citation_row(placed: PlacedCitation) -> list[str]:
    c, facility = placed.citation, placed.facility
    utc = c.issued_at.astimezone(UTC)
    local = c.issued_at.astimezone(ZoneInfo(facility.time_zone))
    return [
        text(c.number),
        utc.isoformat().replace("+00:00", "Z"),
        local.isoformat(),
        local.date().isoformat(),
        text(c.plate),
        text(c.region),
        text(c.violation_code),
        text(c.violation),
        money(c.fine.amount) if c.fine else "",
        c.fine.currency if c.fine else "",
        text(c.status),
        text(c.zone_id),
        facility.id,
        text(facility.name),
        repr(c.location.latitude) if c.location else "",
        repr(c.location.longitude) if c.location else "",
    ]


def render_citations(file: CitationFile) -> Rendered:
    return Rendered(csv_bytes(COLUMNS, (citation_row(p) for p in file.citations)), CSV_MEDIA, "csv")
