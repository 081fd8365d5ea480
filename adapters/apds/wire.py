"""The APDS-style wire contract, shared by the adapter and the simulator so both speak one dialect.

Times are ISO 8601 UTC with a `Z` (`2026-11-27T09:14:03Z`, optional fraction), money amounts are
decimal strings. Parsers here are strict: whatever does not match raises `WireError`, which
the adapter turns into a `RecordError` for that one record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
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

PREFIX = "/apds/v1"
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
MAX_QUOTES = 100  # requests per POST /quotes

STATUSES: dict[str, OccupancyStatus] = {
    "open": OccupancyStatus.OPEN,
    "closed": OccupancyStatus.CLOSED,
    "full": OccupancyStatus.FULL,
}

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_CURRENCY = re.compile(r"[A-Z]{3}")


class WireError(ValueError):
    """A record (or request) that does not follow the contract."""


# --- times and money -------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """UTC with a `Z`; the fraction only when there is one, so whole seconds read as the spec shows."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the APDS wire carries instants, pass an aware datetime")
    value = value.astimezone(UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return value.strftime(pattern)


def parse_time(value: Any, name: str = "time") -> datetime:
    # fullmatch first: fromisoformat alone would also take offsets, dates and spaces.
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise WireError(f"{name} is not an ISO 8601 UTC time ending in Z: {value!r}")
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:  # e.g. month 13
        raise WireError(f"{name} is not a valid time: {value!r}") from exc


def format_amount(value: Decimal) -> str:
    return f"{value:.2f}"


def parse_amount(value: Any, name: str = "amount") -> Decimal:
    # Strings only: a JSON number would already have been through a float.
    if not isinstance(value, str):
        raise WireError(f"{name} is not a decimal string: {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise WireError(f"{name} is not a decimal: {value!r}") from exc
    if not amount.is_finite():
        raise WireError(f"{name} is not a finite amount: {value!r}")
    return amount


# --- field access ----------------------------------------------------------------------


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


def currency_of(raw: Mapping[str, Any]) -> str:
    currency = text(raw, "currency")
    if not _CURRENCY.fullmatch(currency):
        raise WireError(f"currency is not an ISO 4217 code: {currency!r}")
    return currency


def record_ref(raw: Any, index: int) -> str:
    """What a RecordError calls a record: its id where it has one, else its position."""
    if isinstance(raw, Mapping):
        for key in ("id", "placeId"):
            if isinstance(raw.get(key), str):
                return raw[key]
    return f"#{index}"


def page(body: Any) -> tuple[list[Any], int]:
    """(records, meta.total) of a paged response."""
    body = obj(body, "page")
    meta = obj(body.get("meta"), "meta")
    return items(body, "data"), integer(meta, "total")


# --- vendor record -> domain -----------------------------------------------------------


def facility(raw: Any) -> FacilityRecord:
    raw = obj(raw)
    time_zone = opt_text(raw, "timeZone")
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise WireError(f"unknown time zone {time_zone!r}") from exc
    return FacilityRecord(
        vendor_id=text(raw, "id"),
        name=text(raw, "name"),
        capacity=_car_capacity(opt_items(raw, "capacity")),
        time_zone=time_zone,
        address=_address(raw.get("address")),
        location=_location(raw.get("location")),
        zones=tuple(_zone(element) for element in opt_items(raw, "hierarchyElements")),
        version=opt_integer(raw, "version"),
    )


def _car_capacity(entries: list[Any]) -> int | None:
    # APDS gives capacity per vehicle type; the domain's facility capacity is for cars.
    for entry in entries:
        entry = obj(entry, "capacity entry")
        if entry.get("vehicleType") == "car":
            return integer(entry, "value")
    return None


def _address(value: Any) -> Address | None:
    if value is None:
        return None
    raw = obj(value, "address")
    return Address(
        street=opt_text(raw, "streetAddress"),
        postal_code=opt_text(raw, "postalCode"),
        city=opt_text(raw, "addressLocality"),
        country=opt_text(raw, "addressCountry"),
    )


def _location(value: Any) -> GeoPoint | None:
    if value is None:
        return None
    raw = obj(value, "location")
    coordinates = raw.get("coordinates")
    if raw.get("type") != "Point" or not isinstance(coordinates, list) or len(coordinates) != 2:
        raise WireError("location is not a GeoJSON Point")
    lon, lat = coordinates  # GeoJSON order
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in (lon, lat)):
        raise WireError("location coordinates are not numbers")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise WireError(f"location out of range: {coordinates!r}")
    return GeoPoint(latitude=float(lat), longitude=float(lon))


def _zone(value: Any) -> ZoneRecord:
    raw = obj(value, "hierarchy element")
    kind = FacilityKind.LEVEL if raw.get("type", "level") == "level" else FacilityKind.ZONE
    return ZoneRecord(
        vendor_id=text(raw, "id"),
        name=text(raw, "name"),
        kind=kind,
        capacity=opt_integer(raw, "capacity"),
    )


def occupancy(raw: Any, received_at: datetime) -> OccupancyReading:
    raw = obj(raw)
    observed = raw.get("observedAt")
    entries = exits = None
    counters = opt_items(raw, "counters")
    if counters:
        # A facility with several gates reports one counter each; the facility figure is the sum.
        parsed = [obj(c, "counter") for c in counters]
        entries = sum(integer(c, "entries") for c in parsed)
        exits = sum(integer(c, "exits") for c in parsed)
    status = raw.get("status")
    return OccupancyReading(
        vendor_facility_id=text(raw, "placeId"),
        zone_id=None,
        method=OccupancyMethod.COUNTED,
        capacity=opt_integer(raw, "capacity"),
        occupied=opt_integer(raw, "occupied"),
        free=opt_integer(raw, "free"),  # may be negative: passed through as the vendor said
        # Missing means the vendor's controller has no clock: never substitute ours.
        observed_at=None if observed is None else parse_time(observed, "observedAt"),
        received_at=received_at,
        status=STATUSES.get(status) if isinstance(status, str) else None,
        entries=entries,
        exits=exits,
    )


def rate_table(raw: Any) -> RateTable:
    raw = obj(raw)
    currency = currency_of(raw)
    valid_from = raw.get("validFrom")
    return RateTable(
        vendor_facility_id=text(raw, "placeId"),
        currency=currency,
        lines=tuple(_rate_line(line, currency) for line in items(raw, "rateLines")),
        valid_from=None if valid_from is None else parse_time(valid_from, "validFrom"),
    )


_RATE_KINDS = {"flat": RateKind.FLAT, "tiered": RateKind.TIERED, "incrementing": RateKind.INCREMENTING}


def _rate_line(value: Any, currency: str) -> RateLine:
    raw = obj(value, "rate line")
    kind = _RATE_KINDS.get(raw["type"]) if isinstance(raw.get("type"), str) else None
    if kind is None:
        # A line we cannot read would make the table misprice: the whole table is the error.
        raise WireError(f"unknown rate line type {raw.get('type')!r}")
    max_amount = raw.get("maxAmount")
    return RateLine(
        kind=kind,
        description=opt_text(raw, "description") or "",
        amount=Money(parse_amount(raw.get("amount")), currency),
        period_minutes=_minutes(raw, "periodMinutes", kind is RateKind.INCREMENTING),
        up_to_minutes=_minutes(raw, "upToMinutes", kind is RateKind.TIERED),
        max_amount=None if max_amount is None else Money(parse_amount(max_amount, "maxAmount"), currency),
    )


def _minutes(raw: Mapping[str, Any], key: str, required: bool) -> int | None:
    value = integer(raw, key) if required else opt_integer(raw, key)
    if value is not None and value <= 0:
        raise WireError(f"{key!r} is not a positive number of minutes: {value}")
    return value


# --- quotes ------------------------------------------------------------------------------


def quote_request(request: QuoteRequest) -> dict[str, str]:
    return {
        "placeId": request.vendor_facility_id,
        "from": format_time(request.starts_at),
        "to": format_time(request.ends_at),
    }


def quote(raw: Any, request: QuoteRequest) -> Quote:
    """The vendor's answer to `request`; the window is the one we asked for, to the microsecond."""
    raw = obj(raw, "quote")
    if raw.get("placeId") != request.vendor_facility_id:
        raise WireError(f"quote for {raw.get('placeId')!r} answers a request for {request.vendor_facility_id!r}")
    unavailable = raw.get("unavailable")
    if unavailable is not None:
        reason = text(obj(unavailable, "unavailable"), "reason")
        return Quote(request.vendor_facility_id, request.starts_at, request.ends_at, None, None, reason)
    price = obj(raw.get("price"), "price")
    currency = currency_of(price)
    expires = raw.get("expiresAt")
    return Quote(
        vendor_facility_id=request.vendor_facility_id,
        starts_at=request.starts_at,
        ends_at=request.ends_at,
        price=Money(parse_amount(price.get("amount")), currency),
        expires_at=None if expires is None else parse_time(expires, "expiresAt"),
    )
