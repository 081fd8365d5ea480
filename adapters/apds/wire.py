"""APDS v4 on the wire, shared by the adapter and the simulator so both speak one document
(spec/, patched in patches.py): common values, paging, places and their occupancy, right
specifications, rate tables and quotes. Rights, sessions and payments: operations_wire.py.

What parkgate reads where (the mapping; the things APDS has no field for are said here too):
- A facility is a `Place` hierarchy element (`type: parkingPlace`) of `GET /places`; its levels
  are the `subplaceElement`s whose `parentId` is the place; the campus above it (layer 0) is
  not a facility. Capacity is the place's `hierarchyElementReference.supply` (`spaceView`).
- Occupancy is the place's `hierarchyElementReference.demandTable`: the `counted` `demandType`'s
  `count` is occupied. APDS reports no free count (parkgate derives it) and no gate counters
  (entries/exits stay unknown). The observation time is the demand table's optional
  `timestamp`; without one it is unknown (a controller without a clock): a `demandType`'s
  required `recordDateTime` is when the platform compiled the record, not when cars were counted.
  The status is the place's `occupancyLevel`, an entry of the platform's code list (OCCUPANCY_LEVELS).
- Rates are the rate table of the place's walk-in right specification (RIGHT_KINDS): one
  `RateLineCollection`, its `rateLines` a free tier (`flatRateTier` from PT0M), per started period
  (`incrementingRate`, `incrementPeriod`, `maxValue` the cap per day) and a day ticket (`flatRate`).
- Money is `AmountInCurrency`, a JSON number: read through its shortest decimal spelling, never
  used as a float.

Parsers are strict: whatever does not follow the document raises `WireError`, which the
adapter turns into a `RecordError` for that one record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.models import (
    Address,
    FacilityKind,
    FacilityRecord,
    GeoPoint,
    Money,
    OccupancyMethod,
    OccupancyReading,
    OccupancyStatus,
    Quote,
    QuoteRequest,
    RateKind,
    RateLine,
    RateTable,
    ZoneRecord,
)

TOKEN_HEADER = "X-MCC-Access-Token"  # the APDS README's authentication header
MAX_PAGE_SIZE = 50  # the simulator's largest page; the adapter asks for this many by default
LANGUAGE = "en"

PLACE, LEVEL, CAMPUS = "parkingPlace", "subplaceElement", "campus"
LICENSE_PLATE = "licensePlate"

#: the platform's code list for a place's occupancyLevel (ReferencedCodeListEntry.entryDefinedValue)
OCCUPANCY_LEVELS: dict[str, OccupancyStatus] = {
    "open": OccupancyStatus.OPEN,
    "spacesAvailable": OccupancyStatus.SPACES_AVAILABLE,
    "almostFull": OccupancyStatus.ALMOST_FULL,
    "full": OccupancyStatus.FULL,
    "closed": OccupancyStatus.CLOSED,
}

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MINUTES = re.compile(r"PT(\d{1,6})M")


class WireError(ValueError):
    """A record (or request) that does not follow the document."""


# --- times, money, text ------------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """An instant in UTC with a `Z` (the README: all timestamps are UTC); a fraction only when there is one."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the APDS wire carries instants, pass an aware datetime")
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, name: str = "time") -> datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise WireError(f"{name} is not a UTC date-time: {value!r}")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError as exc:
        raise WireError(f"{name} is not a valid time: {value!r}") from exc


def opt_time(raw: Mapping[str, Any], key: str) -> datetime | None:
    return None if raw.get(key) is None else parse_time(raw[key], key)


def epoch(value: datetime) -> int:
    """An instant as the query parameters want it: Unix seconds (start_after, modified_since…)."""
    return int(value.timestamp())


def minutes(value: int) -> str:
    """A Duration of whole minutes (`PT30M`)."""
    return f"PT{value}M"


def parse_minutes(value: Any, name: str) -> int:
    match = _MINUTES.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise WireError(f"{name} is not a duration in minutes (PTnM): {value!r}")
    return int(match.group(1))


def decimal(value: Any, name: str) -> Decimal:
    """A JSON number as the decimal it spells (never a float's binary value); cents at least."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"{name} is not a number: {value!r}")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:
        raise WireError(f"{name} is not a decimal: {value!r}") from exc
    if not amount.is_finite():
        raise WireError(f"{name} is not finite: {value!r}")
    return amount.quantize(Decimal("0.01")) if amount.as_tuple().exponent > -2 else amount  # type: ignore[operator]


def number(value: Decimal) -> float | int:
    """A decimal amount as a JSON number: the float whose shortest spelling is that decimal."""
    return int(value) if value == value.to_integral_value() else float(value)


def amount_body(money: Money) -> dict[str, Any]:
    return {"currencyType": money.currency, "currencyValue": number(money.amount)}


def amount(value: Any, name: str) -> Money:
    raw = obj(value, name)
    currency = raw.get("currencyType")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise WireError(f"{name}.currencyType is not an ISO 4217 code: {currency!r}")
    return Money(decimal(raw.get("currencyValue"), f"{name}.currencyValue"), currency)


def text_body(value: str) -> list[dict[str, str]]:
    """A MultilingualString of one language."""
    return [{"language": LANGUAGE, "string": value}]


def text_of(value: Any, name: str) -> str:
    """A MultilingualString as one string: English where there is one, else the first."""
    if not isinstance(value, list) or not value:
        raise WireError(f"{name} is not a multilingual string")
    strings = [(entry.get("language"), entry.get("string")) for entry in value if isinstance(entry, Mapping)]
    chosen = next((s for lang, s in strings if lang == LANGUAGE), strings[0][1] if strings else None)
    if not isinstance(chosen, str) or not chosen:
        raise WireError(f"{name} has no string")
    return chosen


def versioned(element_id: str, version: int = 1, class_name: str | None = None) -> dict[str, Any]:
    """A VersionedReference."""
    ref: dict[str, Any] = {"id": element_id, "version": version}
    if class_name is not None:
        ref["className"] = class_name
    return ref


# --- field access ----------------------------------------------------------------------------


def obj(value: Any, name: str = "record") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireError(f"{name} is not an object")
    return value


def text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{key!r} is missing or not a non-empty string")
    return value


def opt_text(raw: Mapping[str, Any], key: str) -> str | None:
    return None if raw.get(key) is None else text(raw, key)


def integer(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"{key!r} is missing or not an integer: {value!r}")
    return value


def opt_integer(raw: Mapping[str, Any], key: str) -> int | None:
    return None if raw.get(key) is None else integer(raw, key)


def items(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list):
        raise WireError(f"{key!r} is missing or not a list")
    return value


def opt_items(raw: Mapping[str, Any], key: str) -> list[Any]:
    return [] if raw.get(key) is None else items(raw, key)


def ref_id(value: Any, name: str) -> str:
    """The id of a (Versioned)Reference."""
    return text(obj(value, name), "id")


def record_ref(raw: Any, index: int) -> str:
    """What a RecordError calls a record: its id where it has one, else its position."""
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
        return raw["id"]
    return f"#{index}"


# --- paging ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageMeta:
    offset: int
    page_size: int
    total: int
    reference_instant: int


def page(body: Any) -> tuple[list[Any], PageMeta]:
    """(records, meta) of a paginated list answer (PaginatedListMeta)."""
    body = obj(body, "page")
    meta = obj(body.get("meta"), "meta")
    return items(body, "data"), PageMeta(integer(meta, "offset"), integer(meta, "pageSize"), integer(meta, "total"),
                                         integer(meta, "referenceInstant"))


# --- places and occupancy ----------------------------------------------------------------------


def element_type(raw: Mapping[str, Any]) -> str | None:
    kind = raw.get("type")
    return kind if isinstance(kind, str) else None


def parent_of(raw: Mapping[str, Any]) -> str | None:
    parent = raw.get("parentId")
    return ref_id(parent, "parentId") if parent is not None else None


def facility(raw: Any, children: list[Any]) -> FacilityRecord:
    raw = obj(raw, "place")
    if element_type(raw) != PLACE:
        raise WireError(f"element {raw.get('id')!r} is not a parkingPlace")
    time_zone = text(raw, "timeZone")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WireError(f"unknown time zone {time_zone!r}") from exc
    addresses = opt_items(raw, "placeStreetAddress")
    points = opt_items(raw, "indicativePlacePointLocation")
    return FacilityRecord(
        vendor_id=text(raw, "id"),
        name=text_of(raw.get("name"), "name"),
        capacity=supply(raw),
        time_zone=time_zone,
        address=_address(addresses[0]) if addresses else None,
        location=_point(points[0]) if points else None,
        zones=tuple(_level(child) for child in children),
        version=integer(raw, "version"),
    )


def supply(raw: Mapping[str, Any]) -> int | None:
    """The element's marked spaces (`supply` with `spaceView`), else its estimated ones."""
    reference = raw.get("hierarchyElementReference")
    if reference is None:
        return None
    entries = [obj(s, "supply") for s in opt_items(obj(reference, "hierarchyElementReference"), "supply")]
    for view in ("spaceView", "vehicleView"):
        for entry in entries:
            if entry.get("supplyViewType") == view:
                return integer(entry, "supplyQuantity")
    return None


def _level(raw: Any) -> ZoneRecord:
    raw = obj(raw, "level")
    return ZoneRecord(vendor_id=text(raw, "id"), name=text_of(raw.get("name"), "name"),
                      kind=FacilityKind.LEVEL if element_type(raw) == LEVEL else FacilityKind.ZONE, capacity=supply(raw))


def _address(value: Any) -> Address:
    raw = obj(value, "address")
    lines = sorted((obj(line, "address line") for line in opt_items(raw, "addressLines")),
                   key=lambda line: line.get("order", 0))
    street = next((text_of(line.get("text"), "addressLines.text") for line in lines if line.get("type") == "street"), None)
    country = opt_text(raw, "countryCode")
    return Address(street=street, postal_code=opt_text(raw, "postCode"),
                   city=text_of(raw["city"], "city") if raw.get("city") is not None else None,
                   country=country.upper() if country else None)


def _point(value: Any) -> GeoPoint:
    raw = obj(value, "point location")
    coordinates = raw.get("coordinates")  # GeoJsonPoint; PointByCoordinates needs a CRS we do not read
    if raw.get("type") != "Point" or not isinstance(coordinates, list) or len(coordinates) != 2:
        raise WireError("the point location is not a GeoJSON Point")
    lon, lat = coordinates
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in (lon, lat)):
        raise WireError("location coordinates are not numbers")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise WireError(f"location out of range: {coordinates!r}")
    return GeoPoint(latitude=float(lat), longitude=float(lon))


def occupancy(raw: Any, received_at: datetime, zone_id: str | None = None) -> OccupancyReading:
    """A place's (or, with zone_id, a level's) counted occupancy from its demand table and supply."""
    raw = obj(raw, "place")
    reference = obj(raw.get("hierarchyElementReference"), "hierarchyElementReference")
    tables = [obj(t, "demandTable") for t in opt_items(reference, "demandTable")]
    observed_at: datetime | None = None
    occupied: int | None = None
    if tables:
        table = tables[-1]  # the latest the platform compiled
        observed_at = opt_time(table, "timestamp")
        demand = [obj(d, "demandType") for d in opt_items(table, "demandType")]
        counted = [d for d in demand if d.get("occupancyCalculation") in ("counted", None)] or demand
        if counted:
            parse_time(counted[0].get("recordDateTime"), "recordDateTime")  # required: checked, not the observation
            occupied = integer(counted[0], "count")
    level = raw.get("occupancyLevel")
    status = None
    if level is not None:
        indicator = obj(obj(level, "occupancyLevel").get("occupancyIndicator"), "occupancyIndicator")
        status = OCCUPANCY_LEVELS.get(text(indicator, "entryDefinedValue"))
    parent = parent_of(raw) if zone_id is not None else None
    return OccupancyReading(
        vendor_facility_id=parent or text(raw, "id"),
        zone_id=zone_id,
        method=OccupancyMethod.COUNTED,
        capacity=supply(raw),
        occupied=occupied,
        free=None,  # APDS carries no free count: parkgate derives it from supply and count
        observed_at=observed_at,
        received_at=received_at,
        status=status,
    )


# --- right specifications: what a right at a place is ----------------------------------------------


class RightKind(StrEnum):
    TRANSIENT = "TRANSIENT"  # the ticket a walk-in session runs under
    RESERVATION = "RESERVATION"
    PERMIT = "PERMIT"
    VALIDATION = "VALIDATION"


#: how parkgate tells a place's right specifications apart (APDS has no such vocabulary): by `type`,
#: and for one-time parking by whether it has `rightPools` (rights handed out ahead: bookings)
RIGHT_KINDS = {"permitParking": RightKind.PERMIT, "accessPermission": RightKind.VALIDATION}


@dataclass(frozen=True)
class SpecInfo:
    """One RightSpecification as parkgate uses it."""

    id: str
    version: int
    kind: RightKind | None
    place_id: str
    rate_tables: tuple[str, ...]


def spec_info(raw: Any) -> SpecInfo:
    raw = obj(raw, "right specification")
    kind_word = raw.get("type")
    if kind_word == "oneTimeUseParking":
        kind: RightKind | None = RightKind.RESERVATION if raw.get("rightPools") else RightKind.TRANSIENT
    else:
        kind = RIGHT_KINDS.get(kind_word) if isinstance(kind_word, str) else None
    places = items(raw, "hierarchyElements")
    if not places:
        raise WireError("a right specification names no place")
    tables = tuple(ref_id(obj(e, "rateEligibility").get("rateTable"), "rateTable")
                   for e in opt_items(raw, "rateEligibility") if obj(e, "rateEligibility").get("rateTable") is not None)
    return SpecInfo(text(raw, "id"), integer(raw, "version"), kind, ref_id(places[0], "hierarchyElements"), tables)


# --- rate tables -------------------------------------------------------------------------------------


def rate_table(raw: Any, place_id: str) -> RateTable:
    raw = obj(raw, "rate table")
    collections = [obj(c, "rateLineCollection") for c in items(raw, "rateLineCollections")]
    if not collections:
        raise WireError("a rate table without rate line collections")
    collection = collections[0]
    currency = text(collection, "applicableCurrency")
    if not _CURRENCY.fullmatch(currency):
        raise WireError(f"applicableCurrency is not an ISO 4217 code: {currency!r}")
    lines = sorted((obj(line, "rate line") for line in items(collection, "rateLines")),
                   key=lambda line: line.get("sequence", 0))
    return RateTable(
        vendor_facility_id=place_id,
        currency=currency,
        lines=tuple(_rate_line(line, currency) for line in lines),
        valid_from=parse_time(raw.get("validityStart"), "validityStart"),
    )


def _rate_line(raw: Mapping[str, Any], currency: str) -> RateLine:
    kind = raw.get("rateLineType")
    value = Money(decimal(raw.get("value"), "value"), currency)
    description = opt_text(raw, "description") or ""
    cap = raw.get("maxValue")
    max_amount = None if cap is None else Money(decimal(cap, "maxValue"), currency)
    if kind == "flatRateTier":
        if raw.get("durationStart") not in (None, "PT0M"):
            raise WireError("a time-based tier that does not start at arrival")  # the domain's tiers do
        return RateLine(RateKind.TIERED, description, value,
                        up_to_minutes=_positive(parse_minutes(raw.get("durationEnd"), "durationEnd"), "durationEnd"),
                        max_amount=max_amount)
    if kind == "incrementingRate":
        return RateLine(RateKind.INCREMENTING, description, value,
                        period_minutes=_positive(parse_minutes(raw.get("incrementPeriod"), "incrementPeriod"),
                                                 "incrementPeriod"), max_amount=max_amount)
    if kind == "flatRate":
        return RateLine(RateKind.FLAT, description, value, max_amount=max_amount)
    # A line we cannot read would make the table misprice: the whole table is the error.
    raise WireError(f"unknown rateLineType {kind!r}")


def _positive(value: int, name: str) -> int:
    if value <= 0:
        raise WireError(f"{name} is not a positive number of minutes: {value}")
    return value


# --- quotes --------------------------------------------------------------------------------------


#: ResponseReasonEnum -> the reason parkgate gives (GraphQL `unavailableReason`)
QUOTE_REASONS = {
    "noAvailability": "FULLY_BOOKED",
    "rightSpecificationNotAvailableAtRequestedTimes": "CLOSED",
    "noMatchingSpecification": "UNKNOWN_PLACE",
    "eligibilityRequirementNotMet": "NOT_ELIGIBLE",
    "other": "UNAVAILABLE",
}


def quote_request(request_id: str, request: QuoteRequest, spec: SpecInfo, now: datetime) -> dict[str, Any]:
    """A QuoteRightRequest for booking the place's reservation right in the window."""
    return {
        "id": request_id,
        "version": 1,
        "periodStart": format_time(request.starts_at),
        "periodEnd": format_time(request.ends_at),
        "requestTime": format_time(now),
        "referencedRightSpecifications": [{
            "rightSpecificationId": versioned(spec.id, spec.version),
            "elementId": versioned(spec.place_id),
        }],
    }


def quote(raw: Any, request: QuoteRequest) -> Quote:
    """The QuoteRightResponse to `request`: its cheapest exact option, or why there is none."""
    raw = obj(raw, "quote response")
    options = [obj(o, "option") for o in opt_items(raw, "options")]
    exact = [o for o in options if o.get("exact", True)]
    if not exact:
        reason = raw.get("reason")
        return Quote(request.vendor_facility_id, request.starts_at, request.ends_at, None, None,
                     QUOTE_REASONS.get(reason, "UNAVAILABLE") if isinstance(reason, str) else "UNAVAILABLE")
    priced = [(amount(obj(o.get("financialQuote"), "financialQuote").get("value"), "financialQuote.value"), o)
              for o in exact]
    price, option = min(priced, key=lambda pair: pair[0].amount)
    expiration = obj(option.get("quoteExpiration"), "quoteExpiration")
    return Quote(
        vendor_facility_id=request.vendor_facility_id,
        starts_at=request.starts_at,
        ends_at=request.ends_at,
        price=price,
        expires_at=opt_time(expiration, "expiresDateTime"),
    )
