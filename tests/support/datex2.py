"""DATEX II v3.7 parking documents as tests build them: the optional elements of the schema, each on
or off, so that the adapter is proven on what publishers may send and not only on what our
simulator writes. Every document built here is checked against the schemas by the tests that use it.

A `Feed` describes one publisher's pair of documents: a parking table with a place (`P1`), maybe a
campus above it (`C1`), a level (`S1`), an area (`A1`) and a single space (`X1`); and a status
publication with a record for the place and, where asked, for the others. `prefixes=True` writes
them with unusual namespace prefixes (the parking namespace as the default one), as a publisher
may: only the namespaces mean anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from adapters.datex2.wire import NS

PUBLISHED = "2026-03-01T11:00:00+01:00"  # the status publication's own time: 10:00Z
TABLE_TIME = "2026-02-01T08:00:00Z"
VENDOR_NS = "urn:example:vendor-extension"

CONVENTIONAL = {"d2": "d2", "prk": "prk", "fac": "fac", "com": "com", "loc": "loc", "locx": "locx"}
UNUSUAL = {"d2": "ns1", "prk": "", "fac": "f", "com": "c", "loc": "l3", "locx": "lx"}


@dataclass(frozen=True)
class Feed:
    # --- the table ---
    lang: str = "de"
    feed_description: bool = False
    header: bool = False
    table_name: bool = False
    information_manager: bool = False
    campus: bool = False
    names: tuple[tuple[str, str], ...] = (("en", "Elbe garage"), ("de", "Elbgarage"))
    alias: str | None = None
    external_identifier: bool = False
    place_last_updated: bool = False
    description: bool = False
    point: tuple[float, float] | None = (53.5413, 9.9841)
    display: tuple[float, float] | None = None
    address: bool = False
    occupancy_level: bool = False
    supply: int | None = 433
    layout: bool = False
    level: bool = True
    level_supply: int | None = 220
    area: bool = False
    space: bool = False
    extension: bool = False
    # --- the status ---
    table_reference: bool = False
    status_header: bool = False
    last_updated: str | None = "2026-03-01T10:58:30.25+01:00"
    opening_status: str | None = None
    status_description: bool = False
    queueing_time: bool = False
    blurred: bool = False
    faults: tuple[str, ...] = ()
    override: int | None = None
    vacant: int | None = 120
    vacant_bounds: bool = False
    occupied: int | None = 313
    vehicles: int | None = None
    percentage: float | None = None
    occupancy_graded: bool = False
    trend: str | None = None
    counts_and_rates: bool = False
    status_validity: bool = False
    status_supply: int | None = None
    demand_table: bool = False
    statuses: tuple[str, ...] = ()
    full_at_floor: bool = False
    declaration_valid_now: bool = False
    level_status: bool = True
    campus_status: str | None = None
    area_status: bool = False
    space_status: bool = False
    prefixes: bool = False

    # --- the documents ------------------------------------------------------------------

    def table(self) -> bytes:
        t = self._tag
        body = [self._opening("ParkingTablePublication", TABLE_TIME)]
        if self.header:
            body.append(self._header())
        body.append(f'<{t("prk", "parkingTable")} id="T1" version="7">')
        if self.table_name:
            body.append(self._multilingual(t("prk", "name"), (("de", "Parken Hamburg"),)))
        body.append(f'<{t("prk", "versionTime")}>{TABLE_TIME}</{t("prk", "versionTime")}>')
        if self.information_manager:
            body.append(f'<{t("prk", "informationManager")}><{t("com", "country")}>DE</{t("com", "country")}>'
                        f'<{t("com", "nationalIdentifier")}>HH-UDP</{t("com", "nationalIdentifier")}>'
                        f'</{t("prk", "informationManager")}>')
        if self.campus:
            body.append(self._element("Campus", "C1", (("de", "Hafencity"),), layer=0, kind="campus",
                                      children=("P1",), tail=self._common_components("campus")))
        body.append(self._place())
        if self.level:
            body.append(self._element("SubplaceElement", "S1", (("de", "Deck A"),), layer=2, kind="subplaceElement",
                                      parent="P1", supply=self.level_supply,
                                      tail=f'<{t("prk", "subplaceType")}>floorOrLevel</{t("prk", "subplaceType")}>'))
        if self.area:
            body.append(self._element("SpecificArea", "A1", (("de", "Frauenparkplätze"),), layer=2,
                                      kind="identifiedArea", parent="P1", supply=12))
        if self.space:
            body.append(self._element("Space", "X1", (), layer=3, kind="space", parent="S1" if self.level else "P1",
                                      supply=1))
        body.append(f'</{t("prk", "parkingTable")}>')
        body.append(f'</{t("d2", "payload")}>')
        return "".join(body).encode()

    def status(self) -> bytes:
        t = self._tag
        body = [self._opening("ParkingStatusPublication", PUBLISHED)]
        if self.table_reference:
            body.append(f'<{t("prk", "parkingTableReference")} id="T1" version="7" targetClass="prk:ParkingTable"/>')
        if self.status_header:
            body.append(self._header())
        body.append(self._place_status())
        if self.level and self.level_status:
            body.append(self._status_record("S1", "", occupancy=self._occupancy(vacant=100, occupied=120)))
        if self.campus and self.campus_status:
            body.append(self._status_record("C1", self._prefixed_type("CampusStatus"),
                                            tail=f'<{t("prk", "status")}>{self.campus_status}</{t("prk", "status")}>'))
        if self.area and self.area_status:
            body.append(self._status_record("A1", "", occupancy=self._occupancy(vacant=2, occupied=10)))
        if self.space and self.space_status:
            body.append(self._status_record(
                "X1", self._prefixed_type("SpaceStatus"),
                tail=f'<{t("prk", "occupied")}>true</{t("prk", "occupied")}>'
                     f'<{t("prk", "measurementOrCalculationTime")}>2026-03-01T09:59:00Z'
                     f'</{t("prk", "measurementOrCalculationTime")}>'))
        body.append(f'</{t("d2", "payload")}>')
        return "".join(body).encode()

    # --- pieces ---------------------------------------------------------------------------

    def _place(self) -> str:
        t = self._tag
        parts = []
        if self.alias:
            parts.append(self._multilingual(t("fac", "alias"), (("de", self.alias),)))
        if self.external_identifier:
            parts.append(f'<{t("fac", "externalIdentifier")}>HH-0042</{t("fac", "externalIdentifier")}>')
        if self.place_last_updated:
            parts.append(f'<{t("fac", "lastUpdated")}>{TABLE_TIME}</{t("fac", "lastUpdated")}>')
        if self.description:
            parts.append(self._multilingual(t("fac", "description"), (("de", "Unter der Elbphilharmonie"),)))
        if self.point or self.display or self.address:
            parts.append(self._location())
        tail = ""
        if self.layout:
            tail += f'<{t("prk", "layout")}>building</{t("prk", "layout")}>'
            tail += f'<{t("prk", "availableFloors")}>A, B</{t("prk", "availableFloors")}>'
        tail += self._common_components("place")
        return self._element("Place", "P1", self.names, layer=1, kind="place", parent="C1" if self.campus else None,
                             children=("S1",) if self.level else (), supply=self.supply, facility_object=parts,
                             tail=tail, occupancy_level=self.occupancy_level)

    def _location(self) -> str:
        t = self._tag
        inner = ""
        if self.address:
            inner += (f'<{t("loc", "_locationReferenceExtension")}><{t("loc", "facilityLocation")}>'
                      f'<{t("locx", "timeZone")}>+01:00</{t("locx", "timeZone")}><{t("locx", "address")}>'
                      f'<{t("locx", "postcode")}>20457</{t("locx", "postcode")}>'
                      + self._multilingual(t("locx", "city"), (("de", "Hamburg"),))
                      + f'<{t("locx", "countryCode")}>de</{t("locx", "countryCode")}>'
                      + self._address_line(1, "street", "Platz der Deutschen Einheit")
                      + self._address_line(2, "houseNumber", "4")
                      + f'</{t("locx", "address")}></{t("loc", "facilityLocation")}>'
                        f'</{t("loc", "_locationReferenceExtension")}>')
        if self.display:
            inner += f'<{t("loc", "coordinatesForDisplay")}>{self._coordinates(self.display)}</{t("loc", "coordinatesForDisplay")}>'
        if self.point:
            inner += (f'<{t("loc", "pointByCoordinates")}><{t("loc", "pointCoordinates")}>{self._coordinates(self.point)}'
                      f'</{t("loc", "pointCoordinates")}></{t("loc", "pointByCoordinates")}>')
        point_type = f'{self._prefix("loc")}PointLocation'
        return f'<{t("fac", "locationReference")} xsi:type="{point_type}">{inner}</{t("fac", "locationReference")}>'

    def _address_line(self, order: int, kind: str, text: str) -> str:
        t = self._tag
        return (f'<{t("locx", "addressLine")} order="{order}"><{t("locx", "type")}>{kind}</{t("locx", "type")}>'
                + self._multilingual(t("locx", "text"), (("de", text),)) + f'</{t("locx", "addressLine")}>')

    def _coordinates(self, point: tuple[float, float]) -> str:
        t = self._tag
        return (f'<{t("loc", "latitude")}>{point[0]}</{t("loc", "latitude")}>'
                f'<{t("loc", "longitude")}>{point[1]}</{t("loc", "longitude")}>')

    def _element(self, xsi_type: str, ident: str, names: tuple[tuple[str, str], ...], *, layer: int, kind: str,
                 parent: str | None = None, children: tuple[str, ...] = (), supply: int | None = None,
                 facility_object: list[str] | None = None, tail: str = "", occupancy_level: bool = False) -> str:
        t = self._tag
        out = [f'<{t("prk", "hierarchyElementGeneral")} xsi:type="{self._prefixed_type(xsi_type)}" id="{ident}" version="3">']
        if names:
            out.append(self._multilingual(t("fac", "name"), names))
        out += facility_object or []
        if self.extension:
            out.append(f'<{t("fac", "_facilityObjectExtension")}><v:note xmlns:v="{VENDOR_NS}">x</v:note>'
                       f'</{t("fac", "_facilityObjectExtension")}>')
        out.append(f'<{t("prk", "layer")}>{layer}</{t("prk", "layer")}><{t("prk", "type")}>{kind}</{t("prk", "type")}>')
        if parent:
            out.append(f'<{t("prk", "parentId")} id="{parent}" version="3" targetClass="fac:FacilityObject"/>')
        for child in children:
            out.append(f'<{t("prk", "childId")} id="{child}" targetClass="fac:FacilityObject"/>')
        if occupancy_level:
            out.append(f'<{t("prk", "occupancyLevel")}><{t("prk", "occupanyIndicator")}>percentage70'
                       f'</{t("prk", "occupanyIndicator")}></{t("prk", "occupancyLevel")}>')
        if supply is not None:
            out.append(self._supply(supply))
        out.append(tail)
        out.append(f'</{t("prk", "hierarchyElementGeneral")}>')
        return "".join(out)

    def _common_components(self, what: str) -> str:
        if not self.extension:
            return ""
        t = self._tag
        return (f'<{t("prk", "commonComponents")}><{t("prk", "marketing")}><{t("prk", "webUrl")}>'
                f'https://example.org/{what}</{t("prk", "webUrl")}></{t("prk", "marketing")}></{t("prk", "commonComponents")}>')

    def _place_status(self) -> str:
        t = self._tag
        head = []
        if self.status_description:
            head.append(self._multilingual(t("fac", "statusDescription"), (("de", "Messe: Zufahrt über Am Kaiserkai"),)))
        middle = []
        if self.queueing_time:
            middle.append(f'<{t("prk", "queueingTime")}>120.0</{t("prk", "queueingTime")}>')
        if self.blurred:
            middle.append(f'<{t("prk", "blurredAvailability")}>false</{t("prk", "blurredAvailability")}>')
        for fault in self.faults:
            middle.append(f'<{t("prk", "parkingFault")}>{fault}</{t("prk", "parkingFault")}>')
        after = []
        if self.status_validity:
            after.append(f'<{t("prk", "statusValidity")} xsi:type="{self._prefixed_type("ValidityByTime")}">'
                         f'<{t("prk", "statusTime")}>2026-03-01T10:00:00Z</{t("prk", "statusTime")}></{t("prk", "statusValidity")}>')
        if self.status_supply is not None:
            after.append(self._supply(self.status_supply))
        if self.demand_table:
            after.append(f'<{t("prk", "demandTable")}><{t("prk", "timestamp")}>2026-03-01T09:59:00Z</{t("prk", "timestamp")}>'
                         f'<{t("prk", "demandType")}><{t("prk", "creationTime")}>2026-03-01T09:59:00Z</{t("prk", "creationTime")}>'
                         f'<{t("prk", "occupancyCalculation")}>counted</{t("prk", "occupancyCalculation")}>'
                         f'<{t("prk", "count")}>313</{t("prk", "count")}></{t("prk", "demandType")}></{t("prk", "demandTable")}>')
        if self.extension:
            after.append(f'<{t("prk", "_parkingStatusInformationExtension")}><v:sensorsOnline xmlns:v="{VENDOR_NS}">'
                         f'41</v:sensorsOnline></{t("prk", "_parkingStatusInformationExtension")}>')
        tail = "".join(f'<{t("prk", "status")}>{s}</{t("prk", "status")}>' for s in self.statuses)
        if self.full_at_floor:
            tail += f'<{t("prk", "parkingPlaceFullAtFloor")}>A</{t("prk", "parkingPlaceFullAtFloor")}>'
        if self.declaration_valid_now:
            tail += f'<{t("prk", "declarationValidNow")}>true</{t("prk", "declarationValidNow")}>'
        occupancy = self._occupancy(self.vacant, self.occupied, place=True)
        return self._status_record("P1", self._prefixed_type("PlaceStatus"), occupancy=occupancy, head=head,
                                   middle=middle, after=after, tail=tail, last_updated=self.last_updated,
                                   opening_status=self.opening_status)

    def _occupancy(self, vacant: int | None, occupied: int | None, place: bool = False) -> str:
        t = self._tag
        items = []
        if place and self.override is not None:
            items.append(f'<{t("prk", "numberOfSpacesOverride")}>{self.override}</{t("prk", "numberOfSpacesOverride")}>')
        if vacant is not None:
            items.append(f'<{t("prk", "numberOfVacantSpaces")}>{vacant}</{t("prk", "numberOfVacantSpaces")}>')
        if place and self.vacant_bounds:
            items.append(f'<{t("prk", "numberOfVacantSpacesLowerThan")}>150</{t("prk", "numberOfVacantSpacesLowerThan")}>'
                         f'<{t("prk", "numberOfVacantSpacesHigherThan")}>100</{t("prk", "numberOfVacantSpacesHigherThan")}>'
                         f'<{t("prk", "numberOfVacantSpacesGraded")}>onlyAFewSpacesAvailable'
                         f'</{t("prk", "numberOfVacantSpacesGraded")}>')
        if occupied is not None:
            items.append(f'<{t("prk", "numberOfOccupiedSpaces")}>{occupied}</{t("prk", "numberOfOccupiedSpaces")}>')
        if place and self.vehicles is not None:
            items.append(f'<{t("prk", "numberOfVehicles")}>{self.vehicles}</{t("prk", "numberOfVehicles")}>')
        if place and self.percentage is not None:
            items.append(f'<{t("prk", "occupancy")}>{self.percentage}</{t("prk", "occupancy")}>')
        if place and self.occupancy_graded:
            items.append(f'<{t("prk", "occupancyGraded")}>percentage70</{t("prk", "occupancyGraded")}>')
        if place and self.trend is not None:
            items.append(f'<{t("prk", "occupancyTrend")}>{self.trend}</{t("prk", "occupancyTrend")}>')
        if place and self.counts_and_rates:
            items.append(f'<{t("prk", "vehicleCountAndRate")}><{t("prk", "lastCalibration")}>2026-01-01T00:00:00Z'
                         f'</{t("prk", "lastCalibration")}></{t("prk", "vehicleCountAndRate")}>')
        if not items and not place:
            return ""
        return f'<{t("prk", "occupancy")}>{"".join(items)}</{t("prk", "occupancy")}>'

    def _status_record(self, reference: str, xsi_type: str, *, occupancy: str = "", head: list[str] | None = None,
                       middle: list[str] | None = None, after: list[str] | None = None, tail: str = "",
                       last_updated: str | None = None, opening_status: str | None = None) -> str:
        t = self._tag
        typed = f' xsi:type="{xsi_type}"' if xsi_type else ""
        out = [f'<{t("prk", "parkingStatusInformation")}{typed}>',
               f'<{t("fac", "reference")} id="{reference}" version="3" targetClass="fac:FacilityObject"/>']
        if last_updated:
            out.append(f'<{t("fac", "lastUpdated")}>{last_updated}</{t("fac", "lastUpdated")}>')
        if opening_status:
            out.append(f'<{t("fac", "openingStatus")}>{opening_status}</{t("fac", "openingStatus")}>')
        out += head or []
        out += middle or []
        out.append(occupancy)
        out += after or []
        out.append(tail)
        out.append(f'</{t("prk", "parkingStatusInformation")}>')
        return "".join(out)

    def _opening(self, publication: str, time: str) -> str:
        t = self._tag
        declarations = " ".join(
            f'xmlns="{NS[ns]}"' if not prefix else f'xmlns:{prefix}="{NS[ns]}"' for ns, prefix in self._prefixes.items())
        opening = (f'<?xml version="1.0" encoding="UTF-8"?><{t("d2", "payload")} {declarations} xmlns:xsi="{NS["xsi"]}" '
                   f'xsi:type="{self._prefixed_type(publication)}" lang="{self.lang}" modelBaseVersion="3">')
        out = [opening]
        if self.feed_description:
            out.append(self._multilingual(t("com", "feedDescription"), (("de", "Parkhäuser"),)))
            out.append(f'<{t("com", "feedType")}>parking</{t("com", "feedType")}>')
        out.append(f'<{t("com", "publicationTime")}>{time}</{t("com", "publicationTime")}>')
        out.append(f'<{t("com", "publicationCreator")}><{t("com", "country")}>DE</{t("com", "country")}>'
                   f'<{t("com", "nationalIdentifier")}>HH-UDP</{t("com", "nationalIdentifier")}></{t("com", "publicationCreator")}>')
        return "".join(out)

    def _header(self) -> str:
        t = self._tag
        return (f'<{t("prk", "headerInformation")}><{t("com", "confidentiality")}>noRestriction</{t("com", "confidentiality")}>'
                f'<{t("com", "informationStatus")}>real</{t("com", "informationStatus")}></{t("prk", "headerInformation")}>')

    def _supply(self, quantity: int) -> str:
        t = self._tag
        return (f'<{t("prk", "supply")}><{t("prk", "quantity")}>{quantity}</{t("prk", "quantity")}>'
                f'<{t("prk", "viewType")}>spaceView</{t("prk", "viewType")}></{t("prk", "supply")}>')

    def _multilingual(self, tag: str, values: tuple[tuple[str, str], ...]) -> str:
        t = self._tag
        inner = "".join(f'<{t("com", "value")} lang="{lang}">{text}</{t("com", "value")}>' for lang, text in values)
        return f'<{tag}><{t("com", "values")}>{inner}</{t("com", "values")}></{tag}>'

    @property
    def _prefixes(self) -> dict[str, str]:
        return UNUSUAL if self.prefixes else CONVENTIONAL

    def _prefix(self, ns: str) -> str:
        prefix = self._prefixes[ns]
        return f"{prefix}:" if prefix else ""

    def _tag(self, ns: str, local: str) -> str:
        return f"{self._prefix(ns)}{local}"

    def _prefixed_type(self, local: str) -> str:
        return f"{self._prefix('prk')}{local}"


OPENING = ("open", "openWithServiceLimitation", "closed", "temporarilyClosed", "statusUnknown")
FAULTS = ("barrierMalfunction", "erroneousOccupancyInformation", "paymentMachinesInoperative")
PLACE_STATUSES = ("full", "almostFull", "spacesAvailable", "overcrowding", "unknown", "other")
TRENDS = ("increasing", "increasingQuickly", "decreasing", "decreasingSlowly", "stable", "unknown")
CAMPUS_STATUSES = ("allParkingsFull", "enoughSpacesAvailable", "unknown")
COUNTS = st.integers(min_value=0, max_value=5000)


@st.composite
def feeds(draw: st.DrawFn) -> Feed:
    """A publisher's pair of documents with any choice of the optional elements."""
    maybe = st.booleans()
    level, campus, area, space = draw(maybe), draw(maybe), draw(maybe), draw(maybe)
    return Feed(
        lang=draw(st.sampled_from(("de", "en"))),
        feed_description=draw(maybe), header=draw(maybe), table_name=draw(maybe), information_manager=draw(maybe),
        campus=campus,
        names=draw(st.sampled_from(((), (("de", "Elbgarage"),), (("en", "Elbe garage"), ("de", "Elbgarage"))))),
        alias=draw(st.none() | st.just("Elbe")),
        external_identifier=draw(maybe), place_last_updated=draw(maybe), description=draw(maybe),
        point=draw(st.none() | st.just((53.5413, 9.9841))), display=draw(st.none() | st.just((53.54, 9.98))),
        address=draw(maybe), occupancy_level=draw(maybe), supply=draw(st.none() | COUNTS), layout=draw(maybe),
        level=level, level_supply=draw(st.none() | COUNTS), area=area, space=space, extension=draw(maybe),
        table_reference=draw(maybe), status_header=draw(maybe),
        last_updated=draw(st.none() | st.sampled_from(("2026-03-01T10:58:30.25+01:00", "2026-03-01T09:58:30Z",
                                                       "2026-03-01T10:58:30"))),
        opening_status=draw(st.none() | st.sampled_from(OPENING)), status_description=draw(maybe),
        queueing_time=draw(maybe), blurred=draw(maybe),
        faults=tuple(draw(st.lists(st.sampled_from(FAULTS), max_size=2, unique=True))),
        override=draw(st.none() | COUNTS), vacant=draw(st.none() | COUNTS), vacant_bounds=draw(maybe),
        occupied=draw(st.none() | COUNTS), vehicles=draw(st.none() | COUNTS),
        percentage=draw(st.none() | st.just(72.5)), occupancy_graded=draw(maybe),
        trend=draw(st.none() | st.sampled_from(TRENDS)), counts_and_rates=draw(maybe), status_validity=draw(maybe),
        status_supply=draw(st.none() | COUNTS), demand_table=draw(maybe),
        statuses=tuple(draw(st.lists(st.sampled_from(PLACE_STATUSES), max_size=2, unique=True))),
        full_at_floor=draw(maybe), declaration_valid_now=draw(maybe),
        level_status=draw(maybe), campus_status=draw(st.none() | st.sampled_from(CAMPUS_STATUSES)) if campus else None,
        area_status=draw(maybe) if area else False, space_status=draw(maybe) if space else False,
        prefixes=draw(maybe),
    )
