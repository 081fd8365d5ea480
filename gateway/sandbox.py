"""The sandbox: the gateway and five simulated vendor systems in one process, on in-memory defaults.

Integration partners test against it without touching production data; the test suite uses
it as its test bed. Each simulator is a real HTTP server (mounted under /sim/<system id> on
the sandbox's own port) speaking its vendor's dialect; the gateway reaches them over real
HTTP exactly as it would reach the real systems, through a configuration built here and
validated by the same loader as a production file.

Control API (for partners and tests):
    GET  /sandbox/systems                  the systems: id, kind, dialect, base URL
    POST /sandbox/systems/{id}/fault       {"mode": "ok" | "down" | "slow" | "error", "delay_ms": n}
    GET  /sandbox/systems/{id}/stats       requests received, by endpoint
    POST /sandbox/systems/{id}/stats/reset start counting afresh
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from adapters.registry import DIALECTS
from adapters.simulation import FaultMode, Simulator
from adapters.simworld import World
from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.runtime import Runtime

#: system id -> dialect: the operator the sandbox plays (two PARCS vendors, sensors, LPR, a hotel PMS)
SANDBOX_SYSTEMS: dict[str, str] = {
    "parcs-central": "apds",
    "parcs-london": "parkline",
    "guidance": "sensor-grid",
    "enforcement": "lpr",
    "hotel-pms": "mews",
}
MAX_DELAY_MS = 120_000


@dataclass
class Sandbox:
    base_url: str
    world: World
    simulators: dict[str, Simulator]
    config: GatewayConfig

    def systems_listing(self) -> list[dict[str, Any]]:
        return [
            {
                "id": system_id,
                "kind": DIALECTS[dialect].kind.value,
                "dialect": dialect,
                "base_url": f"{self.base_url}/sim/{system_id}",
            }
            for system_id, dialect in SANDBOX_SYSTEMS.items()
        ]


def level_ids(dialect: str, vendor_facility_id: str, index: int, level_key: str) -> str:
    """How each dialect names a garage's levels (the simulators' own conventions)."""
    if dialect == "sensor-grid":
        return f"{vendor_facility_id}-{index + 1}"
    return level_key


def sandbox_config_document(base_url: str, world: World, timeout_s: float = 5.0) -> tuple[dict[str, Any], dict[str, str]]:
    """The sandbox's configuration as a YAML-shaped document, and the environment its credentials name."""
    environ: dict[str, str] = {}
    systems: dict[str, Any] = {}
    for system_id, dialect in SANDBOX_SYSTEMS.items():
        credentials = {}
        for name in DIALECTS[dialect].required_credentials:
            variable = f"SANDBOX_{system_id}_{name}".upper().replace("-", "_")
            environ[variable] = secrets.token_urlsafe(18)
            credentials[name] = f"${{{variable}}}"
        systems[system_id] = {
            "dialect": dialect,
            "base_url": f"{base_url}/sim/{system_id}",
            "credentials": credentials,
            "timeout_s": timeout_s,
        }
    facilities: dict[str, Any] = {}
    for key, state in world.garages.items():
        spec = state.spec
        mapped = {
            system_id: DIALECTS[dialect].sandbox_ids[key]
            for system_id, dialect in SANDBOX_SYSTEMS.items()
            if key in DIALECTS[dialect].sandbox_ids
        }
        level_systems = {s: v for s, v in mapped.items() if DIALECTS[SANDBOX_SYSTEMS[s]].kind.value in ("PARCS", "GUIDANCE")}
        facilities[key] = {
            "name": spec.name,
            "city": spec.city,
            "time_zone": spec.time_zone,
            "location": {"latitude": spec.latitude, "longitude": spec.longitude},
            "systems": mapped,
            "levels": {
                level.key: {
                    "name": level.name,
                    "capacity": level.capacity,
                    "systems": {
                        s: level_ids(SANDBOX_SYSTEMS[s], vendor_id, i, level.key) for s, vendor_id in level_systems.items()
                    },
                }
                for i, level in enumerate(spec.levels)
            },
        }
    return {"systems": systems, "facilities": facilities}, environ


def build_sandbox(base_url: str, *, world: World | None = None, timeout_s: float = 5.0) -> tuple[Starlette, Sandbox]:
    """The sandbox app for a server that will listen at `base_url` (simulators are reached there)."""
    world = world or World()
    document, environ = sandbox_config_document(base_url, world, timeout_s)
    config = parse_config(document, source="sandbox", environ=environ)
    simulators = {
        system_id: DIALECTS[dialect].create_simulator(world, system_id, config.systems[system_id].credentials)
        for system_id, dialect in SANDBOX_SYSTEMS.items()
    }
    sandbox = Sandbox(base_url, world, simulators, config)
    routes: list[BaseRoute] = [
        *control_routes(sandbox),
        *(Mount(f"/sim/{system_id}", app=sim.app) for system_id, sim in simulators.items()),
    ]
    app = create_app(Runtime.from_config(config), extra_routes=routes)
    app.state.sandbox = sandbox
    return app, sandbox


def control_routes(sandbox: Sandbox) -> list[BaseRoute]:
    def simulator(request: Request) -> Simulator | JSONResponse:
        system_id = request.path_params["system_id"]
        sim = sandbox.simulators.get(system_id)
        if sim is None:
            return error(404, "NOT_FOUND", f"No system {system_id!r}; GET /sandbox/systems lists them.")
        return sim

    async def list_systems(request: Request) -> JSONResponse:
        return JSONResponse({"systems": sandbox.systems_listing()})

    async def set_fault(request: Request) -> JSONResponse:
        sim = simulator(request)
        if isinstance(sim, JSONResponse):
            return sim
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error(400, "BAD_REQUEST", "The body must be JSON like {\"mode\": \"down\"}.")
        modes = [m.value for m in FaultMode]
        if not isinstance(body, dict) or body.get("mode") not in modes:
            return error(400, "BAD_USER_INPUT", f"`mode` must be one of {', '.join(modes)}.")
        delay = body.get("delay_ms", 0)
        if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_MS:
            return error(400, "BAD_USER_INPUT", f"`delay_ms` must be an integer from 0 to {MAX_DELAY_MS}.")
        if body["mode"] == FaultMode.SLOW and delay == 0:
            delay = 10_000
        sim.control.set_fault(FaultMode(body["mode"]), delay)
        return JSONResponse(sim.control.stats())

    async def stats(request: Request) -> JSONResponse:
        sim = simulator(request)
        return sim if isinstance(sim, JSONResponse) else JSONResponse(sim.control.stats())

    async def reset_stats(request: Request) -> JSONResponse:
        sim = simulator(request)
        if isinstance(sim, JSONResponse):
            return sim
        sim.control.reset_stats()
        return JSONResponse(sim.control.stats())

    return [
        Route("/sandbox/systems", list_systems, methods=["GET"]),
        Route("/sandbox/systems/{system_id}/fault", set_fault, methods=["POST"]),
        Route("/sandbox/systems/{system_id}/stats", stats, methods=["GET"]),
        Route("/sandbox/systems/{system_id}/stats/reset", reset_stats, methods=["POST"]),
    ]


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
