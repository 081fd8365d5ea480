"""Every wire dialect parkgate speaks: its kind of system, its adapter and its simulator."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from adapters import apds, datex2, lpr, mews, parkline, sensorgrid
from adapters.apds import simulator as apds_simulator
from adapters.base import Adapter
from adapters.conformance import ExchangeCheck, Finding
from adapters.datex2 import simulator as datex2_simulator
from adapters.lpr import simulator as lpr_simulator
from adapters.mews import simulator as mews_simulator
from adapters.models import SystemKind
from adapters.parkline import simulator as parkline_simulator
from adapters.sensorgrid import simulator as sensorgrid_simulator
from adapters.simulated.harness import Simulator
from adapters.simulated.world import World

SimulatorFactory = Callable[[World, str, Mapping[str, str]], Simulator]


def _checked_by(module: str) -> ExchangeCheck:
    """`module`'s `check_exchange`, imported when first called: the checks load the standards' documents
    and validators (openapi-core, xmlschema: a third of a second), which only the probe uses; every
    command and every gateway process imports this registry."""

    def check(base_url: str, request: httpx.Request, response: httpx.Response) -> list[Finding]:
        found: list[Finding] = importlib.import_module(module).check_exchange(base_url, request, response)
        return found

    return check


@dataclass(frozen=True)
class Standard:
    """The published standard a dialect speaks, as partners and operators name it."""

    name: str  # "APDS", "DATEX II", "Mews Connector"
    version: str


@dataclass(frozen=True)
class Dialect:
    name: str
    adapter: type[Adapter]
    create_simulator: SimulatorFactory
    #: garage key in the six-garage sandbox world -> that garage's id in this vendor's system
    #: (a generated world assigns its own: `ids_in(world)`)
    sandbox_ids: Mapping[str, str]
    #: the published standard it speaks; None for a vendor's own (proprietary) API
    standard: Standard | None = None
    #: where, below the simulator's URL, the dialect's own paths hang (e.g. "/apds/v1"); the sandbox
    #: configures the system at that root, as an operator configures a real one (its `base_url`)
    api_root: str = ""
    #: judges one HTTP exchange against the standard (adapters/conformance.py); None without one
    conformance: ExchangeCheck | None = None

    def ids_in(self, world: World) -> Mapping[str, str]:
        """Garage key -> that garage's id in this vendor's system, for the garages of `world` it runs."""
        return world.ids_of(self.name, self.sandbox_ids)

    @property
    def kind(self) -> SystemKind:
        return self.adapter.kind

    @property
    def required_credentials(self) -> tuple[str, ...]:
        return self.adapter.required_credentials


DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        # APDS v4; its API document states `info.version: 1.0` (the working draft published with v4)
        Dialect("apds", apds.ApdsAdapter, apds_simulator.create_simulator, apds_simulator.VENDOR_IDS,
                standard=Standard("APDS", "v4 (API 1.0)"), api_root=apds_simulator.ROOT,
                conformance=_checked_by("adapters.apds.conformance")),
        Dialect("parkline", parkline.ParklineAdapter, parkline_simulator.create_simulator,
                parkline_simulator.VENDOR_IDS),
        Dialect("sensor-grid", sensorgrid.SensorGridAdapter, sensorgrid_simulator.create_simulator,
                sensorgrid_simulator.VENDOR_IDS),
        Dialect("lpr", lpr.LprAdapter, lpr_simulator.create_simulator, lpr_simulator.VENDOR_IDS),
        # Connector API v1 (`/api/connector/v1`; reservations at their 2023-06-06 version): base_url is
        # Mews's PlatformAddress, every operation's path starts at /api/connector/v1 below it
        Dialect("mews", mews.MewsAdapter, mews_simulator.create_simulator, mews_simulator.VENDOR_IDS,
                standard=Standard("Mews Connector", "v1"), api_root="", conformance=_checked_by("adapters.mews.conformance")),
        Dialect("datex2", datex2.Datex2Adapter, datex2_simulator.create_simulator, datex2_simulator.VENDOR_IDS,
                standard=Standard("DATEX II", "3.7"), conformance=_checked_by("adapters.datex2.conformance")),
    )
}
