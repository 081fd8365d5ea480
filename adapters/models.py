"""Normalized domain types: what every vendor dialect is mapped into.

Plain dataclasses with no GraphQL in sight, so that adapters, the event path and the
GraphQL layer share one vocabulary. Ids here are the *vendor's* ids; the gateway maps
them to its own facility ids through the configuration.

Here: facilities, occupancy, rates and quotes, citations, guest stays, and the events. The
records a PARCS's operations act on (reservations, sessions, payments, permits, validations,
transactions) are domain types too, in `adapters.operation_models`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class SystemKind(StrEnum):
    PARCS = "PARCS"
    GUIDANCE = "GUIDANCE"
    ENFORCEMENT = "ENFORCEMENT"
    HOSPITALITY = "HOSPITALITY"


class FacilityKind(StrEnum):
    FACILITY = "FACILITY"
    LEVEL = "LEVEL"
    ZONE = "ZONE"


class OccupancyStatus(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    SPACES_AVAILABLE = "SPACES_AVAILABLE"
    ALMOST_FULL = "ALMOST_FULL"
    FULL = "FULL"
    UNKNOWN = "UNKNOWN"


class OccupancyMethod(StrEnum):
    """How a figure was obtained: counted at the gates, or sensed per bay."""

    COUNTED = "COUNTED"
    SENSED = "SENSED"


class Trend(StrEnum):
    FILLING = "FILLING"
    EMPTYING = "EMPTYING"
    STEADY = "STEADY"
    UNKNOWN = "UNKNOWN"


class RateKind(StrEnum):
    FLAT = "FLAT"  # one amount for the whole period (e.g. a day rate)
    TIERED = "TIERED"  # amount for stays up to `up_to_minutes`
    INCREMENTING = "INCREMENTING"  # amount per started `period_minutes`


class GuestStayState(StrEnum):
    TENTATIVE = "TENTATIVE"  # on the PMS, not yet confirmed by both guest and hotel: no arrival expected yet
    BOOKED = "BOOKED"  # confirmed by both, not yet arrived
    CHECKED_IN = "CHECKED_IN"
    CHECKED_OUT = "CHECKED_OUT"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money. Never a float: amounts are decimals with an ISO 4217 currency."""

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class GeoPoint:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Address:
    street: str | None
    postal_code: str | None
    city: str | None
    country: str | None  # ISO 3166-1 alpha-2


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """A level or zone inside a facility, as one vendor knows it."""

    vendor_id: str
    name: str
    kind: FacilityKind
    capacity: int | None


@dataclass(frozen=True, slots=True)
class FacilityRecord:
    """A facility as one vendor describes it."""

    vendor_id: str
    name: str
    capacity: int | None
    time_zone: str | None
    address: Address | None
    location: GeoPoint | None
    zones: tuple[ZoneRecord, ...] = ()
    version: int | None = None


@dataclass(frozen=True, slots=True)
class OccupancyReading:
    """One vendor's figure for a facility (zone_id None) or one of its levels/zones.

    `free` is what the vendor said, untouched: real feeds report free < 0 or a free
    count that disagrees with capacity - occupied, and operators want to see that.
    `observed_at` is the vendor's own time and stays None when the vendor gave none.
    """

    vendor_facility_id: str
    zone_id: str | None
    method: OccupancyMethod
    capacity: int | None
    occupied: int | None
    free: int | None
    observed_at: datetime | None
    received_at: datetime
    status: OccupancyStatus | None = None
    trend: Trend = Trend.UNKNOWN
    entries: int | None = None  # gate counters, where the vendor counts
    exits: int | None = None


@dataclass(frozen=True, slots=True)
class RateLine:
    kind: RateKind
    description: str
    amount: Money
    period_minutes: int | None = None  # INCREMENTING: per started period
    up_to_minutes: int | None = None  # TIERED: applies to stays up to this length
    max_amount: Money | None = None  # cap per day, where the tariff has one


@dataclass(frozen=True, slots=True)
class RateTable:
    vendor_facility_id: str
    currency: str
    lines: tuple[RateLine, ...]
    valid_from: datetime | None = None


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    vendor_facility_id: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Quote:
    """A price for a stay, or the reason there is none."""

    vendor_facility_id: str
    starts_at: datetime
    ends_at: datetime
    price: Money | None
    expires_at: datetime | None
    unavailable_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EnforcementZone:
    vendor_id: str
    name: str
    max_stay_minutes: int | None


@dataclass(frozen=True, slots=True)
class Citation:
    number: str
    issued_at: datetime
    plate: str
    region: str | None
    violation_code: str
    violation: str | None
    fine: Money | None
    zone_id: str | None
    location: GeoPoint | None
    status: str
    version: int = 1


@dataclass(frozen=True, slots=True)
class CitationRequest:
    """A citation to issue: in a zone, for a plate (normalized), for a violation code of the platform."""

    zone_id: str
    plate: str
    violation_code: str
    #: an id the gateway derives from the client's idempotency key; the platform refuses it twice
    reference: str
    region: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class GuestStay:
    vendor_id: str
    property_id: str
    state: GuestStayState
    guest_name: str | None
    arrives_at: datetime | None
    departs_at: datetime | None
    car_registration: str | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class HotelProperty:
    vendor_id: str
    name: str
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class RecordError:
    """One vendor record that could not be mapped; the rest of its batch stands."""

    system_id: str
    record_ref: str
    message: str


@dataclass(slots=True)
class Batch(Generic[T]):
    """What an adapter returns for a list: the records it could map and the ones it could not."""

    items: list[T] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


class EventType(StrEnum):
    """What happened, in the gateway's words, whichever vendor said it."""

    OCCUPANCY_CHANGED = "OCCUPANCY_CHANGED"
    VEHICLE_ENTERED = "VEHICLE_ENTERED"
    VEHICLE_EXITED = "VEHICLE_EXITED"
    RESERVATION_CREATED = "RESERVATION_CREATED"
    RESERVATION_ARRIVED = "RESERVATION_ARRIVED"
    RESERVATION_CANCELLED = "RESERVATION_CANCELLED"
    GUEST_BOOKED = "GUEST_BOOKED"
    GUEST_CHECKED_IN = "GUEST_CHECKED_IN"
    GUEST_CHECKED_OUT = "GUEST_CHECKED_OUT"
    CITATION_ISSUED = "CITATION_ISSUED"
    CITATION_UPDATED = "CITATION_UPDATED"


@dataclass(frozen=True, slots=True)
class VendorEvent:
    """One happening as a vendor reports it (webhook or a diff of polled snapshots), in vendor ids.

    `vendor_event_id` is the vendor's own id (dedupe key); a vendor that re-sends a corrected
    event under the same id gives a higher `revision` (or the gateway derives one from content).
    `payload` holds normalized fields: plate, region, occupied, free, capacity, reservation_id,
    guest_name, car_registration, citation_number, violation_code… as the type calls for.
    """

    type: EventType
    vendor_event_id: str
    vendor_facility_id: str | None
    occurred_at: datetime | None
    payload: dict[str, object] = field(default_factory=dict)
    zone_id: str | None = None
    revision: int = 1


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """The unit on the bus: a vendor event mapped to gateway ids, with when parkgate got it."""

    id: str  # parkgate's id, unique per (system, vendor event id, revision)
    type: EventType
    system_id: str
    facility_id: str | None  # gateway facility id; None when the vendor's id maps to none
    occurred_at: datetime | None
    received_at: datetime
    vendor_event_id: str
    payload: dict[str, object] = field(default_factory=dict)
    zone_id: str | None = None
    revision: int = 1
    #: the W3C trace context of the request that caused it (a partner's booking) when traced:
    #: partners' webhooks for it join that trace
    traceparent: str | None = None
