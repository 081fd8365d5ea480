"""The small contract every vendor adapter fulfils, one abstract base per kind of system.

An adapter is built from a `SystemSpec` (what the configuration says about one system),
talks to its vendor through `VendorHTTP`, and returns domain types from `adapters.models`.
List methods return a `Batch`: one bad record never sinks the rest.

What each kind of system can answer, reads and writes, is its abstract base; every dialect's
adapter derives from the one of its kind (adapters/registry.py), and the gateway holds and calls
adapters by these types (gateway/systems.py), never by method names in strings:

    ParcsAdapter        facilities, counted occupancy, rates, quotes; reservations, sessions,
                        payments, permits, validations (read and write); transactions
    GuidanceAdapter     sensed occupancy
    EnforcementAdapter  zones; citations (read, issue, void)
    HospitalityAdapter  hotel properties; guest stays

`OccupancySource` is what a PARCS and a guidance system have in common: both tell how many
cars are in, one by counting them, the other by sensing them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from adapters.errors import WebhookRejected
from adapters.http import VendorHTTP
from adapters.models import (
    Batch,
    Citation,
    CitationRequest,
    EnforcementZone,
    FacilityRecord,
    GuestStay,
    HotelProperty,
    OccupancyReading,
    Quote,
    QuoteRequest,
    RateTable,
    SystemKind,
    VendorEvent,
)
from adapters.operation_models import (
    ParkingSession,
    Payment,
    PaymentRequest,
    Permit,
    PermitChange,
    PermitRequest,
    Reservation,
    ReservationChange,
    ReservationRequest,
    Transaction,
    Validation,
    ValidationRequest,
)


@dataclass(frozen=True)
class SystemSpec:
    """One configured vendor system: where it is and the credentials it takes (already resolved)."""

    id: str
    kind: SystemKind
    dialect: str
    base_url: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    #: dialect-specific knobs (page sizes and the like); each adapter documents its own
    options: Mapping[str, Any] = field(default_factory=dict)
    #: what the vendor's contract allows, and how hard we try (see adapters/http.py)
    retries: int = 2  # extra attempts for idempotent reads
    max_concurrency: int = 16  # calls in flight at once
    rate_limit_per_s: float | None = None  # calls per second, None for no limit
    breaker_failures: int = 5  # consecutive failures that open the circuit
    breaker_reset_s: float = 10.0  # how long it stays open before a probe

    def credential(self, name: str) -> str:
        try:
            return self.credentials[name]
        except KeyError:
            raise KeyError(f"system {self.id!r} ({self.dialect}) needs credential {name!r}") from None


class Adapter(ABC):
    kind: ClassVar[SystemKind]
    dialect: ClassVar[str]
    #: the credential names this dialect needs; the config loader checks them at start
    required_credentials: ClassVar[tuple[str, ...]] = ()
    #: the optional credential that verifies this dialect's inbound webhooks; None: it sends none (poll it)
    webhook_credential: ClassVar[str | None] = None
    #: its webhooks carry ids only: `expand_webhook` fetches what happened
    webhook_ids_only: ClassVar[bool] = False
    #: its vendor delivers webhooks to whoever subscribed (`subscribe_webhooks`), to the URL in the
    #: system's `webhook_url` option
    subscribes_webhooks: ClassVar[bool] = False

    def __init__(self, spec: SystemSpec, http: VendorHTTP | None = None) -> None:
        self.spec = spec
        self.http = http or VendorHTTP(
            spec.id,
            spec.base_url,
            timeout_s=spec.timeout_s,
            connect_timeout_s=spec.connect_timeout_s,
            retries=spec.retries,
            max_concurrency=spec.max_concurrency,
            rate_limit_per_s=spec.rate_limit_per_s,
            breaker_failures=spec.breaker_failures,
            breaker_reset_s=spec.breaker_reset_s,
        )

    @property
    def system_id(self) -> str:
        return self.spec.id

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, query_params: Mapping[str, str],
                       now: datetime) -> list[VendorEvent]:
        """The events of one inbound webhook, verified by this dialect's scheme.

        Raises `WebhookRejected` (not authentic, replayed, or no secret configured: 401) or
        `WebhookMalformed` (authentic but unreadable: 400).
        """
        raise WebhookRejected(f"{self.dialect} sends no webhooks")

    async def subscribe_webhooks(self, known_id: str | None) -> str | None:
        """Ask the vendor to deliver the webhooks the gateway needs, for dialects whose vendors are
        subscribed to rather than configured (APDS). Idempotent: `known_id` is the subscription made
        before, kept if it still says the same; the answer is the subscription's id, None when the
        dialect or this system's configuration subscribes to nothing (the default)."""
        return None

    async def expand_webhook(self, events: Sequence[VendorEvent]) -> list[VendorEvent]:
        """Fetch what an ids-only webhook leaves out; dialects that send everything return the events."""
        return list(events)

    async def aclose(self) -> None:
        await self.http.aclose()


class OccupancySource(Adapter):
    """A system that knows how many cars are in: a PARCS counts them, a guidance system senses them."""

    @abstractmethod
    async def occupancy(self) -> Batch[OccupancyReading]: ...

    #: whether the system can be asked for some facilities' occupancy only (`occupancy_at`): an
    #: event at one garage then renews that garage's reading, not the operator's whole list
    occupancy_by_facility = False

    async def occupancy_at(self, vendor_ids: Sequence[str]) -> Batch[OccupancyReading]:
        """The occupancy of these facilities only, for dialects that can be asked so (`occupancy_by_facility`)."""
        raise NotImplementedError(f"{self.dialect} cannot be asked for some facilities' occupancy")


class ParcsAdapter(OccupancySource):
    """What a PARCS (gates, tickets, payments) answers, and the writes it takes."""

    kind = SystemKind.PARCS

    @abstractmethod
    async def facilities(self) -> Batch[FacilityRecord]: ...

    @abstractmethod
    async def occupancy(self) -> Batch[OccupancyReading]:
        """Counted occupancy of every facility the system runs, in as few calls as it allows."""

    @abstractmethod
    async def rates(self) -> Batch[RateTable]: ...

    #: whether the system can be asked for some facilities' tariffs only (`rates_at`): a page of
    #: facilities then costs the vendor that page, not the operator's whole list
    rates_by_facility = False

    async def rates_at(self, vendor_ids: Sequence[str]) -> Batch[RateTable]:
        """The tariffs of these facilities only, for dialects whose list filters by facility (`rates_by_facility`)."""
        raise NotImplementedError(f"{self.dialect} cannot be asked for some facilities' tariffs")

    @abstractmethod
    async def quotes(self, requests: Sequence[QuoteRequest]) -> list[Quote]:
        """One quote per request, in order (a facility the system cannot price gets a reason)."""

    # --- operations (their types: adapters/operation_models.py) -------------------------------
    # Writes raise `VendorRefused` with a `RefusalReason` when the vendor says no; a create whose
    # `reference` the vendor has seen before returns the record made the first time (the
    # adapter looks it up), so a retried write never acts twice. Plates are passed normalized.

    @abstractmethod
    async def reservations(self, plate: str | None = None) -> Batch[Reservation]:
        """Reservations of every facility the system runs (ending in the last 7 days or later),
        only those for `plate` when given."""

    @abstractmethod
    async def reservation(self, vendor_id: str) -> Reservation:
        """One reservation; VendorRefused(NOT_FOUND) when there is none."""

    @abstractmethod
    async def create_reservation(self, request: ReservationRequest) -> Reservation: ...

    @abstractmethod
    async def modify_reservation(self, vendor_id: str, change: ReservationChange) -> Reservation: ...

    @abstractmethod
    async def cancel_reservation(self, vendor_id: str) -> Reservation:
        """Cancel a BOOKED reservation; cancelling a cancelled one returns it unchanged."""

    @abstractmethod
    async def sessions(self, plate: str) -> Batch[ParkingSession]:
        """The plate's sessions: open ones, and those closed in the last 24 hours."""

    @abstractmethod
    async def session(self, vendor_id: str) -> ParkingSession:
        """One session; VendorRefused(NOT_FOUND) when there is none."""

    @abstractmethod
    async def pay(self, request: PaymentRequest) -> Payment:
        """Charge a processor token for what a session or reservation owes."""

    @abstractmethod
    async def permits(self, plate: str | None = None) -> Batch[Permit]:
        """Permits of every facility the system runs (not expired more than 30 days ago)."""

    @abstractmethod
    async def permit(self, vendor_id: str) -> Permit:
        """One permit; VendorRefused(NOT_FOUND) when there is none."""

    @abstractmethod
    async def create_permit(self, request: PermitRequest) -> Permit: ...

    @abstractmethod
    async def update_permit(self, vendor_id: str, change: PermitChange) -> Permit: ...

    @abstractmethod
    async def revoke_permit(self, vendor_id: str) -> Permit:
        """Revoke at once; revoking a revoked permit returns it unchanged."""

    @abstractmethod
    async def validations(self, plate: str | None = None) -> Batch[Validation]:
        """Parking validations (not expired more than 7 days ago)."""

    @abstractmethod
    async def create_validation(self, request: ValidationRequest) -> Validation: ...

    @abstractmethod
    async def transactions(self, since: datetime, until: datetime,
                           vendor_ids: Sequence[str] | None = None) -> Batch[Transaction]:
        """Money movements in [since, until), every page: at these facilities (`vendor_ids`) where the
        dialect can be asked for some facilities only, else at every facility the system runs (the
        caller keeps each facility's own: gateway/finance/ledger.py)."""


class GuidanceAdapter(OccupancySource):
    """What a guidance system (sensors, signs) answers."""

    kind = SystemKind.GUIDANCE

    @abstractmethod
    async def occupancy(self) -> Batch[OccupancyReading]:
        """Sensed occupancy per site (zone_id None) and per level."""


class EnforcementAdapter(Adapter):
    """What an enforcement platform (LPR cameras, handhelds, citations) answers, and the writes it takes."""

    kind = SystemKind.ENFORCEMENT

    @abstractmethod
    async def zones(self) -> Batch[EnforcementZone]: ...

    @abstractmethod
    async def citations(self, since: datetime) -> Batch[Citation]:
        """Citations issued at or after `since`, every page."""

    @abstractmethod
    async def citation(self, number: str) -> Citation:
        """One citation by number; VendorRefused(NOT_FOUND) when there is none."""

    @abstractmethod
    async def issue_citation(self, request: CitationRequest) -> Citation:
        """Issue a citation; a `reference` seen before returns the citation issued the first time."""

    @abstractmethod
    async def void_citation(self, number: str, reason: str) -> Citation:
        """Void a citation; VendorRefused(NOT_FOUND) for an unknown number, voiding a void one returns it."""


class HospitalityAdapter(Adapter):
    """What a hotel property-management system answers."""

    kind = SystemKind.HOSPITALITY

    @abstractmethod
    async def properties(self) -> Batch[HotelProperty]: ...

    @abstractmethod
    async def stays(self, since: datetime, until: datetime) -> Batch[GuestStay]:
        """Guest stays overlapping [since, until), every page."""
