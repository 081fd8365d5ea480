"""parkgate's subgraph behind real routers: composed with @apollo/composition, served by Hive Gateway
and by @apollo/gateway (every test runs behind each).

    parkgate sandbox --subgraph (in process) ─┐                                   Hive Gateway
                                              ├─ @apollo/composition ─▶ supergraph ─▶  or        ◀─ client
    charging points subgraph (in process) ────┘                                   @apollo/gateway

@apollo/gateway refuses a supergraph that uses @requiresScopes, so behind it parkgate runs with
`server.subgraph_scopes: false` (its SDL without them): the scopes are parkgate's to check either way.

The second subgraph (tests/support/charging.py, strawberry) extends parkgate's `Facility` with
charging points and points each charging point at its facility. Both subgraphs' SDL is read from
their own `_service { sdl }`, as a router's tooling reads it. The npm side (tests/e2e/federation/:
compose.js, router.js; versions pinned in its package.json and package-lock.json) is installed
once per session. Clients send their parkgate key to the router; the router forwards it
(header propagation) and parkgate decides, behind the router, what each client may read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.bed import Bed
from tests.support.charging import CHARGERS, charging_app
from tests.support.npm import installed
from tests.support.servers import serve
from tests.support.subgraph import subgraph_bed

FEDERATION = Path(__file__).parent / "federation"
SERVICE_SDL = "{ _service { sdl } }"


@pytest.fixture(scope="session")
def federation_npm() -> Path:
    """tests/e2e/federation/node_modules, installed once per session."""
    return installed(FEDERATION, "the Federation tests", timeout_s=300)


ROUTERS = ["hive-gateway", "apollo-gateway"]


@dataclass
class Supergraph:
    router_name: str
    parkgate: Bed
    composition: dict[str, Any]  # compose.js's answer: errors, hints, supergraphSdl
    router: str  # the router's GraphQL endpoint
    http: httpx.AsyncClient

    async def query(self, query: str, client: str | None) -> dict[str, Any]:
        """`query` sent to the router as a parkgate demo client (its key in Authorization), or with no key."""
        headers = self.parkgate.auth(client) if client else {}
        response = await self.http.post(self.router, json={"query": query}, headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json())


async def node(script: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec("node", str(script), *args, cwd=script.parent,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def compose(subgraphs: list[dict[str, str]], workdir: Path, npm: Path) -> dict[str, Any]:
    listing = workdir / "subgraphs.json"
    listing.write_text(json.dumps(subgraphs), encoding="utf-8")
    process = await node(npm / "compose.js", str(listing))
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return dict(json.loads(out))


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=ROUTERS)
async def supergraph(request: pytest.FixtureRequest, federation_npm: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Supergraph]:
    router_name: str = request.param
    workdir = tmp_path_factory.mktemp("supergraph")
    async with subgraph_bed(scopes=router_name != "apollo-gateway") as parkgate, serve(charging_app()) as charging, httpx.AsyncClient(timeout=60) as http:
        parkgate_sdl = (await parkgate.graphql(SERVICE_SDL))["data"]["_service"]["sdl"]
        charging_sdl = (await http.post(f"{charging}/graphql", json={"query": SERVICE_SDL})).json()["data"]["_service"]["sdl"]
        composition = await compose([{"name": "parkgate", "url": f"{parkgate.url}/graphql", "sdl": parkgate_sdl},
                                     {"name": "charging", "url": f"{charging}/graphql", "sdl": charging_sdl}],
                                    workdir, federation_npm)
        assert not composition["errors"], composition["errors"]
        (workdir / "supergraph.graphql").write_text(composition["supergraphSdl"], encoding="utf-8")
        router = await node(federation_npm / "router.js", router_name, str(workdir / "supergraph.graphql"))
        assert router.stdout is not None and router.stderr is not None
        try:
            ready = (await asyncio.wait_for(router.stdout.readline(), 60)).decode().split()
            if ready[:1] != ["ready"]:
                await router.wait()
                raise AssertionError(f"the router did not start: {(await router.stderr.read()).decode()}")
            yield Supergraph(router_name, parkgate, composition, ready[1], http)
        finally:
            if router.returncode is None:
                router.terminate()
                await asyncio.wait_for(router.wait(), 20)


async def test_the_supergraph_composes_without_errors_or_hints(supergraph: Supergraph) -> None:
    assert supergraph.composition["errors"] == []
    assert supergraph.composition["hints"] == []  # not even a description that differs between the two
    sdl = supergraph.composition["supergraphSdl"]
    assert '@join__type(graph: PARKGATE, key: "id", resolvable: true)' in sdl and '@join__type(graph: CHARGING, key: "id")' in sdl
    if supergraph.router_name == "apollo-gateway":  # composed from parkgate's SDL without them
        assert "requiresScopes" not in sdl
    else:  # a router sees parkgate's scopes
        assert "https://specs.apollo.dev/requiresScopes/v0.1" in sdl
        assert '@requiresScopes(scopes: [["occupancy:read"]])' in sdl


async def test_facilities_with_their_charging_points(supergraph: Supergraph) -> None:
    result = await supergraph.query("{ facilities(first: 10) { totalCount edges { node { id name "
                                    "chargingPoints { id powerKw connector } } } } }", "driver-app")
    assert "errors" not in result, result
    nodes = {edge["node"]["id"]: edge["node"] for edge in result["data"]["facilities"]["edges"]}
    assert len(nodes) == result["data"]["facilities"]["totalCount"] == 6
    direct = await supergraph.parkgate.graphql("{ facilities(first: 10) { edges { node { id name } } } }", client="driver-app")
    assert {e["node"]["id"]: e["node"]["name"] for e in direct["data"]["facilities"]["edges"]} == \
        {facility_id: node["name"] for facility_id, node in nodes.items()}
    for facility_id, node in nodes.items():
        assert node["chargingPoints"] == [{"id": point_id, "powerKw": c.power_kw, "connector": c.connector}
                                          for point_id, c in CHARGERS.items() if c.facility_id == facility_id]


async def test_a_charging_points_facility_and_its_occupancy(supergraph: Supergraph) -> None:
    query = '{ chargingPoint(id: "cp-hbf-2") { id connector facility { id name capacity occupancy { capacity served } } } }'
    result = await supergraph.query(query, "dashboard")
    assert "errors" not in result, result
    point = result["data"]["chargingPoint"]
    direct = await supergraph.parkgate.graphql('{ facility(id: "berlin-hbf") { id name capacity occupancy { capacity served } } }',
                                               client="dashboard")
    assert point == {"id": "cp-hbf-2", "connector": "CCS", "facility": direct["data"]["facility"]}
    assert point["facility"]["occupancy"]["served"] in ("COUNTED", "SENSED")


async def test_the_key_reaches_parkgate_through_the_router(supergraph: Supergraph) -> None:
    query = '{ chargingPoint(id: "cp-hbf-1") { id facility { id name } } }'
    anonymous = await supergraph.query(query, None)
    # Hive Gateway passes parkgate's error on at its path; @apollo/gateway reports the subgraph's 401 as one
    # UNAUTHENTICATED error of its own. Either way the client is told why, and gets nothing of the facility.
    assert {e["extensions"]["code"] for e in anonymous["errors"]} == {"UNAUTHENTICATED"}
    assert "Hauptbahnhof" not in json.dumps(anonymous)
    assert (await supergraph.query(query, "dashboard"))["data"]["chargingPoint"]["facility"]["name"] == "Hauptbahnhof Garage"


async def test_a_client_without_occupancy_read_is_refused_behind_the_router(supergraph: Supergraph) -> None:
    # finance-readonly: facilities:read, rates:read, finance:read — not occupancy:read
    result = await supergraph.query('{ chargingPoint(id: "cp-hbf-1") { id facility { id name occupancy { free } } } }',
                                    "finance-readonly")
    assert [(e["path"], e["extensions"]["code"]) for e in result["errors"]] == \
        [(["chargingPoint", "facility", "occupancy"], "FORBIDDEN")]
    assert result["errors"][0]["extensions"]["missingScopes"] == ["occupancy:read"]
    assert result["data"]["chargingPoint"]["facility"] == {"id": "berlin-hbf", "name": "Hauptbahnhof Garage",
                                                           "occupancy": None}


async def test_a_limited_client_gets_nothing_for_a_facility_outside_its_own(supergraph: Supergraph) -> None:
    # enforcement-handheld sees berlin-hbf, berlin-mitte and hamburg-elbe; cp-kx-1 is at london-kings-cross
    result = await supergraph.query("{ chargingPoints { id facility { id name occupancy { free } } } }",
                                    "enforcement-handheld")
    points = {point["id"]: point for point in result["data"]["chargingPoints"]}
    assert points["cp-kx-1"]["facility"] is None  # parkgate resolved its reference to nothing
    for point_id in ("cp-hbf-1", "cp-hbf-2", "cp-elbe-1"):
        facility = points[point_id]["facility"]
        assert facility["id"] == CHARGERS[point_id].facility_id and facility["name"] and facility["occupancy"]
    # At most the router's complaint about the missing facility (Hive Gateway says its name is missing;
    # @apollo/gateway says nothing): no error from parkgate, nothing of the facility.
    errors = result.get("errors", [])
    assert len(errors) <= 1 and all(e.get("path") == ["chargingPoints", 3, "facility", "name"] for e in errors), errors
    assert "King" not in json.dumps(result)
    listed = await supergraph.query("{ facilities { edges { node { id chargingPoints { id } } } } }", "enforcement-handheld")
    assert {e["node"]["id"] for e in listed["data"]["facilities"]["edges"]} == {"berlin-hbf", "berlin-mitte", "hamburg-elbe"}
