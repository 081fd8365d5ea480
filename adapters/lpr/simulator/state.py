"""The simulated LPR platform's data: its zones, and every citation issued in them.

Handhelds issue citations on their rounds: seeded from a random source keyed by the system id
(reproducible runs), a few dozen over the last three days, then a new one every few minutes of
real time, replayed lazily whenever someone asks. Tests and the sandbox's "trigger a violation"
control add their own through `LprState.issue`, whose `wire` argument puts malformed values on
the wire. Clients of the API issue and void through `issue_requested` and `void`, which keep the
platform's rules (a known zone and violation code, one citation per external reference, no
voiding a paid one) and tell `listeners`, so the sandbox can send the platform's webhooks.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from adapters.lpr.wire import format_timestamp, render_issue
from adapters.operation_models import normalize_plate
from adapters.simulated.world import GarageSpec

log = logging.getLogger(__name__)

#: garage key -> the platform's zone code
VENDOR_IDS: dict[str, str] = {"berlin-hbf": "10", "berlin-mitte": "11", "hamburg-elbe": "20"}

#: a `wire` override value that removes the field instead of replacing it
OMIT: Any = object()

SEED_CITATIONS = 36
SEED_WINDOW = timedelta(days=3)
ISSUE_EVERY_MINUTES = (2.0, 6.0)  # a new citation somewhere every few minutes of real time
MAX_CATCH_UP = timedelta(hours=2)  # after a long idle period, jump rather than replay
PATROL_HOURS = range(7, 22)  # handhelds are out from 07:00 to 21:59 local

MAX_STAY_MINUTES = {"commuter": 180, "shopping": 120, "event": 240, "hotel": 60}
CURRENCIES = {"DE": "EUR", "GB": "GBP"}

# (code, text, fine in cents): the German Tatbestandskatalog's usual suspects.
VIOLATIONS: tuple[tuple[str, str, int], ...] = (
    ("V12", "Parking without valid ticket", 3000),
    ("V12", "Parking without valid ticket", 3000),
    ("V14", "Maximum parking time exceeded", 2500),
    ("V14", "Maximum parking time exceeded", 2500),
    ("V21", "Parking in a no-stopping zone", 5500),
    ("V30", "Parking in a disabled bay without permit", 5500),
    ("V33", "Blocking a fire lane", 6500),
)

# Registration districts and their states (ISO 3166-2): mostly local cars, some from elsewhere.
LOCAL_DISTRICTS: dict[str, tuple[tuple[str, str], ...]] = {
    "Berlin": (("B", "DE-BE"), ("B", "DE-BE"), ("B", "DE-BE"), ("P", "DE-BB"), ("LDS", "DE-BB")),
    "Hamburg": (("HH", "DE-HH"), ("HH", "DE-HH"), ("HH", "DE-HH"), ("PI", "DE-SH"), ("WL", "DE-NI")),
}
OTHER_DISTRICTS: tuple[tuple[str, str], ...] = (
    ("M", "DE-BY"), ("K", "DE-NW"), ("F", "DE-HE"), ("HB", "DE-HB"), ("S", "DE-BW"), ("D", "DE-NW"),
)
PLATE_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"

# The platform's status words.
ISSUED, PAID, APPEALED, VOID = "ISSUED", "PAID", "APPEALED", "VOID"
MAX_REFERENCE = 200  # characters of an externalReference
MAX_TEXT = 500  # characters of a note or a void reason

#: what `LprState.listeners` hear: the citation, and "issued" or "voided"
CitationListener = Callable[["SimCitation", str], None]


class LprRefusal(Exception):
    """The platform's business answer to a client's write: an HTTP status and Spring's `message`.

    `existing_number` names the citation a reused externalReference was first issued as.
    """

    def __init__(self, status: int, message: str, existing_number: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.existing_number = existing_number


@dataclass(frozen=True)
class SimZone:
    code: str
    name: str
    max_stay_minutes: int
    time_zone: str
    city: str
    currency: str
    latitude: float
    longitude: float
    prefix: str  # citation-number prefix the zone's handhelds print, e.g. HBF
    created_at: datetime

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def to_wire(self) -> dict[str, Any]:
        return {
            "zoneCode": self.code,
            "name": self.name,
            "maxStayMinutes": self.max_stay_minutes,
            "timeZone": self.time_zone,
            "createdAt": format_timestamp(self.created_at),
        }


@dataclass
class SimCitation:
    number: str
    issued_at: datetime  # the truth, whole minutes: the handheld prints no seconds
    zone: SimZone
    plate: str
    region: str | None
    violation_code: str
    violation_text: str
    fine_cents: int
    latitude: float
    longitude: float
    status: str = ISSUED
    version: int = 1
    last_modified: datetime | None = None
    note: str | None = None
    reference: str | None = None  # the client's externalReference; handhelds send none
    void_reason: str | None = None
    wire: dict[str, Any] = field(default_factory=dict)  # raw overrides, for malformed records

    def to_wire(self) -> dict[str, Any]:
        issue_date, issue_time = render_issue(self.issued_at, self.zone.tz)
        body: dict[str, Any] = {
            "citationNumber": self.number,
            "issueDate": issue_date,
            "issueTime": issue_time,
            "plate": self.plate,
            "plateRegion": self.region,
            "violationCode": self.violation_code,
            "violationText": self.violation_text,
            "fineCents": self.fine_cents,
            "currency": self.zone.currency,
            "zoneCode": self.zone.code,
            "gps": {"lat": self.latitude, "lon": self.longitude},
            "status": self.status,
            "version": self.version,
            "lastModified": format_timestamp(self.last_modified or self.issued_at),
            "note": self.note,
            "externalReference": self.reference,
            "voidReason": self.void_reason,
        }
        for key, value in self.wire.items():
            if value is OMIT:
                body.pop(key, None)
            else:
                body[key] = value
        return body


def zone_for(spec: GarageSpec, code: str, index: int, now: datetime) -> SimZone:
    """The enforcement zone on the streets around a garage of the world."""
    return SimZone(
        code=code,
        name=spec.name,
        max_stay_minutes=MAX_STAY_MINUTES.get(spec.profile, 120),
        time_zone=spec.time_zone,
        city=spec.city,
        currency=CURRENCIES.get(spec.country, "EUR"),
        latitude=spec.latitude,
        longitude=spec.longitude,
        prefix=spec.key.rsplit("-", 1)[-1][:3].upper(),
        created_at=(now - timedelta(days=320 - 9 * index)).replace(hour=8, minute=0, second=0, microsecond=0),
    )


class LprState:
    """The platform's data: its zones and every citation its handhelds have issued."""

    def __init__(self, zones: Sequence[SimZone], *, seed: int, now: datetime | None = None) -> None:
        self._rng = random.Random(seed)
        self.zones: dict[str, SimZone] = {zone.code: zone for zone in zones}
        self.citations: list[SimCitation] = []
        self._sequence = self._rng.randint(3000, 6000)
        self._own: set[str] = set()  # what the simulation issued itself; only those get paid
        self._by_reference: dict[str, SimCitation] = {}  # externalReference -> the citation issued for it
        #: told of every citation a client issues or voids through the API, with "issued" or "voided"
        #: (the sandbox sends the platform's webhook from here); not of handhelds' own citations
        self.listeners: list[CitationListener] = []
        #: False stops the handhelds: no new citations, no payments (for tests that count)
        self.live = True
        now = now or datetime.now(UTC)
        if self.zones:
            # issue in time order, so citation numbers rise with time as a handheld's do
            for zone, at in sorted((self._seed_slot(now) for _ in range(SEED_CITATIONS)), key=lambda s: s[1]):
                self._settle_by_age(self._issue_own(zone.code, at), now)
        self._clock = now
        self._next_at = now + self._interval()

    # --- what control requests and tests do ---------------------------------------------

    def issue(
        self,
        zone_code: str,
        *,
        at: datetime | None = None,
        plate: str | None = None,
        region: str | None = None,
        violation_code: str | None = None,
        status: str = ISSUED,
        wire: Mapping[str, Any] | None = None,
    ) -> SimCitation:
        """Issue a citation in a zone, now or at `at` (truncated to the minute).

        `wire` replaces fields of the JSON the platform sends (`OMIT` removes one), so tests
        can put a malformed record among good ones: `issue("10", wire={"issueTime": "1375P"})`.
        Filtering by `since` keeps using `at`.
        """
        zone = self.zones[zone_code]
        at = (at or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
        code, text, fine = next((v for v in VIOLATIONS if v[0] == violation_code), None) or self._rng.choice(VIOLATIONS)
        if plate is None:
            plate, region = self._plate(zone.city)
        self._sequence += 1
        citation = SimCitation(
            number=f"{zone.prefix}-{at.astimezone(zone.tz).year}-{self._sequence:06d}",
            issued_at=at,
            zone=zone,
            plate=plate,
            region=region,
            violation_code=code,
            violation_text=text,
            fine_cents=fine,
            # somewhere on the streets within a few hundred metres of the garage
            latitude=round(zone.latitude + self._rng.uniform(-0.003, 0.003), 6),
            longitude=round(zone.longitude + self._rng.uniform(-0.004, 0.004), 6),
            status=status,
            wire=dict(wire or {}),
        )
        self.citations.append(citation)
        return citation

    def find(self, number: str) -> SimCitation | None:
        return next((c for c in self.citations if c.number == number), None)

    def issue_requested(
        self,
        zone_code: str,
        plate: str,
        violation_code: str,
        reference: str,
        *,
        region: str | None = None,
        note: str | None = None,
        at: datetime | None = None,
    ) -> SimCitation:
        """A citation a client issues through the API; LprRefusal when the platform says no.

        A reference seen before is refused (409) naming the citation it was issued as, so a
        client that lost the answer can fetch it instead of issuing twice.
        """
        if reference in self._by_reference:
            first = self._by_reference[reference]
            raise LprRefusal(409, f"externalReference already used for citation {first.number}", first.number)
        if zone_code not in self.zones:
            raise LprRefusal(404, f"Zone {zone_code} not found")
        if not any(code == violation_code for code, _, _ in VIOLATIONS):
            known = ", ".join(sorted({code for code, _, _ in VIOLATIONS}))
            raise LprRefusal(400, f"Unknown violationCode {violation_code!r}; known codes: {known}")
        try:
            plate = normalize_plate(plate)
        except ValueError as exc:
            raise LprRefusal(400, f"plate: {exc}") from None
        citation = self.issue(zone_code, at=at, plate=plate, region=region, violation_code=violation_code)
        citation.note, citation.reference = note, reference
        self._by_reference[reference] = citation
        self._tell(citation, "issued")
        return citation

    def void(self, number: str, reason: str, *, at: datetime | None = None) -> SimCitation:
        """Void a citation: a void one is returned as it is, a paid one cannot be (409)."""
        citation = self.find(number)
        if citation is None:
            raise LprRefusal(404, f"Citation {number} not found")
        if citation.status == VOID:
            return citation
        if citation.status == PAID:
            raise LprRefusal(409, f"Citation {number} is {PAID} and cannot be voided")
        citation.status, citation.void_reason = VOID, reason
        citation.version += 1  # re-reads as changed, like any settlement
        citation.last_modified = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self._tell(citation, "voided")
        return citation

    def advance(self, now: datetime | None = None) -> None:
        """Replay the handhelds' rounds from the last look up to `now`."""
        now = now or datetime.now(UTC)
        if not self.live or not self.zones:
            self._clock = self._next_at = now
            return
        if now - self._clock > MAX_CATCH_UP:
            self._next_at = max(self._next_at, now - MAX_CATCH_UP)
        while self._next_at <= now:
            self._issue_own(self._rng.choice(list(self.zones)), self._next_at)
            self._maybe_pay(self._next_at)
            self._next_at += self._interval()
        self._clock = now

    def newest_first(self, since: datetime | None) -> list[SimCitation]:
        chosen = [c for c in self.citations if since is None or c.issued_at >= since]
        return sorted(chosen, key=lambda c: (c.issued_at, c.number), reverse=True)

    def _tell(self, citation: SimCitation, what: str) -> None:
        for listener in list(self.listeners):
            try:
                listener(citation, what)
            except Exception:  # the citation stands; a failed notification must not undo it
                log.exception("an LPR citation listener failed on %s %s", what, citation.number)

    # --- how the data evolves -----------------------------------------------------------

    def _seed_slot(self, now: datetime) -> tuple[SimZone, datetime]:
        zone = self._rng.choice(list(self.zones.values()))
        at = now - SEED_WINDOW * self._rng.random()
        for _ in range(20):  # handhelds patrol by day
            if at.astimezone(zone.tz).hour in PATROL_HOURS:
                break
            at = now - SEED_WINDOW * self._rng.random()
        return zone, at

    def _issue_own(self, zone_code: str, at: datetime) -> SimCitation:
        citation = self.issue(zone_code, at=at)
        self._own.add(citation.number)
        return citation

    def _settle_by_age(self, citation: SimCitation, now: datetime) -> None:
        """Older citations are more likely paid; a few are appealed or voided."""
        roll = self._rng.random()
        if roll < (0.55 if now - citation.issued_at > timedelta(days=1) else 0.2):
            self._settle(citation, PAID, now)
        elif roll < 0.62:
            self._settle(citation, APPEALED, now)
        elif roll < 0.66:
            self._settle(citation, VOID, now)

    def _settle(self, citation: SimCitation, status: str, now: datetime) -> None:
        citation.status = status
        citation.version += 1
        citation.last_modified = min(now, citation.issued_at + timedelta(hours=self._rng.uniform(0.5, 30)))

    def _maybe_pay(self, at: datetime) -> None:
        open_ = [c for c in self.citations if c.status == ISSUED and c.issued_at < at and c.number in self._own]
        if open_ and self._rng.random() < 0.3:
            self._settle(self._rng.choice(open_), PAID, at)

    def _interval(self) -> timedelta:
        return timedelta(minutes=self._rng.uniform(*ISSUE_EVERY_MINUTES))

    def _plate(self, city: str) -> tuple[str, str]:
        rng = self._rng
        districts = LOCAL_DISTRICTS.get(city, ())
        district, region = rng.choice(districts) if districts and rng.random() < 0.8 else rng.choice(OTHER_DISTRICTS)
        letters = "".join(rng.choice(PLATE_LETTERS) for _ in range(rng.randint(1, 2)))
        # German plates hold at most eight characters besides the separators
        digits = str(rng.randint(1, 10 ** min(4, 8 - len(district) - len(letters)) - 1))
        return f"{district}-{letters} {digits}", region


