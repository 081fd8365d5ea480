"""What the APDS simulator publishes about its garages: the place hierarchy (a campus per city,
its places, their levels) with live occupancy, the right specifications each place offers, and
their rate tables. Rendered afresh on every request from the world and the back office.

The quirks kept from the old simulator, where APDS allows them: the gate counter drifts (a
place's counted demand includes exits the loop missed, so it can exceed the supply), and the
Hamburg controller has no clock (its demand table has no `timestamp`).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from adapters.apds.simulator.state import OPERATOR, ApdsState, campus_id, spec_id
from adapters.apds.wire import (
    CAMPUS,
    LEVEL,
    PLACE,
    RightKind,
    SpecInfo,
    format_time,
    minutes,
    number,
    text_body,
    versioned,
)
from adapters.operation_models import ReservationStatus
from adapters.simulated.back_office import MONTHLY_PERMIT, BackOffice
from adapters.simulated.world import GarageSpec

DAY = timedelta(hours=24)
CREATED = datetime(2025, 6, 1, tzinfo=UTC)

# APDS entities are versioned; each place has been edited a different number of times.
VERSIONS: dict[str, int] = {"berlin-hbf": 3, "berlin-mitte": 1, "berlin-spree-hotel": 2, "hamburg-elbe": 5}
# Hamburg's counter controller has no clock: its demand table carries no timestamp.
NO_CLOCK = frozenset({"hamburg-elbe"})


@dataclass(frozen=True)
class Tariff:
    """One garage's tariff: a free first tier, then per started period, capped per started 24 h."""

    free_minutes: int
    period_minutes: int
    period_amount: Decimal
    daily_max: Decimal | None
    day_ticket: Decimal  # sold at the pay station; informative, quotes do not use it
    valid_from: datetime
    currency: str = "EUR"

    def lines(self) -> list[dict[str, Any]]:
        incrementing: dict[str, Any] = {
            "sequence": 2, "rateLineType": "incrementingRate", "incrementPeriod": minutes(self.period_minutes),
            "value": number(self.period_amount), "description": f"Per started {self.period_minutes} minutes",
        }
        if self.daily_max is not None:
            incrementing["maxValue"] = number(self.daily_max)
        return [
            {"sequence": 1, "rateLineType": "flatRateTier", "durationStart": "PT0M",
             "durationEnd": minutes(self.free_minutes), "value": 0, "description": f"First {self.free_minutes} minutes free"},
            incrementing,
            {"sequence": 3, "rateLineType": "flatRate", "value": number(self.day_ticket), "description": "Day ticket"},
        ]

    def price(self, stay: timedelta) -> Decimal:
        """Stays within the free tier cost nothing; after it, each started period costs
        `period_amount`, attributed to the 24 h block (from arrival) it starts in, and each
        block costs at most `daily_max`."""
        period = timedelta(minutes=self.period_minutes)
        per_block: Counter[int] = Counter()
        start = timedelta(minutes=self.free_minutes)
        while start < stay:  # bounded: stays are at most 30 days
            per_block[start // DAY] += 1
            start += period
        total = Decimal("0.00")
        for periods in per_block.values():
            charge = periods * self.period_amount
            total += charge if self.daily_max is None else min(charge, self.daily_max)
        return total


_2026 = datetime(2026, 1, 1, tzinfo=UTC)
TARIFFS: dict[str, Tariff] = {
    "berlin-hbf": Tariff(15, 60, Decimal("3.00"), Decimal("30.00"), Decimal("25.00"), _2026),
    "berlin-mitte": Tariff(30, 30, Decimal("1.50"), Decimal("20.00"), Decimal("16.00"), _2026),
    "berlin-spree-hotel": Tariff(10, 60, Decimal("4.00"), Decimal("35.00"), Decimal("32.00"), _2026),
    "hamburg-elbe": Tariff(30, 60, Decimal("2.50"), Decimal("24.00"), Decimal("18.00"), datetime(2026, 3, 1, tzinfo=UTC)),
}



def tariff_of(key: str) -> Tariff:
    """The garage's tariff: the hand-written one of the six-garage world, else one derived from its key
    (a generated world, adapters/simulated/generate.py), the same on every run."""
    known = TARIFFS.get(key)
    if known is not None:
        return known
    draw = zlib.crc32(key.encode())
    period = (15, 30, 60)[draw % 3]
    amount = Decimal(100 + (draw >> 4) % 300) / 100  # 1.00 to 3.99 per period
    return Tariff((5, 10, 15, 30)[(draw >> 12) % 4], period, amount, (amount * 8).quantize(Decimal("1.00")),
                  (amount * 6).quantize(Decimal("1.00")), _2026)


SPEC_TYPES = {RightKind.TRANSIENT: "oneTimeUseParking", RightKind.RESERVATION: "oneTimeUseParking",
              RightKind.PERMIT: "permitParking", RightKind.VALIDATION: "accessPermission"}
SPEC_NAMES = {RightKind.TRANSIENT: "Short stay (ticket at the barrier)", RightKind.RESERVATION: "Reserved parking",
              RightKind.PERMIT: "Monthly permit", RightKind.VALIDATION: "Validated guest parking"}


def record() -> dict[str, Any]:
    return {"creationTime": format_time(CREATED)}


def tariff_id(place_id: str) -> str:
    return f"{place_id}-tariff"


def permit_tariff_id(place_id: str) -> str:
    return f"{place_id}-permit-tariff"


def spec(state: ApdsState, place_id: str, kind: RightKind) -> SpecInfo:
    tables = (permit_tariff_id(place_id),) if kind is RightKind.PERMIT else (tariff_id(place_id),)
    return SpecInfo(spec_id(place_id, kind), 1, kind, place_id, tables)


def spec_by_id(state: ApdsState, value: str) -> tuple[str, SpecInfo] | None:
    """(garage key, spec) for one of this platform's right specification ids."""
    place_id = value.rpartition("-")[0]
    key = state.garage_of(place_id)
    kind = next((kind for kind in RightKind if spec_id(place_id, kind) == value), None)
    if key is None or kind is None:
        return None
    return key, spec(state, place_id, kind)


# --- the place hierarchy ---------------------------------------------------------------------------


def elements(state: ApdsState, office: BackOffice, occupancy: bool, now: datetime) -> list[dict[str, Any]]:
    """Campuses (layer 0), places (1), levels (2), in that order."""
    places = state.places()
    cities: dict[str, list[str]] = {}
    for key, place_id in places:
        cities.setdefault(state.world.garages[key].spec.city, []).append(place_id)
    out: list[dict[str, Any]] = [
        {"id": campus_id(city), "version": 1, "name": text_body(city), "layer": 0, "type": CAMPUS,
         "hierarchyElementRecord": record(), "childIds": [versioned(p, _version(state, p)) for p in ids]}
        for city, ids in cities.items()
    ]
    out += [state.overridden("places", place(state, office, key, place_id, occupancy, now)) for key, place_id in places]
    for key, place_id in places:
        for level in state.world.garages[key].spec.levels:
            out.append(state.overridden("places", {
                "id": level.key, "version": 1, "name": text_body(level.name), "layer": 2, "type": LEVEL,
                "hierarchyElementRecord": record(), "parentId": versioned(place_id, VERSIONS.get(key, 1)),
                "hierarchyElementReference": {"elementId": versioned(level.key),
                                              "supply": [{"supplyViewType": "spaceView",
                                                          "supplyQuantity": level.capacity}]},
            }))
    return out


def _version(state: ApdsState, place_id: str) -> int:
    return VERSIONS.get(state.garage_of(place_id) or "", 1)


def place(state: ApdsState, office: BackOffice, key: str, place_id: str, occupancy: bool,
          now: datetime) -> dict[str, Any]:
    garage: GarageSpec = state.world.garages[key].spec
    version = VERSIONS.get(key, 1)
    reference: dict[str, Any] = {
        "elementId": versioned(place_id, version),
        "supply": [{"supplyViewType": "spaceView", "supplyQuantity": garage.capacity}],
    }
    body: dict[str, Any] = {
        "id": place_id,
        "version": version,
        "name": text_body(garage.name),
        "layer": 1,
        "type": PLACE,
        "timeZone": garage.time_zone,
        "parentId": versioned(campus_id(garage.city)),
        "childIds": [versioned(level.key) for level in garage.levels],
        "hierarchyElementRecord": record(),
        "placeStreetAddress": [{
            "addressLines": [{"order": 0, "type": "street", "text": text_body(garage.street)}],
            "city": text_body(garage.city), "countryCode": garage.country.lower(), "postCode": garage.postal_code,
        }],
        "indicativePlacePointLocation": [{"type": "Point", "coordinates": [garage.longitude, garage.latitude]}],
        "rightSpecifications": [versioned(spec_id(place_id, kind)) for kind in RightKind],
        "hierarchyElementReference": reference,
    }
    if occupancy:
        world = state.world.snapshot(key)  # advances the world: live figures on every request
        demand: dict[str, Any] = {"count": world.counted_occupied, "occupancyCalculation": "counted",
                                  "recordDateTime": format_time(now)}
        demand.update(state.demand_overrides.get(place_id, {}))
        table: dict[str, Any] = {"demandType": [demand]}
        if key not in NO_CLOCK:
            table = {"timestamp": format_time(now), **table}
        reference["demandTable"] = [table]
        free = garage.capacity - world.counted_occupied
        level = "closed" if key in state.closed else "full" if free <= 0 else "open"
        body["occupancyLevel"] = {"occupancyIndicator": {"entryDefinedValue": level}}
    return body


# --- right specifications and rate tables ------------------------------------------------------------


def specifications(state: ApdsState, office: BackOffice, now: datetime) -> list[dict[str, Any]]:
    out = []
    for key, place_id in state.places():
        for kind in RightKind:
            out.append(specification(state, office, key, place_id, kind, now))
    return out


def specification(state: ApdsState, office: BackOffice, key: str, place_id: str, kind: RightKind,
                  now: datetime) -> dict[str, Any]:
    info = spec(state, place_id, kind)
    body: dict[str, Any] = {
        "id": info.id,
        "version": info.version,
        "description": text_body(SPEC_NAMES[kind]),
        "issuer": versioned(OPERATOR),
        "transferable": False,
        "type": SPEC_TYPES[kind],
        "hierarchyElements": [versioned(place_id, VERSIONS.get(key, 1))],
        "credentials": [{"type": "licensePlate"}] + ([{"type": "ticket"}] if kind is RightKind.TRANSIENT else []),
        "rateEligibility": [{"id": f"{info.id}-eligibility", "version": 1,
                             "eligibility": {"id": f"{info.id}-anyone", "version": 1},
                             "rateTable": versioned(info.rate_tables[0])}],
    }
    if kind is RightKind.RESERVATION:
        terms = office.terms[key]
        booked = sum(1 for r in office.reservations.values()
                     if r.garage == key and r.effective_status(now) in (ReservationStatus.BOOKED, ReservationStatus.ARRIVED))
        body["rightPools"] = [{"id": f"{info.id}-pool", "version": 1, "assignedRightsIssuer": versioned(OPERATOR),
                               "availableAssignedRights": max(terms.reservable - booked, 0),
                               "distributedAssignedRights": booked}]
    return body


def rate_tables(state: ApdsState, places: Collection[str] = ()) -> list[dict[str, Any]]:
    """The rate tables of every place this platform runs (`places`: of these only, the list's place filter)."""
    out = []
    for key, place_id in state.places():
        if places and place_id not in places:
            continue
        tariff = tariff_of(key)
        out.append(_table(tariff_id(place_id), f"{state.world.garages[key].spec.name} tariff", tariff.valid_from,
                          "hourly", "public", tariff.currency, tariff.lines()))
        out.append(_table(permit_tariff_id(place_id), "Monthly permit", tariff.valid_from, "contract", "private",
                          tariff.currency, [{"sequence": 1, "rateLineType": "flatRate",
                                             "value": number(MONTHLY_PERMIT), "description": "Per month"}]))
    return out


def _table(table_id: str, name: str, valid_from: datetime, rate_type: str, availability: str, currency: str,
           lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": table_id, "version": 1, "rateTableName": text_body(name), "validityStart": format_time(valid_from),
        "activeTimes": ["P1D"], "availability": availability, "rateType": rate_type,
        "rateLineCollections": [{
            "applicableCurrency": currency, "collectionSequence": 1, "minTime": "PT0M", "maxTime": "P30D",
            "relativeTimes": False, "resetTime": "00:00", "taxIncluded": True, "taxRate": 19,
            "validStart": format_time(valid_from), "rateLines": lines,
        }],
    }
