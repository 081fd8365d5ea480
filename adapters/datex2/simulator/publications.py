"""The two DATEX II v3.7 publications as the simulated publisher writes them: plain functions from
what it knows (sites, figures) to XML bytes, valid against the schemas in ../schemas/.

Elements are written with the conventional prefixes (`d2:`, `prk:`, `fac:`, `com:`, `loc:`,
`locx:`), each declared once on the root, in the order the schema's sequences (and the
extension chains of their types) demand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from xml.etree.ElementTree import Element, SubElement, tostring

from adapters.datex2.wire import NS, format_datetime
from adapters.simulated.world import GarageSpec

#: who publishes (`publicationCreator`): a country code and the publisher's national identifier
PUBLISHER = ("DE", "parkgate-sandbox-open-data")
TABLE_ID = "parkgate-sandbox-parking"
LANG = "en"
LANG_OF_COUNTRY = {"DE": "de", "GB": "en"}


@dataclass(frozen=True, slots=True)
class Site:
    """A garage as the publisher lists it: its DATEX II id and what is known of it on the ground."""

    id: str
    spec: GarageSpec
    tz: timezone  # the offset its records' times are written in

    def level_id(self, level_key: str) -> str:
        return f"{self.id}-{level_key}"


@dataclass(frozen=True, slots=True)
class Figures:
    """What the publisher says of one element (a site, or one of its levels) at one moment."""

    occupied: int
    capacity: int
    trend: str  # ParkingOccupancyTrendEnum: increasing, decreasing, stable
    status: str | None  # ParkingPlaceStatusEnum, for places only: spacesAvailable, almostFull, full


@dataclass(frozen=True, slots=True)
class Record:
    """One status record: an element's figures and when they last changed."""

    reference: str
    is_place: bool
    figures: Figures
    last_updated: datetime
    tz: timezone


def table_document(sites: Sequence[Site], version_time: datetime, version: str) -> bytes:
    """The ParkingTablePublication: each site a `prk:Place`, each of its levels a `prk:SubplaceElement`."""
    root = _payload("prk:ParkingTablePublication", version_time)
    header = _el(root, "prk:headerInformation")
    _el(header, "com:confidentiality", "noRestriction")
    _el(header, "com:informationStatus", "real")
    table = _el(root, "prk:parkingTable", id=TABLE_ID, version=version)
    _multilingual(_el(table, "prk:name"), "parkgate sandbox: public car parks", LANG)
    _el(table, "prk:versionTime", format_datetime(version_time))
    for site in sites:
        _place(table, site, version, version_time)
        for level in site.spec.levels:
            element = _hierarchy_element(table, "prk:SubplaceElement", site.level_id(level.key), version, level.name,
                                         LANG_OF_COUNTRY.get(site.spec.country, LANG))
            _el(element, "prk:layer", "2")
            _el(element, "prk:type", "subplaceElement")
            _el(element, "prk:parentId", id=site.id, version=version, targetClass="fac:FacilityObject")
            _supply(element, level.capacity)
            _el(element, "prk:subplaceType", "floorOrLevel")
    return _bytes(root)


def _place(table: Element, site: Site, version: str, version_time: datetime) -> None:
    spec = site.spec
    place = _hierarchy_element(table, "prk:Place", site.id, version, spec.name,
                               LANG_OF_COUNTRY.get(spec.country, LANG))
    _el(place, "fac:lastUpdated", format_datetime(version_time, site.tz))
    location = _el(place, "fac:locationReference", **{"xsi:type": "loc:PointLocation"})
    extension = _el(_el(location, "loc:_locationReferenceExtension"), "loc:facilityLocation")
    address = _el(extension, "locx:address")
    _el(address, "locx:postcode", spec.postal_code)
    _multilingual(_el(address, "locx:city"), spec.city, LANG_OF_COUNTRY.get(spec.country, LANG))
    _el(address, "locx:countryCode", spec.country)
    street, _, number = spec.street.rpartition(" ")  # "Belvedere Road 2": the street, then the number
    lines = [("street", street), ("houseNumber", number)] if street else [("street", spec.street)]
    for order, (kind, text) in enumerate(lines, start=1):
        line = _el(address, "locx:addressLine", order=str(order))
        _el(line, "locx:type", kind)
        _multilingual(_el(line, "locx:text"), text, LANG_OF_COUNTRY.get(spec.country, LANG))
    coordinates = _el(_el(location, "loc:pointByCoordinates"), "loc:pointCoordinates")
    _el(coordinates, "loc:latitude", repr(spec.latitude))
    _el(coordinates, "loc:longitude", repr(spec.longitude))
    _el(place, "prk:layer", "1")
    _el(place, "prk:type", "place")
    for level in spec.levels:
        _el(place, "prk:childId", id=site.level_id(level.key), version=version, targetClass="fac:FacilityObject")
    _supply(place, spec.capacity)
    _el(place, "prk:layout", "building")
    _el(place, "prk:availableFloors", ", ".join(level.key for level in spec.levels))


def status_document(records: Sequence[Record], publication_time: datetime, table_version: str,
                    overrides: Mapping[str, Mapping[str, str]]) -> bytes:
    """The ParkingStatusPublication: a `prk:PlaceStatus` per site, a `prk:parkingStatusInformation` per level.

    `overrides` replace the text of elements of a record (by reference, then local name): a
    publisher's bug, for tests of what the adapter does with a record it cannot read.
    """
    root = _payload("prk:ParkingStatusPublication", publication_time)
    _el(root, "prk:parkingTableReference", id=TABLE_ID, version=table_version, targetClass="prk:ParkingTable")
    for record in records:
        figures = record.figures
        attributes = {"xsi:type": "prk:PlaceStatus"} if record.is_place else {}
        status = _el(root, "prk:parkingStatusInformation", **attributes)
        _el(status, "fac:reference", id=record.reference, version=table_version, targetClass="fac:FacilityObject")
        _el(status, "fac:lastUpdated", format_datetime(record.last_updated, record.tz))
        if record.is_place:
            _el(status, "fac:openingStatus", "open")
        occupancy = _el(status, "prk:occupancy")
        _el(occupancy, "prk:numberOfVacantSpaces", str(max(figures.capacity - figures.occupied, 0)))
        _el(occupancy, "prk:numberOfOccupiedSpaces", str(figures.occupied))
        if figures.capacity:
            _el(occupancy, "prk:occupancy", f"{figures.occupied * 100 / figures.capacity:.1f}")
        _el(occupancy, "prk:occupancyTrend", figures.trend)
        if record.is_place and figures.status is not None:
            _el(status, "prk:status", figures.status)
        for name, text in overrides.get(record.reference, {}).items():
            for element in status.iter():
                if element.tag.partition(":")[2] == name:
                    element.text = text
    return _bytes(root)


# --- writing XML --------------------------------------------------------------------------


def _payload(publication_type: str, publication_time: datetime) -> Element:
    root = Element("d2:payload", {f"xmlns:{prefix}": uri for prefix, uri in NS.items()})
    root.set("xsi:type", publication_type)
    root.set("lang", LANG)
    root.set("modelBaseVersion", "3")
    _el(root, "com:publicationTime", format_datetime(publication_time))
    creator = _el(root, "com:publicationCreator")
    _el(creator, "com:country", PUBLISHER[0])
    _el(creator, "com:nationalIdentifier", PUBLISHER[1])
    return root


def _hierarchy_element(table: Element, xsi_type: str, ident: str, version: str, name: str, lang: str) -> Element:
    element = _el(table, "prk:hierarchyElementGeneral", **{"xsi:type": xsi_type, "id": ident, "version": version})
    _multilingual(_el(element, "fac:name"), name, lang)
    return element


def _supply(element: Element, spaces: int) -> None:
    supply = _el(element, "prk:supply")
    _el(supply, "prk:quantity", str(spaces))
    _el(supply, "prk:viewType", "spaceView")


def _multilingual(element: Element, text: str, lang: str) -> None:
    _el(_el(element, "com:values"), "com:value", text, lang=lang)


def _el(parent: Element, tag: str, text: str | None = None, **attributes: str) -> Element:
    element = SubElement(parent, tag, attributes)
    element.text = text
    return element


def _bytes(root: Element) -> bytes:
    return tostring(root, encoding="utf-8", xml_declaration=True)
