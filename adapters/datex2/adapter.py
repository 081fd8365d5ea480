"""Adapter for DATEX II v3.7 parking publishers: city open-data platforms and guidance systems.

A publisher serves two documents over HTTP pull (wire.py):

    table    a ParkingTablePublication: the sites (places, and their levels and areas as
             sub-places), with names, capacity (`supply`), coordinates and address
    status   a ParkingStatusPublication: per site or level, occupied and vacant spaces, status,
             trend, and when the figures last changed

Every read pulls both with `If-Modified-Since` (the `Last-Modified` the publisher last sent); a
304 Not Modified means the document kept is still current, so an unchanged feed costs two tiny
answers. A guidance system to parkgate: the figures are SENSED (a publisher that counts at gates
still feeds the guidance side of a facility, next to its PARCS).

Mapping (reading.py reads the XML; the functions at the end map records):
- a status record becomes one `OccupancyReading`: for a place (or campus) with `zone_id` None,
  for a sub-place or identified area with the place above it in the table as the facility and
  itself as the zone. A record whose element the table does not list stands for a site. Records
  of single spaces and of accesses are not occupancy of a site or level and are left out.
- occupied: `numberOfOccupiedSpaces`, else `numberOfVehicles`; free: `numberOfVacantSpaces`,
  untouched; capacity: `numberOfSpacesOverride`, else the record's `supply`, else the table's.
- observed_at: the record's `lastUpdated`, else the publication's `publicationTime` (the
  publisher's own clock either way; a time without an offset is none).
- status: a closed `openingStatus` is CLOSED; a fault saying the figures are wrong is UNKNOWN;
  else the place's `status` (full, almostFull, spacesAvailable… and a campus's words); else
  OPEN when it says open. Trend: increasing… FILLING, decreasing… EMPTYING, stable STEADY.

Options (`SystemSpec.options`): `table_path`, `status_path` (below `base_url`, or absolute URLs;
defaults `/parking/table`, `/parking/status`). Credentials: none for open data; `username` and
`password` for a publisher behind HTTP Basic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from adapters.base import GuidanceAdapter, SystemSpec
from adapters.datex2.reading import ParkingTable, StatusDocument, StatusRecord, TableElement, read_status, read_table
from adapters.datex2.wire import MEDIA_TYPE, PUBLICATIONS, DocumentError
from adapters.errors import UpstreamError
from adapters.http import VendorHTTP
from adapters.models import (
    Batch,
    FacilityKind,
    FacilityRecord,
    OccupancyMethod,
    OccupancyReading,
    OccupancyStatus,
    RecordError,
    Trend,
    ZoneRecord,
)

D = TypeVar("D", ParkingTable, StatusDocument)

#: hierarchy element types that are a facility of their own (the rest are zones of one)
SITE_TYPES = frozenset({"campus", "place"})
#: status records that are not occupancy of a site or level
SKIPPED_RECORDS = frozenset({"SpaceStatus", "AccessStatus"})

STATUSES: Mapping[str, OccupancyStatus] = {
    # ParkingPlaceStatusEnum
    "full": OccupancyStatus.FULL,
    "fullAtEntrance": OccupancyStatus.FULL,
    "overcrowding": OccupancyStatus.FULL,
    "overcrowdingLevel1": OccupancyStatus.FULL,
    "overcrowdingLevel2": OccupancyStatus.FULL,
    "almostFull": OccupancyStatus.ALMOST_FULL,
    "spacesAvailable": OccupancyStatus.SPACES_AVAILABLE,
    "noOvercrowding": OccupancyStatus.SPACES_AVAILABLE,
    # CampusStatusEnum
    "allParkingsFull": OccupancyStatus.FULL,
    "noMoreParkingSpacesAvailable": OccupancyStatus.FULL,
    "multiStoreyParkingsFull": OccupancyStatus.ALMOST_FULL,
    "enoughSpacesAvailable": OccupancyStatus.SPACES_AVAILABLE,
}
#: OpeningStatusEnum values that mean no car gets in
CLOSED = frozenset({"closed", "closedOnHoliday", "closedOnMaintenance", "temporarilyClosed"})
OPEN = frozenset({"open", "openWithServiceLimitation"})
#: ParkingFaultEnum values that say the figures themselves are not to be trusted
UNRELIABLE = frozenset({"erroneousOccupancyInformation", "noParkingInformationAvailable", "communicationsFailure"})
TRENDS: Mapping[str, Trend] = {
    "increasing": Trend.FILLING,
    "increasingQuickly": Trend.FILLING,
    "increasingSlowly": Trend.FILLING,
    "decreasing": Trend.EMPTYING,
    "decreasingQuickly": Trend.EMPTYING,
    "decreasingSlowly": Trend.EMPTYING,
    "stable": Trend.STEADY,
}


@dataclass(frozen=True, slots=True)
class _Kept(Generic[D]):
    document: D
    last_modified: str | None  # echoed as If-Modified-Since


class Publication(Generic[D]):
    """One publication pulled over HTTP: the document last read, and its Last-Modified to send back."""

    def __init__(self, system_id: str, http: VendorHTTP, path: str, read: Callable[[bytes], D],
                 auth: tuple[str, str] | None) -> None:
        self.system_id = system_id
        self.http = http
        self.path = path
        self.read: Callable[[bytes], D] = read
        self.auth = auth
        self.kept: _Kept[D] | None = None
        self.not_modified = 0  # how many 304s it was answered (tests read it)

    async def pull(self) -> D:
        """The current document: read afresh when the publisher sends one, the kept one on a 304."""
        kept = self.kept
        headers = {"accept": MEDIA_TYPE}
        if kept is not None and kept.last_modified:
            headers["if-modified-since"] = kept.last_modified
        response = await self.http.request("GET", self.path, headers=headers, auth=self.auth)
        if response.status_code == 304:
            if kept is None or not kept.last_modified:
                raise UpstreamError(self.system_id, f"GET {self.path} answered 304 to a request that was not conditional")
            self.not_modified += 1
            return kept.document
        if response.status_code in (401, 403):
            raise UpstreamError(self.system_id, f"the system rejected our credentials ({response.status_code})")
        try:
            document = self.read(response.content)
        except DocumentError as exc:
            raise UpstreamError(self.system_id, f"GET {self.path}: {exc}") from None
        self.kept = _Kept(document, response.headers.get("last-modified"))
        return document


class Datex2Adapter(GuidanceAdapter):
    dialect = "datex2"

    def __init__(self, spec: SystemSpec, http: VendorHTTP | None = None) -> None:
        super().__init__(spec, http)
        auth = None
        if spec.credentials.get("username") or spec.credentials.get("password"):
            auth = (spec.credential("username"), spec.credential("password"))
        known = {f"{name}_path" for name in PUBLICATIONS}
        if unknown := sorted(set(spec.options) - known):
            raise ValueError(f"system {spec.id!r}: unknown option {', '.join(unknown)}; datex2 takes {', '.join(sorted(known))}")
        paths = {name: spec.options.get(f"{name}_path", default) for name, default in PUBLICATIONS.items()}
        for name, path in paths.items():
            if not isinstance(path, str) or not path.strip():
                raise ValueError(f"system {spec.id!r}: {name}_path must be a path or URL")
        self.table = Publication(spec.id, self.http, paths["table"], read_table, auth)
        self.status = Publication(spec.id, self.http, paths["status"], read_status, auth)

    async def occupancy(self) -> Batch[OccupancyReading]:
        """One reading per status record of a site or level (see the module's docstring)."""
        table, status = await asyncio.gather(self.table.pull(), self.status.pull())
        received_at = datetime.now(UTC)
        batch: Batch[OccupancyReading] = Batch()
        unreadable = {problem.ref: problem.message for problem in table.problems}
        for problem in status.problems:
            batch.errors.append(RecordError(self.system_id, problem.ref, problem.message))
        for record in status.records:
            if record.reference in unreadable:
                message = f"the parking table's record of it is unreadable: {unreadable[record.reference]}"
                batch.errors.append(RecordError(self.system_id, record.reference, message))
                continue
            reading = occupancy_reading(record, table, status, received_at)
            if reading is not None:
                batch.items.append(reading)
        return batch

    async def facilities(self) -> Batch[FacilityRecord]:
        """The sites of the parking table, each with its levels and areas as zones."""
        table = await self.table.pull()
        batch: Batch[FacilityRecord] = Batch(
            errors=[RecordError(self.system_id, problem.ref, problem.message) for problem in table.problems])
        zones: dict[str, list[ZoneRecord]] = {}
        for element in table.elements.values():
            site = site_of(element, table)
            if site is not None and site.id != element.id and element.type != "space":
                zones.setdefault(site.id, []).append(zone_record(element))
        for element in table.elements.values():
            if site_of(element, table) is element:
                batch.items.append(facility_record(element, tuple(zones.get(element.id, ()))))
        return batch


# --- mapping: plain functions of records -------------------------------------------------


def site_of(element: TableElement, table: ParkingTable) -> TableElement | None:
    """The site an element belongs to: the nearest campus or place up its parents (itself if it is
    one), else the highest ancestor the table lists; None when its parents run in a circle."""
    seen = {element.id}
    current = element
    while current.type not in SITE_TYPES and current.parent_id is not None:
        parent = table.elements.get(current.parent_id)
        if parent is None:
            return current
        if parent.id in seen:
            return None
        seen.add(parent.id)
        current = parent
    return current


def occupancy_reading(record: StatusRecord, table: ParkingTable, status: StatusDocument,
                      received_at: datetime) -> OccupancyReading | None:
    """A status record as a reading of its site or level; None for single spaces, accesses, and
    elements whose parents run in a circle."""
    element = table.elements.get(record.reference)
    if record.kind in SKIPPED_RECORDS or (element is not None and element.type == "space"):
        return None
    if element is None:  # not in the table: it can only stand for a site of its own
        facility_id, zone_id = record.reference, None
    else:
        site = site_of(element, table)
        if site is None:
            return None
        facility_id, zone_id = site.id, (None if site is element else element.id)
    capacity = record.capacity if record.capacity is not None else (element.capacity if element else None)
    return OccupancyReading(
        vendor_facility_id=facility_id,
        zone_id=zone_id,
        method=OccupancyMethod.SENSED,
        capacity=capacity,
        occupied=record.occupied if record.occupied is not None else record.vehicles,
        free=record.vacant,
        observed_at=record.last_updated or status.publication_time,
        received_at=received_at,
        status=occupancy_status(record),
        trend=TRENDS.get(record.trend or "", Trend.UNKNOWN),
    )


def occupancy_status(record: StatusRecord) -> OccupancyStatus | None:
    if record.opening_status in CLOSED:
        return OccupancyStatus.CLOSED
    if any(fault in UNRELIABLE for fault in record.faults):
        return OccupancyStatus.UNKNOWN
    said = [STATUSES[s] for s in record.statuses if s in STATUSES]
    for status in (OccupancyStatus.FULL, OccupancyStatus.ALMOST_FULL, OccupancyStatus.SPACES_AVAILABLE):
        if status in said:
            return status
    if record.statuses:
        return OccupancyStatus.UNKNOWN  # unknown, other, or words of an extension
    return OccupancyStatus.OPEN if record.opening_status in OPEN else None


def facility_record(element: TableElement, zones: tuple[ZoneRecord, ...]) -> FacilityRecord:
    return FacilityRecord(
        vendor_id=element.id,
        name=element.name or element.id,
        capacity=element.capacity,
        time_zone=None,  # DATEX II gives a UTC offset at most, never an IANA zone
        address=element.address,
        location=element.location,
        zones=zones,
        version=int(element.version) if element.version.isdigit() else None,
    )


def zone_record(element: TableElement) -> ZoneRecord:
    kind = FacilityKind.LEVEL if element.subplace_type == "floorOrLevel" else FacilityKind.ZONE
    return ZoneRecord(vendor_id=element.id, name=element.name or element.id, kind=kind, capacity=element.capacity)


