"""The sandbox: the gateway and six simulated vendor systems in one process, on in-memory defaults.

Integration partners test against it without touching production data; the test suite uses
it as its test bed. Each simulator is a real HTTP server (mounted under /sim/<system id> on
the sandbox's own port) speaking its vendor's dialect; the gateway reaches them over real
HTTP exactly as it would reach the real systems, through a configuration built here and
validated by the same loader as a production file.

`build_sandbox` is a composition root, as `parkgate serve` is: it builds the runtime and hands it
to the app with the schema assembled in resolvers/schema.py (or, with `subgraph`, its Federation
subgraph view, resolvers/subgraph.py).

Control API (for partners and tests):
    GET  /sandbox/systems                  the systems: id, kind, dialect, standard, base URL, simulator
                                           credentials (and a DATEX II system's publications)
    POST /sandbox/systems/{id}/fault       {"mode": "ok" | "down" | "slow" | "error", "delay_ms": n}
    GET  /sandbox/systems/{id}/stats       requests received, by endpoint
    POST /sandbox/systems/{id}/stats/reset start counting afresh
    GET|POST /sandbox/facilities/{id}/availability   {"reservable": n, "closed": bool}: what the garage's
                                           PARCS lets partners book (to see FULLY_BOOKED and CLOSED)
    POST /sandbox/systems/{id}/simulate    {"event": "entry" | "exit" | "check_in" | "check_out" | "violation" |
                                           "plate_correction", "facility_id", "plate"}: the vendor emits it
                                           as it would, webhook or (poll-only systems) world change only
                                           (gateway/sandbox_events.py)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from adapters.apds.simulator import ApdsSimulator
from adapters.datex2.wire import PUBLICATIONS as DATEX2_PUBLICATIONS
from adapters.parkline.simulator import ParklineSimulator
from adapters.registry import DIALECTS, Standard
from adapters.simulated.back_office import office_of
from adapters.simulated.generate import generate_world
from adapters.simulated.harness import FaultMode, Simulator
from adapters.simulated.world import World
from gateway.app import create_app
from gateway.auth.keys import Environment
from gateway.auth.scopes import Scope
from gateway.config import DEFAULT_TTLS, GatewayConfig, parse_config
from gateway.runtime import Runtime
from gateway.sandbox_events import EventInjector, build_emitters
from resolvers.subgraph import served_schema

#: system id -> dialect: the operator the sandbox plays (two PARCS vendors, sensors, LPR, a hotel PMS,
#: and a city's open-data platform publishing DATEX II for the garages the sensors do not cover)
SANDBOX_SYSTEMS: dict[str, str] = {
    "parcs-central": "apds",
    "parcs-london": "parkline",
    "guidance": "sensor-grid",
    "enforcement": "lpr",
    "hotel-pms": "mews",
    "open-data": "datex2",
}
MAX_DELAY_MS = 120_000
SANDBOX_POLL_INTERVAL_S = 0.5

S = Scope
#: one demo client per role: name -> (scopes, facilities or None for all)
DEMO_CLIENTS: dict[str, tuple[tuple[Scope, ...], tuple[str, ...] | None]] = {
    # on the deliberately small `throttled` plan (30 requests a minute): watch a 429 happen
    "throttled-demo": ((S.FACILITIES_READ, S.OCCUPANCY_READ, S.RATES_READ), None),
    "driver-app": ((S.FACILITIES_READ, S.OCCUPANCY_READ, S.RATES_READ, S.RESERVATIONS_READ, S.RESERVATIONS_WRITE,
                    S.SESSIONS_READ, S.PAYMENTS_WRITE), None),
    "dashboard": ((S.FACILITIES_READ, S.OCCUPANCY_READ), None),
    "finance-readonly": ((S.FACILITIES_READ, S.RATES_READ, S.FINANCE_READ), None),
    "enforcement-handheld": ((S.FACILITIES_READ, S.OCCUPANCY_READ, S.ENFORCEMENT_READ, S.ENFORCEMENT_WRITE,
                              S.PERMITS_READ, S.SESSIONS_READ, S.PII_READ), ("berlin-hbf", "berlin-mitte", "hamburg-elbe")),
    "permit-office": ((S.FACILITIES_READ, S.PERMITS_READ, S.PERMITS_WRITE, S.PII_READ), None),
    "hotel-pms-spree": ((S.FACILITIES_READ, S.OCCUPANCY_READ, S.HOSPITALITY_READ, S.HOSPITALITY_WRITE, S.PII_READ),
                        ("berlin-spree-hotel",)),
    "admin": ((S.ADMIN, S.FACILITIES_READ, S.OCCUPANCY_READ, S.RATES_READ, S.ENFORCEMENT_READ, S.HOSPITALITY_READ,
               S.FINANCE_READ), None),
}


@dataclass
class Sandbox:
    base_url: str
    world: World
    simulators: dict[str, Simulator]
    config: GatewayConfig
    runtime: Runtime
    #: the demo clients once seeded: name -> {"id", "key", "scopes", "facilities"}
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: system id -> the webhook side of its simulator (webhook-capable systems only)
    webhooks: dict[str, Any] = field(default_factory=dict)

    def systems_listing(self) -> list[dict[str, Any]]:
        return [
            {
                "id": system_id,
                "kind": DIALECTS[dialect].kind.value,
                "dialect": dialect,
                # the published standard it speaks, or null for a vendor's own API
                "standard": _standard(DIALECTS[dialect].standard),
                # the root the dialect's own paths hang from
                "base_url": f"{self.base_url}/sim/{system_id}{DIALECTS[dialect].api_root}",
                # the simulators' made-up secrets, so partners can look at a vendor's own API
                # (what a booking looks like in the PARCS); never real credentials
                "credentials": dict(self.config.systems[system_id].credentials),
                # a DATEX II publisher: where each of its publications is pulled from
                **({"publications": {name: f"{self.base_url}/sim/{system_id}{path}"
                                     for name, path in DATEX2_PUBLICATIONS.items()}} if dialect == "datex2" else {}),
            }
            for system_id, dialect in SANDBOX_SYSTEMS.items()
        ]


def _standard(standard: Standard | None) -> dict[str, str] | None:
    return None if standard is None else {"name": standard.name, "version": standard.version}


def level_ids(dialect: str, vendor_facility_id: str, index: int, level_key: str) -> str:
    """How each dialect names a garage's levels (the simulators' own conventions)."""
    if dialect == "sensor-grid":
        return f"{vendor_facility_id}-{index + 1}"
    if dialect == "datex2":
        return f"{vendor_facility_id}-{level_key}"
    return level_key


def sandbox_config_document(base_url: str, world: World, timeout_s: float = 5.0,
                            breaker_reset_s: float = 10.0) -> tuple[dict[str, Any], dict[str, str]]:
    """The sandbox's configuration as a YAML-shaped document, and the environment its credentials name."""
    environ: dict[str, str] = {}
    systems: dict[str, Any] = {}
    for system_id, dialect in SANDBOX_SYSTEMS.items():
        credentials = {}
        for name in DIALECTS[dialect].required_credentials:
            variable = f"SANDBOX_{system_id}_{name}".upper().replace("-", "_")
            environ[variable] = secrets.token_urlsafe(18)
            credentials[name] = f"${{{variable}}}"
        webhook_secret = DIALECTS[dialect].adapter.webhook_credential  # optional: the sandbox sets one
        if webhook_secret is not None:
            variable = f"SANDBOX_{system_id}_{webhook_secret}".upper().replace("-", "_")
            environ[variable] = secrets.token_urlsafe(24)
            credentials[webhook_secret] = f"${{{variable}}}"
        systems[system_id] = {
            "dialect": dialect,
            # the root the dialect's own paths hang from, as an operator configures a real system
            "base_url": f"{base_url}/sim/{system_id}{DIALECTS[dialect].api_root}",
            "credentials": credentials,
            "timeout_s": timeout_s,
            "breaker_reset_s": breaker_reset_s,
        }
        if DIALECTS[dialect].adapter.subscribes_webhooks:  # the vendor delivers to the gateway's own endpoint
            systems[system_id]["options"] = {"webhook_url": f"{base_url}/webhooks/{system_id}"}
    facilities: dict[str, Any] = {}
    ids = {system_id: DIALECTS[dialect].ids_in(world) for system_id, dialect in SANDBOX_SYSTEMS.items()}
    for key, state in world.garages.items():
        spec = state.spec
        mapped = {system_id: ids[system_id][key] for system_id in SANDBOX_SYSTEMS if key in ids[system_id]}
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


def demo_clients(world: World) -> dict[str, tuple[tuple[Scope, ...], tuple[str, ...] | None]]:
    """The demo clients for this world: in a generated one (adapters/simulated/generate.py), the
    clients limited to some garages get garages of the same kind (enforced, a hotel's)."""
    if all(key in world.garages for _, limited in DEMO_CLIENTS.values() for key in limited or ()):
        return DEMO_CLIENTS
    zones = DIALECTS[SANDBOX_SYSTEMS["enforcement"]].ids_in(world)
    hotels = DIALECTS[SANDBOX_SYSTEMS["hotel-pms"]].ids_in(world)
    limited = {"enforcement-handheld": tuple(list(zones)[:3]), "hotel-pms-spree": tuple(list(hotels)[:1])}
    return {name: (scopes, limited.get(name, facilities)) for name, (scopes, facilities) in DEMO_CLIENTS.items()}


async def seed_demo_clients(runtime: Runtime, sandbox: Sandbox, keys_file: Path | None) -> None:
    """One client per role, with fresh keys; written to `keys_file` as JSON when asked."""
    for name, (scopes, facilities) in demo_clients(sandbox.world).items():
        issued = await runtime.admin.create_client(
            "sandbox", name=name, environment=Environment.TEST, scopes=[s.value for s in scopes],
            facilities=facilities, notes="sandbox demo client",
            plan="throttled" if name == "throttled-demo" else "standard",
        )
        sandbox.clients[name] = {
            "id": issued.client.id,
            "key": issued.key,
            "scopes": sorted(issued.client.scopes),
            "facilities": None if facilities is None else list(facilities),
        }
    if keys_file is not None:
        keys_file.write_text(orjson.dumps({
            name: {k: v for k, v in info.items() if k != "id"} | {"client_id": info["id"]}
            for name, info in sandbox.clients.items()
        }, option=orjson.OPT_INDENT_2).decode() + "\n", encoding="utf-8")
        keys_file.chmod(0o600)


def build_sandbox(base_url: str, *, world: World | None = None, timeout_s: float = 5.0,
                  breaker_reset_s: float = 10.0, cache_ttl_s: dict[str, int] | None = None,
                  polling: bool = True, keys_file: Path | None = None, subgraph: bool = False,
                  subgraph_scopes: bool = True, observability: dict[str, Any] | None = None,
                  limits: dict[str, Any] | None = None) -> tuple[Starlette, Sandbox]:
    """The sandbox app for a server that will listen at `base_url` (simulators are reached there);
    `subgraph`: serve the schema as a Federation v2 subgraph (resolvers/subgraph.py), its fields' scopes
    shown as `@requiresScopes` unless `subgraph_scopes` is off; `observability` and `limits`: the
    configuration's sections of those names (metrics access, tracing; request limits), if not the defaults."""
    world = world or generate_world()
    document, environ = sandbox_config_document(base_url, world, timeout_s, breaker_reset_s)
    document["environment"] = "test"
    # Poll-only systems report what happens through the poller (tests that count vendor calls turn it
    # off), twice a second: the simulators are local, and a partner trying out occupancyChanged
    # hears a car a simulated PARCS without webhooks let in within a second, as at an APDS one.
    document["events"] = {"polling": polling, "poll_interval_s": SANDBOX_POLL_INTERVAL_S}
    # partners' receivers in the sandbox and tests run on loopback
    document["webhooks"] = {"allow_networks": ["127.0.0.0/8", "::1/128"], "https_only": False}
    if subgraph:
        document["server"] = {"subgraph": True, "subgraph_scopes": subgraph_scopes}
    if observability:
        document["observability"] = observability
    if limits:
        document["limits"] = limits
    if cache_ttl_s:
        document["cache"] = {"ttl_s": {**DEFAULT_TTLS, **cache_ttl_s}}
    config = parse_config(document, source="sandbox", environ=environ)
    simulators = {
        system_id: DIALECTS[dialect].create_simulator(world, system_id, config.systems[system_id].credentials)
        for system_id, dialect in SANDBOX_SYSTEMS.items()
    }
    runtime = Runtime.from_config(config)
    sandbox = Sandbox(base_url, world, simulators, config, runtime)
    sandbox.webhooks = build_emitters(base_url, SANDBOX_SYSTEMS,
                                      {system_id: config.systems[system_id].credentials for system_id in SANDBOX_SYSTEMS})
    for system_id, sim in simulators.items():
        if isinstance(sim, ApdsSimulator):  # it delivers to whoever subscribed (the gateway, at start)
            sandbox.webhooks[system_id] = sim.webhooks
    injector = EventInjector(sandbox, SANDBOX_SYSTEMS)
    injector.announce_api_citations()
    routes: list[BaseRoute] = [
        *control_routes(sandbox, injector),
        *(Mount(f"/sim/{system_id}", app=sim.app) for system_id, sim in simulators.items()),
    ]

    async def start() -> None:
        await seed_demo_clients(runtime, sandbox, keys_file)
        # GraphiQL opens ready to run its first query: the driver app's demo key in its Headers tab
        demo_key = sandbox.clients["driver-app"]["key"]
        app.state.graphql.graphiql_headers = orjson.dumps({"Authorization": f"Bearer {demo_key}"}).decode()

    schema = served_schema(config.server.subgraph, config.server.subgraph_scopes)
    app = create_app(runtime, schema, extra_routes=routes, on_startup=[start])
    app.state.sandbox = sandbox
    return app, sandbox


def control_routes(sandbox: Sandbox, injector: EventInjector) -> list[BaseRoute]:
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

    async def availability(request: Request) -> JSONResponse:
        """What a garage's PARCS lets partners book: reservable spaces and whether it takes bookings."""
        office = office_of(sandbox.world)
        facility_id = request.path_params["facility_id"]
        terms = office.terms.get(facility_id)
        if terms is None:
            return error(404, "NOT_FOUND", f"No facility {facility_id!r} with a PARCS; GET /sandbox/systems lists the systems.")
        if request.method == "POST":
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                return error(400, "BAD_REQUEST", 'The body must be JSON like {"reservable": 0, "closed": false}.')
            if not isinstance(body, dict) or not set(body) <= {"reservable", "closed"}:
                return error(400, "BAD_USER_INPUT", "Send `reservable` (spaces) and/or `closed` (true or false).")
            capacity = sandbox.world.garages[facility_id].spec.capacity
            reservable, closed = body.get("reservable", terms.reservable), body.get("closed", facility_id in office.closed)
            if not isinstance(reservable, int) or isinstance(reservable, bool) or not 0 <= reservable <= capacity:
                return error(400, "BAD_USER_INPUT", f"`reservable` must be an integer from 0 to {capacity}.")
            if not isinstance(closed, bool):
                return error(400, "BAD_USER_INPUT", "`closed` must be true or false.")
            office.terms[facility_id] = replace(terms, reservable=reservable)
            (office.closed.add if closed else office.closed.discard)(facility_id)
            for system_id, dialect in SANDBOX_SYSTEMS.items():  # ParkLine keeps its own list of closed car parks
                code = DIALECTS[dialect].ids_in(sandbox.world).get(facility_id)
                simulator = sandbox.simulators[system_id]
                if isinstance(simulator, ParklineSimulator) and code is not None:
                    backend_closed = simulator.backend.closed
                    (backend_closed.add if closed else backend_closed.discard)(code)
        return JSONResponse({"facility_id": facility_id, "reservable": office.terms[facility_id].reservable,
                             "closed": facility_id in office.closed})

    return [
        Route("/sandbox/facilities/{facility_id}/availability", availability, methods=["GET", "POST"]),
        Route("/sandbox/systems", list_systems, methods=["GET"]),
        Route("/sandbox/systems/{system_id}/fault", set_fault, methods=["POST"]),
        Route("/sandbox/systems/{system_id}/stats", stats, methods=["GET"]),
        Route("/sandbox/systems/{system_id}/stats/reset", reset_stats, methods=["POST"]),
        Route("/sandbox/systems/{system_id}/simulate", injector.endpoint, methods=["POST"]),
    ]


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
