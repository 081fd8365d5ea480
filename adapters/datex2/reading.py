"""Reading the two DATEX II v3.7 parking publications into plain records; one bad record never
sinks the rest.

    read_table(data)   a ParkingTablePublication: every hierarchy element of every parking table
                       (campus, place, sub-place, identified area, space) with what parkgate uses of
                       it: names, parent, capacity (`supply`), location and address
    read_status(data)  a ParkingStatusPublication: every status record (`parkingStatusInformation`
                       and its kinds: PlaceStatus, CampusStatus, SpaceStatus, AccessStatus) with its
                       occupancy figures, status, trend, faults and times

A document that is not the publication asked for raises `DocumentError`; a record that cannot be
read becomes a `Problem` (its id and what is wrong) beside the records that could. Only what the
schema allows is expected, but nothing the schema makes optional is required: every element used
here is optional in v3.7, except the ids, `publicationTime` and a supply's `quantity`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from xml.etree.ElementTree import Element

from adapters.datex2.wire import (
    STATUS_PUBLICATION,
    TABLE_PUBLICATION,
    XSI_TYPE,
    DocumentError,
    parse_datetime,
    parse_document,
    publication_type,
    q,
)
from adapters.models import Address, GeoPoint


class BadRecord(ValueError):
    """A record we cannot read; becomes a Problem."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that could not be read: its id (or `#<position>` when it has none) and why."""

    ref: str
    message: str


@dataclass(frozen=True, slots=True)
class TableElement:
    """One hierarchy element of a parking table (`prk:hierarchyElementGeneral`)."""

    id: str
    version: str
    type: str  # its `prk:type`: campus, place, subplaceElement, identifiedArea, space (or an extension)
    name: str | None
    parent_id: str | None
    capacity: int | None  # `supply/quantity`: spaces (or vehicles, by its `viewType`)
    location: GeoPoint | None
    address: Address | None
    subplace_type: str | None = None  # floorOrLevel, row, street, …
    last_updated: datetime | None = None


@dataclass(slots=True)
class ParkingTable:
    publication_time: datetime | None
    lang: str | None
    elements: dict[str, TableElement] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One `prk:parkingStatusInformation`: the status of the element it references."""

    reference: str
    kind: str  # the local name of its xsi:type: PlaceStatus, CampusStatus, SpaceStatus, AccessStatus…
    last_updated: datetime | None
    opening_status: str | None
    statuses: tuple[str, ...]  # PlaceStatus / CampusStatus `status` values
    faults: tuple[str, ...]  # `parkingFault` values
    capacity: int | None  # `occupancy/numberOfSpacesOverride`, else the record's own `supply/quantity`
    occupied: int | None  # `occupancy/numberOfOccupiedSpaces`
    vehicles: int | None  # `occupancy/numberOfVehicles`
    vacant: int | None  # `occupancy/numberOfVacantSpaces`
    trend: str | None  # `occupancy/occupancyTrend`
    space_occupied: bool | None = None  # SpaceStatus `occupied`


@dataclass(slots=True)
class StatusDocument:
    publication_time: datetime | None
    records: list[StatusRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# --- the table ----------------------------------------------------------------------------


def read_table(data: bytes) -> ParkingTable:
    root = _publication(data, TABLE_PUBLICATION)
    lang = root.get("lang")
    table = ParkingTable(_publication_time(root), lang)
    position = 0
    for parking_table in root.iterfind(q("prk", "parkingTable")):
        for element in parking_table.iterfind(q("prk", "hierarchyElementGeneral")):
            position += 1
            ref = element.get("id") or f"#{position}"
            try:
                entry = _table_element(element, lang)
            except BadRecord as exc:
                table.problems.append(Problem(ref, str(exc)))
                continue
            if entry.id in table.elements:
                table.problems.append(Problem(entry.id, "listed twice in the parking table; the first stands"))
                continue
            table.elements[entry.id] = entry
    return table


def _table_element(element: Element, lang: str | None) -> TableElement:
    ident = _required_attribute(element, "id")
    parent = element.find(q("prk", "parentId"))
    kind = _text(element.find(q("prk", "type")))
    if kind is None:
        raise BadRecord("no prk:type")
    return TableElement(
        id=ident,
        version=element.get("version") or "",
        type=kind,
        name=_multilingual(element.find(q("fac", "name")), lang)
        or _multilingual(element.find(q("fac", "alias")), lang),
        parent_id=None if parent is None else _required_attribute(parent, "id"),
        capacity=_count(element, q("prk", "supply"), q("prk", "quantity")),
        location=_location(element.find(q("fac", "locationReference"))),
        address=_address(element.find(q("fac", "locationReference")), lang),
        subplace_type=_text(element.find(q("prk", "subplaceType"))),
        last_updated=_time(element.find(q("fac", "lastUpdated"))),
    )


def _location(reference: Element | None) -> GeoPoint | None:
    """The point a location reference gives: by coordinates, else its coordinates for display."""
    if reference is None:
        return None
    point = reference.find(f"{q('loc', 'pointByCoordinates')}/{q('loc', 'pointCoordinates')}")
    if point is None:
        point = reference.find(q("loc", "coordinatesForDisplay"))
    if point is None:
        return None
    latitude, longitude = _float(point, q("loc", "latitude")), _float(point, q("loc", "longitude"))
    if latitude is None or longitude is None:
        raise BadRecord("coordinates without a latitude or longitude")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise BadRecord(f"coordinates {latitude}, {longitude} are not on Earth")
    return GeoPoint(latitude, longitude)


def _address(reference: Element | None, lang: str | None) -> Address | None:
    """The postal address of the facility location extension (`locx:address`), where there is one."""
    if reference is None:
        return None
    path = "/".join((q("loc", "_locationReferenceExtension"), q("loc", "facilityLocation"), q("locx", "address")))
    address = reference.find(path)
    if address is None:
        return None
    lines: dict[str, str] = {}
    for line in address.iterfind(q("locx", "addressLine")):
        kind, text = _text(line.find(q("locx", "type"))), _multilingual(line.find(q("locx", "text")), lang)
        if kind is not None and text is not None:
            lines.setdefault(kind, text)
    street = " ".join(part for part in (lines.get("street"), lines.get("houseNumber")) if part) or None
    return Address(
        street=street,
        postal_code=_text(address.find(q("locx", "postcode"))),
        city=_multilingual(address.find(q("locx", "city")), lang) or lines.get("town"),
        country=(_text(address.find(q("locx", "countryCode"))) or "").upper() or None,
    )


# --- the status ---------------------------------------------------------------------------


def read_status(data: bytes) -> StatusDocument:
    root = _publication(data, STATUS_PUBLICATION)
    document = StatusDocument(_publication_time(root))
    for position, element in enumerate(root.iterfind(q("prk", "parkingStatusInformation")), start=1):
        reference = element.find(q("fac", "reference"))
        ref = (reference.get("id") if reference is not None else None) or f"#{position}"
        try:
            document.records.append(_status_record(element, reference))
        except BadRecord as exc:
            document.problems.append(Problem(ref, str(exc)))
    return document


def _status_record(element: Element, reference: Element | None) -> StatusRecord:
    if reference is None:
        raise BadRecord("no fac:reference")
    occupancy = element.find(q("prk", "occupancy"))
    override = _count(occupancy, q("prk", "numberOfSpacesOverride")) if occupancy is not None else None
    space = element.find(q("prk", "occupied"))
    return StatusRecord(
        reference=_required_attribute(reference, "id"),
        kind=_local(element.get(XSI_TYPE) or "ParkingStatusInformation"),
        last_updated=_time(element.find(q("fac", "lastUpdated"))),
        opening_status=_text(element.find(q("fac", "openingStatus"))),
        statuses=tuple(text for s in element.iterfind(q("prk", "status")) if (text := _text(s)) is not None),
        faults=tuple(text for f in element.iterfind(q("prk", "parkingFault")) if (text := _text(f)) is not None),
        capacity=override if override is not None else _count(element, q("prk", "supply"), q("prk", "quantity")),
        occupied=_count(occupancy, q("prk", "numberOfOccupiedSpaces")) if occupancy is not None else None,
        vehicles=_count(occupancy, q("prk", "numberOfVehicles")) if occupancy is not None else None,
        vacant=_count(occupancy, q("prk", "numberOfVacantSpaces")) if occupancy is not None else None,
        trend=_text(occupancy.find(q("prk", "occupancyTrend"))) if occupancy is not None else None,
        space_occupied=None if space is None else _boolean(space),
    )


# --- small readers --------------------------------------------------------------------------


def _publication(data: bytes, wanted: str) -> Element:
    root = parse_document(data)
    found = publication_type(root)
    if found != wanted:
        what = f"a d2:payload of type {found!r}" if root.tag == q("d2", "payload") else f"a {root.tag!r} element"
        raise DocumentError(f"expected a d2:payload of type {_local(wanted)}, got {what}")
    return root


def _publication_time(root: Element) -> datetime | None:
    try:
        return _time(root.find(q("com", "publicationTime")))
    except BadRecord as exc:
        raise DocumentError(f"publicationTime: {exc}") from None


def _local(clark: str) -> str:
    return clark.rpartition("}")[2].rpartition(":")[2]


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    if text == "_extended":  # an extended enum value names itself in an attribute
        return element.get("_extendedValue") or text
    return text or None


def _required_attribute(element: Element, name: str) -> str:
    value = (element.get(name) or "").strip()
    if not value:
        raise BadRecord(f"{_local(element.tag)} has no {name}")
    return value


def _count(element: Element | None, *path: str) -> int | None:
    found = element.find("/".join(path)) if element is not None else None
    text = _text(found)
    if text is None:
        return None
    try:
        value = int(text.lstrip("+"))
    except ValueError:
        raise BadRecord(f"{_local(path[-1])} {text!r} is not a whole number") from None
    if value < 0:
        raise BadRecord(f"{_local(path[-1])} {text!r} is negative")
    return value


def _float(element: Element, name: str) -> float | None:
    text = _text(element.find(name))
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRecord(f"{_local(name)} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadRecord(f"{_local(name)} {text!r} is not a finite number")
    return value


def _boolean(element: Element) -> bool:
    text = _text(element)
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise BadRecord(f"{_local(element.tag)} {text!r} is not a boolean")


def _time(element: Element | None) -> datetime | None:
    text = _text(element)
    try:
        return parse_datetime(text)
    except ValueError as exc:
        assert element is not None  # a text was there
        raise BadRecord(f"{_local(element.tag)}: {exc}") from None


def _multilingual(element: Element | None, lang: str | None) -> str | None:
    """A `com:MultilingualString`: the value in the publication's language, else the first one."""
    if element is None:
        return None
    values = [(v.get("lang"), _text(v)) for v in element.iterfind(f"{q('com', 'values')}/{q('com', 'value')}")]
    texts = [(language, text) for language, text in values if text]
    preferred = next((text for language, text in texts if lang and language and language.lower() == lang.lower()), None)
    return preferred or next((text for _, text in texts), None)


__all__ = [
    "BadRecord",
    "DocumentError",
    "ParkingTable",
    "Problem",
    "StatusDocument",
    "StatusRecord",
    "TableElement",
    "read_status",
    "read_table",
]
