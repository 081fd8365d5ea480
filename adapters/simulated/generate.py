"""A sandbox world of any size: garages in several cities and time zones, and which vendor runs each.

`generate_world(6)` is the sandbox's own world, exactly (adapters/simulated/world.py `GARAGES`, with
every dialect's default ids): every test and README example is written against it. Any other
size is drawn from a seeded random source, so one seed always gives the same world, and assigned
the way an operator's estate grows:

    PARCS        every garage has one: ParkLine in Great Britain, APDS everywhere else
    sensor-grid  guidance sensors in about two garages in five
    datex2       the city's open-data platform publishes about half of the garages without sensors
    lpr          an enforcement zone around about one garage in eight
    mews         a hotel's PMS at most hotel garages in Germany and Great Britain (its chains)

Each dialect gets ids in its own style (APDS and Mews UUIDs, ParkLine car park codes, numeric
sensor sites and zones, DATEX II site ids), and every simulator serves its share with its own
paging. Tariffs of garages the simulators have no hand-written tariff for derive from the
garage key (adapters/apds/simulator/catalog.py, adapters/parkline/simulator/backend.py).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime

from adapters.simulated.world import GARAGES, GarageSpec, LevelSpec, World

DEFAULT_FACILITIES = len(GARAGES)
DEFAULT_SEED = 7
MAX_FACILITIES = 20_000


@dataclass(frozen=True)
class City:
    name: str
    country: str
    time_zone: str
    latitude: float
    longitude: float
    code: str  # short code for DATEX II site ids and ParkLine car park codes


CITIES: tuple[City, ...] = (
    City("Berlin", "DE", "Europe/Berlin", 52.5200, 13.4050, "B"),
    City("Hamburg", "DE", "Europe/Berlin", 53.5511, 9.9937, "HH"),
    City("Munich", "DE", "Europe/Berlin", 48.1351, 11.5820, "M"),
    City("Cologne", "DE", "Europe/Berlin", 50.9375, 6.9603, "K"),
    City("Frankfurt", "DE", "Europe/Berlin", 50.1109, 8.6821, "F"),
    City("Leipzig", "DE", "Europe/Berlin", 51.3397, 12.3731, "L"),
    City("London", "GB", "Europe/London", 51.5074, -0.1278, "LDN"),
    City("Manchester", "GB", "Europe/London", 53.4808, -2.2426, "MAN"),
    City("Edinburgh", "GB", "Europe/London", 55.9533, -3.1883, "EDI"),
    City("Vienna", "AT", "Europe/Vienna", 48.2082, 16.3738, "W"),
    City("Amsterdam", "NL", "Europe/Amsterdam", 52.3676, 4.9041, "AMS"),
    City("Lisbon", "PT", "Europe/Lisbon", 38.7223, -9.1393, "LIS"),
)
STREETS = ("Hauptstraße", "Market Street", "Ringweg", "Station Road", "Parkallee", "Canal Street", "Lindenweg",
           "High Street", "Bahnhofplatz", "Harbour Road")
KINDS = ("Garage", "Car Park", "Parkhaus", "Deck")
PROFILES = ("commuter", "shopping", "hotel", "event")
LEVEL_NAMES = ("P", "U", "E", "L")
HOTEL_COUNTRIES = frozenset({"DE", "GB"})  # the Mews simulator's two chains


def generate_world(facilities: int = DEFAULT_FACILITIES, seed: int = DEFAULT_SEED, now: datetime | None = None) -> World:
    """A world of `facilities` garages; the same `seed` gives the same garages, ids and tariffs."""
    if not 1 <= facilities <= MAX_FACILITIES:
        raise ValueError(f"a sandbox has 1 to {MAX_FACILITIES} facilities, not {facilities}")
    if facilities == DEFAULT_FACILITIES:
        return World(seed=seed, now=now)
    rng = random.Random(f"parkgate-world:{seed}:{facilities}")
    garages = tuple(_garage(rng, index) for index in range(facilities))
    return World(seed=seed, now=now, garages=garages, vendor_ids=assign(garages, rng))


def _garage(rng: random.Random, index: int) -> GarageSpec:
    city = CITIES[index % len(CITIES)] if index < len(CITIES) else rng.choice(CITIES)
    profile = rng.choice(PROFILES)
    prefix = rng.choice(LEVEL_NAMES)
    # level keys unique across the world: APDS names a level by its key alone (as the six garages' are)
    levels = tuple(LevelSpec(f"{prefix}{n}-{index + 1}", f"Level {prefix}{n}", rng.randint(60, 320))
                   for n in range(1, rng.randint(1, 4) + 1))
    street = rng.choice(STREETS)
    return GarageSpec(
        key=f"{city.name.lower()}-{index + 1:05d}",
        name=f"{street} {rng.choice(KINDS)} {index + 1}",
        city=city.name,
        country=city.country,
        time_zone=city.time_zone,
        street=f"{street} {rng.randint(1, 199)}",
        postal_code=f"{rng.randint(10_000, 99_999)}",
        latitude=round(city.latitude + rng.uniform(-0.08, 0.08), 5),
        longitude=round(city.longitude + rng.uniform(-0.12, 0.12), 5),
        profile=profile,
        levels=levels,
    )


def assign(garages: tuple[GarageSpec, ...], rng: random.Random) -> dict[str, dict[str, str]]:
    """dialect -> garage key -> the garage's id there, each dialect in its own id style."""
    ids: dict[str, dict[str, str]] = {name: {} for name in ("apds", "parkline", "sensor-grid", "datex2", "lpr", "mews")}
    for number, spec in enumerate(garages, start=1):
        code = next(c.code for c in CITIES if c.name == spec.city)
        if spec.country == "GB":
            ids["parkline"][spec.key] = f"{code[:2]}{number:04d}"
        else:
            ids["apds"][spec.key] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"apds-sandbox/place/{spec.key}"))
        if rng.random() < 0.4:
            ids["sensor-grid"][spec.key] = str(100 + number)
        elif rng.random() < 0.5:
            ids["datex2"][spec.key] = f"P-{code}-{number:04d}"
        if rng.random() < 0.125:
            ids["lpr"][spec.key] = str(1000 + number)
        if spec.profile == "hotel" and spec.country in HOTEL_COUNTRIES and rng.random() < 0.8:
            ids["mews"][spec.key] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mews-sandbox/enterprise/{spec.key}"))
    return ids
