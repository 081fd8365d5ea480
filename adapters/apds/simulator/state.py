"""What one APDS simulator knows besides the world and its back office: which garages it runs and
under which ids, its token, the webhook subscriptions made to it, and the knobs tests and the
sandbox turn (`sim.state`), read by all its endpoint modules.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.apds.simulator.plumbing import Views
from adapters.apds.wire import RightKind
from adapters.simulated.world import World

#: garage key -> the place id this platform gave it
VENDOR_IDS: dict[str, str] = {
    "berlin-hbf": "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e01",
    "berlin-mitte": "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e02",
    "berlin-spree-hotel": "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e03",
    "hamburg-elbe": "7f3c2a10-5b1e-4c1a-9d2e-0a1b2c3d4e04",
}
#: who runs the garages, as the platform names it (issuer of its specifications, provider of payments)
OPERATOR = "sandbox-operator"

REMOVE: Any = object()  # in raw_overrides: drop this key from the record


def spec_id(place_id: str, kind: RightKind) -> str:
    """The platform's id of a place's right specification of that kind."""
    return f"{place_id}-{kind.value.lower()}"


def campus_id(city: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"apds-sandbox/campus/{city}"))


@dataclass
class Subscription:
    """One EventSubscription made with POST /webhooks."""

    id: str
    body: dict[str, Any]
    last_modified: datetime


@dataclass
class ApdsState:
    """The knobs of one APDS simulator, reachable as `sim.state`.

    - `closed`: garage keys whose barriers are down: occupancy level "closed", quotes and bookings
      refused (it is the back office's `closed` set, shared).
    - `raw_overrides[(resource, id)]`: fields merged over that record of a list on every request
      ("places": a place by its id; "rights", "sessions": by id); a value of `REMOVE` drops the key.
      This is how a test makes exactly one record malformed. `demand_overrides[place id]` merges
      over the place's counted demandType.
    - `extra_records[resource]`: raw records (any JSON) appended to that list as they are.
    - `subscriptions`: the webhook subscriptions made to it, by id.
    """

    world: World
    token: str
    closed: set[str] = field(default_factory=set)
    raw_overrides: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    demand_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_records: dict[str, list[Any]] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    #: validations revoked through the API, and when (the back office keeps only that they are)
    revoked_at: dict[str, datetime] = field(default_factory=dict)
    #: the lists being paged through, as of their first page (plumbing.py `Views`)
    views: Views = field(default_factory=Views)

    def places(self) -> list[tuple[str, str]]:
        """(garage key, place id) for the garages this platform runs that exist in the world."""
        return list(self.place_ids.items())

    @functools.cached_property
    def place_ids(self) -> dict[str, str]:
        """Garage key -> place id, for the garages this platform runs that exist in the world."""
        # the world's assignment never changes once made: one index, not one per right rendered
        # (a rights list at 1,000 garages spent most of its time rebuilding it)
        return dict(self.world.ids_of("apds", VENDOR_IDS))

    def garage_of(self, place_id: str) -> str | None:
        return self._garages_by_place.get(place_id)

    @functools.cached_property
    def _garages_by_place(self) -> dict[str, str]:
        return {place_id: key for key, place_id in self.place_ids.items()}

    def overridden(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        for name, value in self.raw_overrides.get((resource, str(record.get("id"))), {}).items():
            if value is REMOVE:
                record.pop(name, None)
            else:
                record[name] = value
        return record

    def listed(self, resource: str, records: list[dict[str, Any]],
               keep: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        return [self.overridden(resource, r) for r in records] + [r for r in self.extra_records.get(resource, ())
                                                                   if keep(r)]
