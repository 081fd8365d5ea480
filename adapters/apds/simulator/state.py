"""What one APDS simulator knows besides the world: which garages it runs, its token, and the
knobs tests and the sandbox turn (`sim.state`), read by both its endpoint modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.simulated.world import World

#: garage key -> the place id this vendor gave it
VENDOR_IDS: dict[str, str] = {
    "berlin-hbf": "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e01",
    "berlin-mitte": "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e02",
    "berlin-spree-hotel": "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e03",
    "hamburg-elbe": "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e04",
}

REMOVE: Any = object()  # in raw_overrides: drop this key from the record


@dataclass
class ApdsState:
    """The knobs of one APDS simulator, reachable as `sim.state`.

    - `closed`: garage keys whose barriers are down: occupancy status "closed", quotes CLOSED,
      bookings refused CLOSED (it is the back office's `closed` set, shared).
    - `raw_overrides[(resource, place_id)]`: fields merged over that place's record in the list
      `resource` ("places" | "occupancy" | "rates") on every request; a value of `REMOVE`
      drops the key. This is how a test makes exactly one record malformed. For the operations
      lists ("reservations", "sessions", "permits", "validations", "transactions") the key is
      `(resource, record id)`.
    - `extra_records[resource]`: raw records (any JSON) appended to that list as they are.
    """

    world: World
    token: str
    closed: set[str] = field(default_factory=set)
    raw_overrides: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    extra_records: dict[str, list[Any]] = field(default_factory=dict)

    def places(self) -> list[tuple[str, str]]:
        """(garage key, place id) for the garages this vendor runs that exist in the world."""
        return [(key, place_id) for key, place_id in VENDOR_IDS.items() if key in self.world.garages]

    def records(self, resource: str, build: Callable[[str, str], dict[str, Any]]) -> list[Any]:
        out: list[Any] = []
        for key, place_id in self.places():
            record = build(key, place_id)
            for name, value in self.raw_overrides.get((resource, place_id), {}).items():
                if value is REMOVE:
                    record.pop(name, None)
                else:
                    record[name] = value
            out.append(record)
        return out + list(self.extra_records.get(resource, ()))
