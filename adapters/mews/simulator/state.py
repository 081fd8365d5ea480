"""The simulated PMS's data: the hotels (enterprises) that own two of the world's garages, their
reservations and the customers behind them, each rendered in the Connector API's documented shape.

Each hotel is seeded from a random source keyed by the system id (reproducible runs) with ~40
reservations from a week ago to a week ahead, in states that fit the present: past stays
Processed, current ones Started, future ones Confirmed or tentative (Optional, Inquired,
Requested), a few Canceled; a few belong to a company rather than a guest; ~60 % of guests have
a car registration (a Customer's `CarRegistrationNumber`). As real time passes, tentative stays
are confirmed or released, stays check in and out and new bookings arrive, replayed lazily
whenever someone asks. Tests and the sandbox's "trigger a check-in" control add their own through
`MewsState.add_reservation`, whose `wire`/`customer_wire` arguments put malformed values on the wire.
Instants are whole seconds, as the wire shows them.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from adapters.mews.wire import format_utc
from adapters.simulated.world import GarageSpec

#: garage key -> the enterprise (hotel) id that owns the garage
VENDOR_IDS: dict[str, str] = {
    "berlin-spree-hotel": "b8a1e3a2-7c55-4f0e-9a7e-2f1a0c9d5e11",
    "london-southbank": "c41d0f7e-2b6a-4e39-8d1c-7a9e5b3f2e12",
}
HOTEL_NAMES: dict[str, str] = {
    "berlin-spree-hotel": "Spree Hotel Berlin",
    "london-southbank": "Thames Hotel London",
}
#: two owners, two chains: a customer belongs to the chain of the hotel that first hosted them
CHAINS: dict[str, tuple[str, str]] = {
    "DE": ("4e1c9a55-0d2b-4f7e-8a61-3b9d2c7e5f01", "Spree Hotels"),
    "GB": ("9a7d3e21-6c4b-4d8f-b2e0-5f1a8c3d7e02", "Thames Hospitality"),
}
#: the environments the enterprises' legal, accommodation, accounting and tax codes name
ENVIRONMENTS = {"DE": ("DE-2020-1", "DE", "DE", "DE-2020-1"), "GB": ("UK", "GB", "GB", "UK")}
LANGUAGES = {"DE": "de-DE", "GB": "en-GB"}

#: a `wire` override value that removes the field instead of replacing it
OMIT: Any = object()

SEED_RESERVATIONS = 40  # per hotel
SEED_DAYS = 7  # arrivals from a week ago to a week ahead
CHECK_IN, CHECK_OUT = time(15, 0), time(11, 0)  # local
BOOKING_EVERY_MINUTES = (15.0, 40.0)  # a new booking somewhere, in real time
MAX_CATCH_UP = timedelta(hours=2)
TENTATIVE = ("Optional", "Inquired", "Requested")
RELEASE_BEFORE_ARRIVAL = timedelta(days=2)  # a tentative stay is confirmed or released by then

FIRST_NAMES = {
    "DE": ("Anna", "Lukas", "Marie", "Jonas", "Sophie", "Felix", "Lea", "Paul", "Clara", "Maximilian", "Emma", "Ben"),
    "GB": ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Olivia", "Charlie", "Emily", "Thomas", "Grace"),
}
LAST_NAMES = {
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann"),
    "GB": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Evans", "Thomas"),
}
DE_DISTRICTS = ("B", "B", "B", "P", "HH", "M", "K", "F", "S", "D", "L", "DD")
UK_AREAS = ("LA", "LB", "LC", "LD", "LF", "LG", "LK", "LN", "YA", "BD", "MA", "OV", "SN", "EA")
UK_AGES = ("19", "69", "20", "70", "21", "71", "22", "72", "23", "73", "24", "74", "25", "75", "26")
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
ORIGINS = ("Distributor", "ChannelManager", "ChannelManager", "Commander", "Connector")
COMMANDER_ORIGINS = ("InPerson", "Phone", "Email", "Website")
CANCELLATION_REASONS = ("RequestedByGuest", "BookedElsewhere", "PriceTooHigh", "NoShow", "Other")


class _Listed(Protocol):
    """What the API's lists are ordered and paged by: every simulated record has both."""

    @property
    def id(self) -> str: ...

    @property
    def updated(self) -> datetime: ...


T = TypeVar("T", bound=_Listed)


def newest_first(items: Sequence[T]) -> list[T]:
    return sorted(items, key=lambda item: (item.updated, item.id), reverse=True)


def _utc(at: datetime | None) -> str | None:
    return None if at is None else format_utc(at)


def whole_seconds(at: datetime) -> datetime:
    return at.replace(microsecond=0)


@dataclass(frozen=True)
class SimEnterprise:
    id: str
    name: str
    time_zone: str
    country: str
    garage: GarageSpec
    created: datetime
    updated: datetime
    #: the ids its reservations point at: the accommodation service, its rate, its room category
    #: and the user who books them
    service_id: str
    rate_id: str
    category_id: str
    profile_id: str
    adults_id: str
    children_id: str
    company_id: str  # a partner company that books rooms for its staff

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def chain_id(self) -> str:
        return CHAINS[self.country][0]

    def to_wire(self) -> dict[str, Any]:
        legal, accommodation, accounting, tax = ENVIRONMENTS[self.country]
        address_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mews-address:{self.id}"))
        return {
            "LinkedUtc": format_utc(self.created),
            "Id": self.id,
            "ExternalIdentifier": None,
            "HoldingKey": None,
            "ChainId": self.chain_id,
            "ChainName": CHAINS[self.country][1],
            "CreatedUtc": format_utc(self.created),
            "UpdatedUtc": format_utc(self.updated),
            "Name": self.name,
            "ShortName": None,
            "TimeZoneIdentifier": self.time_zone,
            "LegalEnvironmentCode": legal,
            "AccommodationEnvironmentCode": accommodation,
            "AccountingEnvironmentCode": accounting,
            "TaxEnvironmentCode": tax,
            "DefaultLanguageCode": LANGUAGES[self.country],
            "EditableHistoryInterval": "P0M7DT0H0M0S",
            "AccountingEditableHistoryInterval": "P0M7DT0H0M0S",
            "OperationalEditableHistoryInterval": "P0M5DT0H0M0S",
            "BusinessDayClosingOffset": None,
            "WebsiteUrl": None,
            "Email": None,
            "Phone": None,
            "LogoImageId": None,
            "CoverImageId": None,
            "Pricing": "Gross",
            "TaxPrecision": None,
            "AddressId": address_id,
            "Address": {
                "Id": address_id,
                "Line1": self.garage.street,
                "Line2": None,
                "City": self.garage.city,
                "PostalCode": self.garage.postal_code,
                "CountryCode": self.country,
                "CountrySubdivisionCode": None,
                "Latitude": self.garage.latitude,
                "Longitude": self.garage.longitude,
            },
            "GroupNames": [],
            "Subscription": {"TaxIdentifier": None},
        }


@dataclass
class SimCustomer:
    id: str
    chain_id: str
    number: str
    first_name: str | None
    last_name: str
    car_registration: str | None
    nationality: str
    created: datetime
    updated: datetime
    profile_id: str
    wire: dict[str, Any] = field(default_factory=dict)  # raw overrides, for malformed records

    def to_wire(self, *, addresses: bool) -> dict[str, Any]:
        address = None
        if addresses:
            address = {"Id": self.address_id, "Line1": None, "Line2": None, "City": None, "PostalCode": None,
                       "CountryCode": self.nationality, "CountrySubdivisionCode": None,
                       "Latitude": None, "Longitude": None}
        return _apply({
            "Id": self.id,
            "ChainId": self.chain_id,
            "Number": self.number,
            "Title": None,
            "Sex": None,
            "FirstName": self.first_name,
            "LastName": self.last_name,
            "SecondLastName": None,
            "NationalityCode": self.nationality,
            "PreferredLanguageCode": None,
            "LanguageCode": LANGUAGES.get(self.nationality),
            "BirthDate": None,
            "BirthCountryCode": None,
            "BirthCountrySubdivisionCode": None,
            "BirthPlace": None,
            "Occupation": None,
            "Email": None,
            "HasOtaEmail": False,
            "Phone": None,
            "TaxIdentificationNumber": None,
            "LoyaltyCode": None,
            "AccountingCode": None,
            "BillingCode": None,
            "Notes": "",
            "CarRegistrationNumber": self.car_registration,
            "DietaryRequirements": None,
            "CreatedUtc": format_utc(self.created),
            "UpdatedUtc": format_utc(self.updated),
            "Passport": None,
            "IdentityCard": None,
            "Visa": None,
            "DriversLicense": None,
            "Address": address,
            "AddressId": self.address_id,
            "Classifications": [],
            "Options": [],
            "ItalianDestinationCode": None,
            "ItalianFiscalCode": None,
            "ItalianLotteryCode": None,
            "CompanyId": None,
            "MergeTargetId": None,
            "ActivityState": "Active",
            "IsActive": True,
            "PreferredSpaceFeatures": [],
            "CreatorProfileId": self.profile_id,
            "UpdaterProfileId": self.profile_id,
        }, self.wire)

    @property
    def address_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mews-address:{self.id}"))


@dataclass
class SimReservation:
    id: str
    enterprise: SimEnterprise
    number: str
    state: str  # a Service order state (wire.STATES)
    start: datetime  # scheduled
    end: datetime  # scheduled
    customer: SimCustomer | None  # None: a company's booking (AccountType Company)
    created: datetime
    updated: datetime
    origin: str = "Connector"
    group_id: str = ""
    resource_id: str | None = None
    adults: int = 1
    children: int = 0
    actual_start: datetime | None = None  # checked in
    actual_end: datetime | None = None  # checked out
    cancelled: datetime | None = None
    cancellation_reason: str | None = None
    wire: dict[str, Any] = field(default_factory=dict)

    @property
    def account_id(self) -> str:
        return self.customer.id if self.customer is not None else self.enterprise.company_id

    @property
    def partner_company_id(self) -> str | None:
        return self.enterprise.company_id if self.customer is None else None

    @property
    def channel_number(self) -> str | None:
        return f"BK{self.number}" if self.origin == "ChannelManager" else None

    @property
    def release(self) -> datetime:
        """When a tentative stay is confirmed or let go (an Optional one's `ReleasedUtc`)."""
        return self.start - RELEASE_BEFORE_ARRIVAL

    def to_wire(self) -> dict[str, Any]:
        e = self.enterprise
        return _apply({
            "Id": self.id,
            "ServiceId": e.service_id,
            "AccountId": self.account_id,
            "AccountType": "Customer" if self.customer is not None else "Company",
            "CreatorProfileId": e.profile_id,
            "UpdaterProfileId": e.profile_id,
            "BookerId": None,
            "Number": self.number,
            "State": self.state,
            "Origin": self.origin,
            "CommanderOrigin": COMMANDER_ORIGINS[int(self.number) % len(COMMANDER_ORIGINS)]
            if self.origin == "Commander" else None,
            "OriginDetails": None,
            "CreatedUtc": format_utc(self.created),
            "UpdatedUtc": format_utc(self.updated),
            "CancelledUtc": _utc(self.cancelled),
            "VoucherId": None,
            "BusinessSegmentId": None,
            "Options": {
                "OwnerCheckedIn": self.actual_start is not None,
                "AllCompanionsCheckedIn": self.actual_start is not None,
                "AnyCompanionCheckedIn": self.actual_start is not None,
                "ConnectorCheckIn": False,
            },
            "RateId": e.rate_id,
            "CreditCardId": None,
            "GroupId": self.group_id,
            "RequestedResourceCategoryId": e.category_id,
            "AssignedResourceId": self.resource_id,
            "AvailabilityBlockId": None,
            "PartnerCompanyId": self.partner_company_id,
            "TravelAgencyId": None,
            "AssignedResourceLocked": False,
            "ChannelNumber": self.channel_number,
            "ChannelManagerNumber": "1" if self.channel_number else None,
            "CancellationReason": self.cancellation_reason,
            "ReleasedUtc": format_utc(self.release) if self.state == "Optional" else None,
            "StartUtc": format_utc(min(self.start, self.actual_start or self.start)),
            "EndUtc": format_utc(self.end),
            "ScheduledStartUtc": format_utc(self.start),
            "ActualStartUtc": _utc(self.actual_start),
            "ScheduledEndUtc": format_utc(self.end),
            "ActualEndUtc": _utc(self.actual_end),
            "Purpose": "Business" if self.customer is None else "Leisure",
            "QrCodeData": json.dumps({"Reservations": [
                {"Id": self.id, "GroupId": self.group_id, "CustomerId": self.account_id}]}, separators=(",", ":")),
            "PersonCounts": [{"AgeCategoryId": e.adults_id, "Count": self.adults}]
            + ([{"AgeCategoryId": e.children_id, "Count": self.children}] if self.children else []),
        }, self.wire)


def _apply(body: dict[str, Any], wire: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in wire.items():
        if value is OMIT:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def state_at(start: datetime, end: datetime, now: datetime) -> str:
    """The state a confirmed stay is in at `now`."""
    return "Confirmed" if now < start else "Started" if now < end else "Processed"


class MewsState:
    """The PMS's data: its hotels, their reservations and the customers behind them."""

    def __init__(self, enterprises: Sequence[SimEnterprise], *, seed: int, now: datetime | None = None) -> None:
        self._rng = random.Random(seed)
        self.enterprises: dict[str, SimEnterprise] = {e.id: e for e in enterprises}
        self.reservations: dict[str, SimReservation] = {}
        self.customers: dict[str, SimCustomer] = {}
        #: the customers by chain, in `customers`' order: a booking picks a returning guest from its
        #: chain without scanning every customer (a generated world seeds thousands)
        self._by_chain: dict[str, dict[str, SimCustomer]] = {}
        self._number = self._rng.randint(40_000, 90_000)
        self._own: set[str] = set()  # what the simulation booked itself; only those move on
        #: False freezes the hotels: no check-ins, check-outs or new bookings (for tests that count)
        self.live = True
        now = whole_seconds(now or datetime.now(UTC))
        for enterprise in enterprises:
            for _ in range(SEED_RESERVATIONS):
                self._seed_one(enterprise, now)
        self._clock = now
        self._next_booking = now + self._interval()

    # --- what control requests and tests do ---------------------------------------------

    def add_reservation(
        self,
        enterprise_id: str,
        *,
        start: datetime,
        end: datetime,
        state: str | None = None,
        first_name: str | None = "Erika",
        last_name: str = "Mustermann",
        car_registration: str | None = None,
        customer_id: str | None = None,
        updated: datetime | None = None,
        wire: Mapping[str, Any] | None = None,
        customer_wire: Mapping[str, Any] | None = None,
    ) -> SimReservation:
        """Book a stay (its state follows from now unless given) for a new or existing customer.

        `wire` / `customer_wire` replace fields of the reservation's / customer's JSON (`OMIT`
        removes one), so tests can put a malformed record among good ones:
        `add_reservation(hotel, start=…, end=…, wire={"ScheduledStartUtc": "27.11.2026 15:00"})`.
        Filtering and ordering keep using the given `start`, `end` and `updated`.
        """
        now = whole_seconds(datetime.now(UTC))
        start, end = whole_seconds(start), whole_seconds(end)
        enterprise = self.enterprises[enterprise_id]
        updated = whole_seconds(updated) if updated is not None else now
        customer = self.customers.get(customer_id or "")
        if customer is None:
            customer = self._customer(enterprise, first_name, last_name, car_registration, enterprise.country,
                                      min(updated, now), customer_id)
            customer.wire = dict(customer_wire or {})
        state = state or state_at(start, end, now)
        reservation = self._reservation(enterprise, customer, start, end, state, min(updated, now), updated)
        reservation.wire = dict(wire or {})
        if state in ("Started", "Processed"):
            reservation.actual_start = min(start, now)
        if state == "Processed":
            reservation.actual_end = min(end, now)
        if state == "Canceled":
            reservation.cancelled, reservation.cancellation_reason = updated, "RequestedByGuest"
        return reservation

    def check_out(self, reservation: SimReservation, now: datetime | None = None) -> None:
        """The guest leaves now (the front desk's check-out)."""
        now = whole_seconds(now or datetime.now(UTC))
        reservation.state, reservation.actual_end, reservation.updated = "Processed", now, now

    def advance(self, now: datetime | None = None) -> None:
        """Confirm or release tentative stays, check stays in and out and take new bookings, from
        the last look up to `now`."""
        now = whole_seconds(now or datetime.now(UTC))
        if not self.live:
            self._clock = self._next_booking = now
            return
        if now - self._clock > MAX_CATCH_UP:
            self._next_booking = max(self._next_booking, now - MAX_CATCH_UP)
        while self.enterprises and self._next_booking <= now:
            self._book(self._rng.choice(list(self.enterprises.values())), self._next_booking)
            self._next_booking += self._interval()
        for reservation in self.reservations.values():
            if reservation.id in self._own:
                self._move_on(reservation, now)
        self._clock = now

    # --- how the data evolves -----------------------------------------------------------

    def _move_on(self, reservation: SimReservation, now: datetime) -> None:
        if reservation.state in TENTATIVE:
            if now < reservation.release:
                return
            if self._rng.random() < 0.6:
                reservation.state, reservation.updated = "Confirmed", reservation.release
            else:
                reservation.state, reservation.updated = "Canceled", reservation.release
                reservation.cancelled, reservation.cancellation_reason = reservation.release, "ConfirmationMissed"
                return
        if reservation.state == "Canceled":
            return
        state = state_at(reservation.start, reservation.end, now)
        if state == reservation.state:
            return
        reservation.state = state
        if reservation.actual_start is None:
            reservation.actual_start = reservation.start
        if state == "Processed":
            reservation.actual_end = reservation.end
        reservation.updated = reservation.actual_end or reservation.actual_start

    def _seed_one(self, enterprise: SimEnterprise, now: datetime) -> None:
        rng = self._rng
        tz = enterprise.tz
        arrival = now.astimezone(tz).date() + timedelta(days=rng.randint(-SEED_DAYS, SEED_DAYS))
        start, end = self._times(enterprise, arrival, rng.choice((1, 1, 2, 2, 3, 4, 5)))
        created = whole_seconds(min(now - timedelta(hours=1), start - timedelta(days=rng.uniform(1, 45))))
        actual_start = actual_end = cancelled = None
        if rng.random() < 0.08:
            state = "Canceled"
            updated = cancelled = whole_seconds(created + (min(now, start) - created) * rng.random())
        else:
            state = state_at(start, end, now)
            if state == "Confirmed" and now < start - RELEASE_BEFORE_ARRIVAL and rng.random() < 0.25:
                state = rng.choice(TENTATIVE)
            if state in ("Started", "Processed"):  # the guest checked in, up to five hours after three
                actual_start = whole_seconds(start + (min(now, start + timedelta(hours=5)) - start) * rng.random())
            if state == "Processed":  # and out, before eleven
                actual_end = whole_seconds(end - timedelta(hours=rng.uniform(0, 3)))
            updated = actual_end or actual_start or whole_seconds(created + (now - created) * rng.random())
        reservation = self._add_own(enterprise, start, end, state, created, updated)
        reservation.actual_start, reservation.actual_end, reservation.cancelled = actual_start, actual_end, cancelled
        if cancelled is not None:
            reservation.cancellation_reason = rng.choice(CANCELLATION_REASONS)

    def _book(self, enterprise: SimEnterprise, at: datetime) -> None:
        arrival = at.astimezone(enterprise.tz).date() + timedelta(days=self._rng.randint(1, 14))
        start, end = self._times(enterprise, arrival, self._rng.randint(1, 4))
        state = "Confirmed" if self._rng.random() < 0.8 or at >= start - RELEASE_BEFORE_ARRIVAL \
            else self._rng.choice(TENTATIVE)
        self._add_own(enterprise, start, end, state, whole_seconds(at), whole_seconds(at))

    def _times(self, enterprise: SimEnterprise, arrival: date, nights: int) -> tuple[datetime, datetime]:
        tz = enterprise.tz
        start = datetime.combine(arrival, CHECK_IN, tzinfo=tz).astimezone(UTC)
        end = datetime.combine(arrival + timedelta(days=nights), CHECK_OUT, tzinfo=tz).astimezone(UTC)
        return start, end

    def _add_own(self, enterprise: SimEnterprise, start: datetime, end: datetime, state: str, created: datetime,
                 updated: datetime) -> SimReservation:
        rng = self._rng
        regulars = self._by_chain.get(enterprise.chain_id, {})
        customer: SimCustomer | None
        if rng.random() < 0.05:  # a company's booking for a member of its staff
            customer = None
        elif regulars and rng.random() < 0.1:  # a returning guest
            customer = rng.choice(list(regulars.values()))
        else:
            home = enterprise.country if rng.random() < 0.75 else rng.choice(("DE", "GB"))
            car = self._plate(home) if rng.random() < 0.6 else None
            customer = self._customer(enterprise, rng.choice(FIRST_NAMES[home]), rng.choice(LAST_NAMES[home]), car,
                                      home, created)
        reservation = self._reservation(enterprise, customer, start, end, state, created, updated)
        self._own.add(reservation.id)
        return reservation

    def _customer(self, enterprise: SimEnterprise, first_name: str | None, last_name: str, car: str | None,
                  nationality: str, created: datetime, customer_id: str | None = None) -> SimCustomer:
        customer = SimCustomer(
            id=customer_id or self._uuid(), chain_id=enterprise.chain_id, number=str(self._rng.randint(10_000, 9_999_999)),
            first_name=first_name, last_name=last_name, car_registration=car, nationality=nationality,
            created=created, updated=created, profile_id=enterprise.profile_id,
        )
        self.customers[customer.id] = customer
        self._by_chain.setdefault(customer.chain_id, {})[customer.id] = customer
        return customer

    def _reservation(self, enterprise: SimEnterprise, customer: SimCustomer | None, start: datetime, end: datetime,
                     state: str, created: datetime, updated: datetime) -> SimReservation:
        rng = self._rng
        self._number += 1
        reservation = SimReservation(
            id=self._uuid(), enterprise=enterprise, number=str(self._number), state=state, start=start, end=end,
            customer=customer, created=created, updated=updated, origin=rng.choice(ORIGINS), group_id=self._uuid(),
            resource_id=self._uuid() if state in ("Confirmed", "Started", "Processed") else None,
            adults=rng.choice((1, 1, 2, 2, 2)), children=rng.choice((0, 0, 0, 1, 2)),
        )
        self.reservations[reservation.id] = reservation
        return reservation

    def _plate(self, country: str) -> str:
        rng = self._rng
        if country == "GB":  # current format: area, age identifier, three random letters
            return f"{rng.choice(UK_AREAS)}{rng.choice(UK_AGES)} {''.join(rng.choice(LETTERS) for _ in range(3))}"
        district = rng.choice(DE_DISTRICTS)
        letters = "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 2)))
        return f"{district}-{letters} {rng.randint(1, 10 ** min(4, 8 - len(district) - len(letters)) - 1)}"

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _interval(self) -> timedelta:
        return timedelta(minutes=self._rng.uniform(*BOOKING_EVERY_MINUTES))


def enterprise_for(spec: GarageSpec, enterprise_id: str, index: int, now: datetime) -> SimEnterprise:
    """The hotel that owns a garage of the world; its related ids derive from its own."""
    name = HOTEL_NAMES.get(spec.key, f"{spec.city} Hotel")
    created = (now - timedelta(days=900 - 60 * index)).replace(hour=9, minute=0, second=0, microsecond=0)

    def related(what: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mews:{enterprise_id}:{what}"))

    return SimEnterprise(
        enterprise_id, name, spec.time_zone, spec.country, spec, created, created + timedelta(days=400),
        service_id=related("service"), rate_id=related("rate"), category_id=related("category"),
        profile_id=related("profile"), adults_id=related("adults"), children_id=related("children"),
        company_id=related("company"),
    )
