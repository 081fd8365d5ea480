"""A sandbox of any size (adapters/simulated/generate.py, `parkgate sandbox --facilities N --seed S`):
the default is the six-garage world exactly; a seed gives one world; a big one pages through every
facility with figures from every dialect."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.registry import DIALECTS
from adapters.simulated.generate import MAX_FACILITIES, generate_world
from adapters.simulated.world import GARAGES, World
from gateway.cli import app as cli
from gateway.sandbox import SANDBOX_SYSTEMS, Sandbox, build_sandbox, sandbox_config_document
from tests.support.servers import bound_socket, serve

SIZE = 200
PAGE = """query($after: String) { facilities(first: 100, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id city timeZone capacity levels { id }
    occupancy { occupied counted { occupied } sensed { occupied } }
    rates { currency } hotel { name } enforcement { zoneId } sources { id status } } } } }"""


def assignment(world: World) -> dict[str, dict[str, str]]:
    return {dialect: dict(DIALECTS[dialect].ids_in(world)) for dialect in DIALECTS}


def test_the_default_world_is_the_six_garages_exactly() -> None:
    world = generate_world()
    assert tuple(state.spec for state in world.garages.values()) == GARAGES
    assert world.vendor_ids == {}  # every dialect runs its own default garages
    assert assignment(world) == assignment(World())
    assert {d: dict(ids) for d, ids in assignment(world).items()} == {
        d: {k: v for k, v in DIALECTS[d].sandbox_ids.items()} for d in DIALECTS}
    document, _ = sandbox_config_document("http://127.0.0.1:1", world)
    assert document["facilities"] == sandbox_config_document("http://127.0.0.1:1", World())[0]["facilities"]


def test_one_seed_one_world_another_seed_another() -> None:
    one, again, other = generate_world(SIZE, 11), generate_world(SIZE, 11), generate_world(SIZE, 12)
    specs = [state.spec for state in one.garages.values()]
    assert specs == [state.spec for state in again.garages.values()] and assignment(one) == assignment(again)
    assert specs != [state.spec for state in other.garages.values()]
    document, _ = sandbox_config_document("http://127.0.0.1:1", one)
    assert document["facilities"] == sandbox_config_document("http://127.0.0.1:1", again)[0]["facilities"]


@given(st.integers(min_value=1, max_value=400), st.integers())
@settings(max_examples=25, deadline=None)
def test_every_generated_world_is_consistent(size: int, seed: int) -> None:
    world = generate_world(size, seed)
    assert len(world.garages) == size
    ids = assignment(world)
    for dialect, mapped in ids.items():
        assert set(mapped) <= set(world.garages), dialect
        assert len(set(mapped.values())) == len(mapped), f"{dialect} gives two garages one id"
    if size != 6:
        # every garage has exactly one PARCS; hotels in the PMS are hotel garages
        for key in world.garages:
            assert (key in ids["apds"]) != (key in ids["parkline"])
        assert all(world.garages[key].spec.profile == "hotel" for key in ids["mews"])
        levels = [level.key for state in world.garages.values() for level in state.spec.levels]
        assert len(levels) == len(set(levels))  # APDS names a level by its key alone


def test_a_size_out_of_range_is_refused() -> None:
    for size in (0, MAX_FACILITIES + 1):
        with pytest.raises(ValueError, match="facilities"):
            generate_world(size)
    result = CliRunner().invoke(cli, ["sandbox", "--facilities", "0"])
    assert result.exit_code == 2 and "--facilities" in result.output


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def big() -> AsyncIterator[tuple[str, Sandbox, httpx.AsyncClient]]:
    """A sandbox of SIZE garages on loopback, like the `bed` fixture's, with the admin demo client's key."""
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, world=generate_world(SIZE, 5), polling=False, timeout_s=30)
    async with serve(app, sock), httpx.AsyncClient(timeout=120) as http:
        http.headers["authorization"] = f"Bearer {sandbox.clients['admin']['key']}"
        yield url, sandbox, http


@pytest.mark.asyncio(loop_scope="module")
async def test_a_big_sandbox_pages_through_every_facility_with_every_dialect(
        big: tuple[str, Sandbox, httpx.AsyncClient]) -> None:
    url, sandbox, http = big
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        answer = (await http.post(f"{url}/graphql", json={"query": PAGE, "variables": {"after": after}})).json()
        assert "errors" not in answer, answer["errors"][:3]
        page = answer["data"]["facilities"]
        assert page["totalCount"] == SIZE and len(page["edges"]) <= 100
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [node["id"] for node in nodes] == list(sandbox.world.garages)  # all of them, in order, once each
    world = sandbox.world
    ids = {system_id: DIALECTS[dialect].ids_in(world) for system_id, dialect in SANDBOX_SYSTEMS.items()}
    sources = Counter(source["id"] for node in nodes for source in node["sources"])
    assert sources == {system_id: len(mapped) for system_id, mapped in ids.items() if mapped}
    assert set(sources) == set(SANDBOX_SYSTEMS)  # every dialect serves a share
    for node in nodes:
        spec = world.garages[node["id"]].spec
        assert (node["city"], node["timeZone"], node["capacity"]) == (spec.city, spec.time_zone, spec.capacity)
        assert len(node["levels"]) == len(spec.levels)
        # counted by its PARCS (APDS or ParkLine), sensed where sensors (sensor-grid) or the city (DATEX II) see it
        assert node["occupancy"]["counted"] is not None
        sensed = node["id"] in ids["guidance"] or node["id"] in ids["open-data"]
        assert (node["occupancy"]["sensed"] is not None) == sensed
        assert node["rates"]["currency"] == ("GBP" if node["id"] in ids["parcs-london"] else "EUR")
        assert (node["hotel"] is not None) == (node["id"] in ids["hotel-pms"])
        assert (node["enforcement"] is not None) == (node["id"] in ids["enforcement"])
    assert len({node["timeZone"] for node in nodes}) >= 3 and len({node["city"] for node in nodes}) >= 6
    # the vendors paged: APDS (50 a page) and sensor-grid were asked page after page
    stats = {system_id: sim.control.stats()["by_endpoint"] for system_id, sim in sandbox.simulators.items()}
    assert stats["parcs-central"]["GET /apds/v1/places"] >= len(ids["parcs-central"]) // 50
