"""ParkLine's wire dialect, both ways: parsing what it sends, mapping it into domain types.

Kept apart from the HTTP code so the adapter stays about calls and the simulator can share
the time and paging conventions. Every mapper raises WireError (a ValueError) on a record it
cannot use; the adapter turns that into a RecordError for that record alone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adapters.models import (
    Address,
    FacilityKind,
    FacilityRecord,
    GeoPoint,
    Money,
    OccupancyMethod,
    OccupancyReading,
    OccupancyStatus,
    RateKind,
    RateLine,
    RateTable,
    ZoneRecord,
)

# ISO 8601 with seconds and an explicit offset, nothing looser: a local time without its
# offset is ambiguous twice a year, and fromisoformat alone accepts dates and basic formats.
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}:\d{2}|Z)$")

# Currencies whose minor unit is not a hundredth (ISO 4217); ParkLine only bills GBP today.
_MINOR_EXPONENT = {"JPY": 0, "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}

# A UK postcode at the end of an address line ("London N1C 4AG").
_POSTCODE = re.compile(r"\s*([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})$", re.IGNORECASE)

STATUSES = {"OPEN": OccupancyStatus.OPEN, "CLOSED": OccupancyStatus.CLOSED, "FULL": OccupancyStatus.FULL}


class WireError(ValueError):
    """A record that does not follow ParkLine's contract."""


def parse_time(value: Any) -> datetime | None:
    """A ParkLine time (local, with numeric offset) as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str) or not _LOCAL_TIME.match(value):
        raise WireError(f"not a time with offset: {value!r}")
    return datetime.fromisoformat(value).astimezone(UTC)


def format_time(moment: datetime, tz: Any) -> str:
    """A moment as ParkLine wants it: the car park's local time with its numeric offset."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # domain times are UTC instants
    return moment.astimezone(tz).isoformat()


def money(minor: Any, currency: Any) -> Money:
    """Integer minor units to a Decimal amount (350 GBP -> 3.50), never through a float."""
    code = _currency(currency)
    return Money(Decimal(_integer(minor, "amount")).scaleb(-_MINOR_EXPONENT.get(code, 2)), code)


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
        raise WireError(f"not a currency code: {value!r}")
    return value


def _integer(value: Any, name: str) -> int:
    # bool is an int to Python, not to us
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{name} is not an integer: {value!r}")
    return value


def _optional_integer(value: Any, name: str) -> int | None:
    return None if value is None else _integer(value, name)


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{key} missing or not a string")
    return value


def _optional_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise WireError(f"{key} is not a string: {value!r}")
    return value or None


def next_link(header: str | None) -> str | None:
    """The target of the rel="next" link in an RFC 8288 Link header, if there is one."""
    if not header:
        return None
    # <uri>; param=value; param="quoted, value", <uri2>; ...
    for match in re.finditer(r'<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:"[^"]*"|[^;,\s]*))?)*)', header):
        for name, value in re.findall(r';\s*([^;,=\s]+)(?:\s*=\s*("[^"]*"|[^;,\s]*))?', match.group(2)):
            # rel may list several space-separated relation types
            if name.lower() == "rel" and "next" in value.strip('"').lower().split():
                return match.group(1)
    return None


def parse_address(addr: Any, postcode: Any) -> Address | None:
    """ "Pancras Road 5, London N1C 4AG" -> street, city and postcode; the country is always GB."""
    if addr is None and postcode is None:
        return None
    if addr is not None and not isinstance(addr, str):
        raise WireError(f"addr is not a string: {addr!r}")
    if postcode is not None and not isinstance(postcode, str):
        raise WireError(f"postcode is not a string: {postcode!r}")
    street: str | None = None
    city: str | None = None
    if addr:
        head, _, tail = addr.partition(",")
        street = head.strip() or None
        tail = tail.strip()
        found = _POSTCODE.search(tail)
        if found:
            tail = tail[: found.start()].strip()
            postcode = postcode or found.group(1).upper()
        city = tail or None
    return Address(street=street, postal_code=(postcode or None), city=city, country="GB")


def facility(raw: dict[str, Any]) -> FacilityRecord:
    lat, lng = raw.get("lat"), raw.get("lng")
    location: GeoPoint | None = None
    if lat is not None and lng is not None:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lng)):
            raise WireError(f"coordinates are not numbers: {lat!r}, {lng!r}")
        location = GeoPoint(float(lat), float(lng))
    zones = []
    for floor in raw.get("floors") or ():
        if not isinstance(floor, dict):
            raise WireError(f"floor is not an object: {floor!r}")
        zones.append(
            ZoneRecord(
                vendor_id=_text(floor, "ref"),
                name=_optional_text(floor, "label") or floor["ref"],
                kind=FacilityKind.LEVEL,
                capacity=_optional_integer(floor.get("spaces"), "floor spaces"),
            )
        )
    return FacilityRecord(
        vendor_id=_text(raw, "code"),
        name=_optional_text(raw, "title") or raw["code"],
        # a decommissioned car park comes without spaces or coordinates: unknown, not an error
        capacity=_optional_integer(raw.get("spaces"), "spaces"),
        time_zone=_optional_text(raw, "tz"),
        address=parse_address(raw.get("addr"), raw.get("postcode")),
        location=location,
        zones=tuple(zones),
    )


def occupancy(raw: dict[str, Any], received_at: datetime) -> OccupancyReading:
    state = raw.get("state")
    return OccupancyReading(
        vendor_facility_id=_text(raw, "code"),
        zone_id=None,
        method=OccupancyMethod.COUNTED,
        capacity=_optional_integer(raw.get("spaces"), "spaces"),
        occupied=_optional_integer(raw.get("present"), "present"),
        free=None,  # ParkLine reports no free count; the gateway derives one
        observed_at=parse_time(raw.get("updated")),
        received_at=received_at,
        status=None if state is None else STATUSES.get(state, OccupancyStatus.UNKNOWN),
        entries=_optional_integer(raw.get("entries_today"), "entries_today"),
        exits=_optional_integer(raw.get("exits_today"), "exits_today"),
    )


def _duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def rate_table(raw: dict[str, Any]) -> RateTable:
    currency = _currency(raw.get("currency"))  # checked even for a tariff without any amount
    daily = raw.get("daily_max_minor")
    cap = None if daily is None else money(daily, currency)
    bands = raw.get("bands")
    if not isinstance(bands, list) or not all(isinstance(band, dict) for band in bands):
        raise WireError("bands missing or not a list of objects")
    lines = []
    for band in sorted(bands, key=lambda band: _integer(band.get("up_to_minutes"), "up_to_minutes")):
        up_to = band["up_to_minutes"]
        lines.append(
            RateLine(
                kind=RateKind.TIERED,
                description=f"Up to {_duration(up_to)}",
                amount=money(band.get("price_minor"), currency),
                up_to_minutes=up_to,
                max_amount=cap,  # the daily maximum caps what the bands add up to
            )
        )
    if raw.get("night_flat_minor") is not None:
        lines.append(RateLine(kind=RateKind.FLAT, description="Night rate", amount=money(raw["night_flat_minor"], currency)))
    return RateTable(vendor_facility_id=_text(raw, "code"), currency=currency, lines=tuple(lines))
