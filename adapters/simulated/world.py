"""The physical world the sandbox simulators observe: garages, levels, cars coming and going.

Every simulator is a different vendor looking at the same garages, the way a real operator's
PARCS counts cars at the gates while the guidance system senses them per bay. Keeping one
world means the counted and sensed figures agree as they would in life (and drift apart the
way gate counters do), and an injected entry shows up in every system that would see it.

Occupancy follows a daily curve per kind of garage, in the garage's own time zone, with
arrivals and departures drawn from a seeded random source so runs are reproducible.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

STEP = timedelta(seconds=20)  # simulated time advances in steps of this size
MAX_CATCH_UP = timedelta(hours=2)  # after a long idle period, jump rather than replay


@dataclass(frozen=True)
class LevelSpec:
    key: str
    name: str
    capacity: int


@dataclass(frozen=True)
class GarageSpec:
    """A garage as it exists on the ground; vendors give it ids of their own."""

    key: str
    name: str
    city: str
    country: str
    time_zone: str
    street: str
    postal_code: str
    latitude: float
    longitude: float
    profile: str  # commuter | shopping | hotel | event
    levels: tuple[LevelSpec, ...]

    @property
    def capacity(self) -> int:
        return sum(level.capacity for level in self.levels)


# Fraction of capacity in use by local hour, per kind of garage.
CURVES: dict[str, tuple[float, ...]] = {
    "commuter": (0.10, 0.08, 0.07, 0.07, 0.08, 0.15, 0.35, 0.65, 0.88, 0.94, 0.95, 0.93,
                 0.90, 0.91, 0.90, 0.85, 0.70, 0.50, 0.35, 0.25, 0.20, 0.16, 0.13, 0.11),
    "shopping": (0.05, 0.04, 0.03, 0.03, 0.03, 0.04, 0.08, 0.15, 0.30, 0.50, 0.70, 0.85,
                 0.92, 0.90, 0.88, 0.90, 0.93, 0.96, 0.85, 0.60, 0.35, 0.20, 0.10, 0.07),
    "hotel": (0.80, 0.82, 0.82, 0.82, 0.80, 0.75, 0.65, 0.55, 0.45, 0.40, 0.38, 0.40,
              0.45, 0.50, 0.55, 0.60, 0.68, 0.75, 0.82, 0.86, 0.88, 0.87, 0.85, 0.82),
    "event": (0.10, 0.05, 0.03, 0.03, 0.03, 0.05, 0.10, 0.20, 0.35, 0.45, 0.50, 0.55,
              0.55, 0.55, 0.55, 0.60, 0.70, 0.85, 0.97, 0.99, 0.95, 0.80, 0.50, 0.25),
}


def target_fraction(profile: str, local: datetime) -> float:
    """The curve's value at a local time, interpolated between hours."""
    curve = CURVES[profile]
    hour = local.hour + local.minute / 60
    low = curve[int(hour) % 24]
    high = curve[(int(hour) + 1) % 24]
    return low + (high - low) * (hour - int(hour))


GARAGES: tuple[GarageSpec, ...] = (
    GarageSpec("berlin-hbf", "Hauptbahnhof Garage", "Berlin", "DE", "Europe/Berlin", "Europaplatz 1",
               "10557", 52.5251, 13.3694, "commuter",
               (LevelSpec("P1", "Level P1", 300), LevelSpec("P2", "Level P2", 280), LevelSpec("P3", "Level P3", 240))),
    GarageSpec("berlin-mitte", "Alexanderplatz Parkhaus", "Berlin", "DE", "Europe/Berlin", "Alexanderstraße 9",
               "10178", 52.5219, 13.4132, "shopping",
               (LevelSpec("E0", "Ground floor", 260), LevelSpec("E1", "First floor", 280))),
    GarageSpec("berlin-spree-hotel", "Spree Hotel Garage", "Berlin", "DE", "Europe/Berlin", "Reichstagufer 14",
               "10117", 52.5196, 13.3862, "hotel",
               (LevelSpec("U1", "Basement U1", 120),)),
    GarageSpec("hamburg-elbe", "Elbphilharmonie Garage", "Hamburg", "DE", "Europe/Berlin", "Platz der Deutschen Einheit 4",
               "20457", 53.5413, 9.9841, "event",
               (LevelSpec("A", "Deck A", 220), LevelSpec("B", "Deck B", 213))),
    GarageSpec("london-kings-cross", "King's Cross Car Park", "London", "GB", "Europe/London", "Pancras Road 5",
               "N1C 4AG", 51.5310, -0.1233, "commuter",
               (LevelSpec("L0", "Level 0", 180), LevelSpec("L1", "Level 1", 170))),
    GarageSpec("london-southbank", "Southbank Car Park", "London", "GB", "Europe/London", "Belvedere Road 2",
               "SE1 8XX", 51.5055, -0.1160, "hotel",
               (LevelSpec("B1", "Level B1", 260),)),
)


@dataclass
class GarageState:
    """The true state of one garage, plus what its gate counters believe."""

    spec: GarageSpec
    occupied: list[int]  # per level, the truth the sensors see
    entries: int = 0  # gate counters since the counter was installed
    exits: int = 0
    counter_drift: int = 0  # exits the gate loop missed: counted occupancy runs high
    trend: int = 0  # sign of the last change
    plates: dict[str, str] = field(default_factory=dict)  # plate -> level key, for cars we know

    @property
    def total_occupied(self) -> int:
        return sum(self.occupied)

    @property
    def counted_occupied(self) -> int:
        """What a PARCS believes: entries minus exits, including the exits it missed."""
        return self.total_occupied + self.counter_drift


class World:
    """All garages, advanced lazily to the current time whenever someone looks."""

    def __init__(self, *, seed: int = 7, now: datetime | None = None, garages: tuple[GarageSpec, ...] = GARAGES,
                 vendor_ids: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._rng = random.Random(seed)
        #: dialect -> garage key -> the garage's id in that vendor's system. A dialect not named runs the
        #: garages of its own default map (each simulator's `VENDOR_IDS`: the six-garage world);
        #: adapters/simulated/generate.py names every dialect for a generated world.
        self.vendor_ids: dict[str, dict[str, str]] = {d: dict(ids) for d, ids in (vendor_ids or {}).items()}
        self._lock = threading.Lock()
        start = now or datetime.now(UTC)
        self.garages: dict[str, GarageState] = {}
        for spec in garages:
            fraction = target_fraction(spec.profile, start.astimezone(ZoneInfo(spec.time_zone)))
            occupied = [round(level.capacity * fraction) for level in spec.levels]
            base = self._rng.randint(20_000, 90_000)
            # Counters installed long ago have already missed some exits; the busiest one a lot,
            # so that its PARCS reports negative free spaces at peak, as real ones do.
            drift = 55 if spec.profile == "commuter" and spec.capacity > 800 else self._rng.randint(0, 8)
            self.garages[spec.key] = GarageState(
                spec, occupied, entries=base + sum(occupied), exits=base - drift, counter_drift=drift
            )
        self._clock = start
        #: the PARCS back office the simulators over this world share, made on first use by
        #: adapters/simulated/back_office.py's office_of (typed loosely: that module imports this one)
        self.back_office: object | None = None

    def ids_of(self, dialect: str, default: Mapping[str, str]) -> Mapping[str, str]:
        """Garage key -> id in `dialect`'s system, for the garages of this world that system runs
        (`default`: the dialect's own map, used when the world does not assign that dialect)."""
        ids = self.vendor_ids.get(dialect)
        if ids is None:
            return {key: vendor_id for key, vendor_id in default.items() if key in self.garages}
        return ids

    def advance(self, now: datetime | None = None) -> None:
        """Replay arrivals and departures from the last look up to `now`."""
        now = now or datetime.now(UTC)
        with self._lock:
            if now - self._clock > MAX_CATCH_UP:
                self._clock = now - MAX_CATCH_UP
            while self._clock + STEP <= now:
                self._clock += STEP
                for state in self.garages.values():
                    self._step(state, self._clock)

    def _step(self, state: GarageState, at: datetime) -> None:
        spec = state.spec
        target = target_fraction(spec.profile, at.astimezone(ZoneInfo(spec.time_zone))) * spec.capacity
        gap = target - state.total_occupied
        # Traffic in both directions all day; the gap to the curve tilts the balance.
        base_flow = spec.capacity * 0.004
        arrivals = self._poisson(base_flow + max(gap, 0) * 0.05)
        departures = self._poisson(base_flow + max(-gap, 0) * 0.05)
        before = state.total_occupied
        for _ in range(arrivals):
            self._park(state)
        for _ in range(departures):
            self._leave(state)
        after = state.total_occupied
        state.trend = (after > before) - (after < before)

    def _park(self, state: GarageState, plate: str | None = None, level_key: str | None = None) -> bool:
        spec = state.spec
        if level_key is not None:
            index = next(i for i, level in enumerate(spec.levels) if level.key == level_key)
        else:
            free = [i for i, level in enumerate(spec.levels) if state.occupied[i] < level.capacity]
            if not free:
                return False
            index = self._rng.choice(free)
        state.occupied[index] += 1
        state.entries += 1
        if plate:
            state.plates[plate] = spec.levels[index].key
        return True

    def _leave(self, state: GarageState, plate: str | None = None) -> bool:
        if plate and plate in state.plates:
            key = state.plates.pop(plate)
            index = next(i for i, level in enumerate(state.spec.levels) if level.key == key)
        else:
            taken = [i for i, n in enumerate(state.occupied) if n > 0]
            if not taken:
                return False
            index = self._rng.choice(taken)
        state.occupied[index] -= 1
        # One exit in a few hundred slips past the loop detector: counters drift, as real ones do.
        if self._rng.random() < 0.004:
            state.counter_drift += 1
        else:
            state.exits += 1
        return True

    def _poisson(self, mean: float) -> int:
        # Knuth's method; means here are small.
        if mean <= 0:
            return 0
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= limit:
                return k
            k += 1

    # --- what control requests do -------------------------------------------------------

    def enter(self, garage_key: str, plate: str, level_key: str | None = None) -> bool:
        """A car with a known plate enters (sandbox event injection). False when the garage is full."""
        with self._lock:
            return self._park(self.garages[garage_key], plate, level_key)

    def exit(self, garage_key: str, plate: str | None = None) -> bool:
        with self._lock:
            return self._leave(self.garages[garage_key], plate)

    def snapshot(self, garage_key: str) -> GarageState:
        """The garage's state as of now (advancing the world first)."""
        self.advance()
        return self.garages[garage_key]
