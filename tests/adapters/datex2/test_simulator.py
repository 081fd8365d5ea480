"""The DATEX II publisher the sandbox runs: every document it serves is DATEX II v3.7 by the official
schemas, and it answers If-Modified-Since as a pull server does. Over real HTTP on loopback."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.datex2.conformance import findings
from adapters.datex2.reading import read_status, read_table
from adapters.datex2.simulator import VENDOR_IDS, Datex2Simulator, create_simulator
from adapters.datex2.wire import PUBLICATIONS, STATUS_PUBLICATION, TABLE_PUBLICATION, http_date, parse_http_date
from adapters.simulated.world import World
from tests.support.servers import serve

HAMBURG = "hamburg-elbe"


class Clock:
    """The publisher's "now", stepped by hand (publication times have whole seconds)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: int = 1) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def publisher(clock: Clock) -> AsyncIterator[tuple[Datex2Simulator, httpx.AsyncClient]]:
    sim = create_simulator(World(seed=5), "open-data", {})
    sim.platform.clock = clock
    async with serve(sim.app) as url, httpx.AsyncClient(base_url=url) as http:
        yield sim, http


def plates() -> Iterator[str]:
    return (f"HH-T {n}" for n in itertools.count(1))


async def test_every_document_it_serves_conforms_as_the_world_moves(
        publisher: tuple[Datex2Simulator, httpx.AsyncClient], clock: Clock) -> None:
    sim, http = publisher
    table = await http.get(PUBLICATIONS["table"])
    assert table.status_code == 200 and table.headers["content-type"].startswith("application/xml")
    assert findings(table.content, TABLE_PUBLICATION) == []
    cars = plates()
    seen_statuses: set[str] = set()
    bodies = set()
    # Through a quiet garage, a full one (cars arriving until the barrier stays down) and an empty one.
    for step in range(8):
        if step in (2, 3):
            while sim.world.enter(HAMBURG, next(cars)):
                pass
        if step in (5, 6):
            while sim.world.exit(HAMBURG):
                pass
        clock.tick()
        status = await http.get(PUBLICATIONS["status"])
        assert status.status_code == 200
        assert findings(status.content, STATUS_PUBLICATION) == [], status.text
        bodies.add(status.content)
        seen_statuses |= {s for r in read_status(status.content).records for s in r.statuses}
    assert {"full", "spacesAvailable"} <= seen_statuses
    assert len(bodies) >= 3, "the status follows the world"
    document = read_table(table.content)
    assert {e.id for e in document.elements.values() if e.type == "place"} == set(VENDOR_IDS.values())


async def test_if_modified_since_is_answered_with_304(publisher: tuple[Datex2Simulator, httpx.AsyncClient]) -> None:
    _, http = publisher
    for path in PUBLICATIONS.values():
        first = await http.get(path)
        modified = first.headers["last-modified"]
        unchanged = await http.get(path, headers={"if-modified-since": modified})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["last-modified"] == modified
        later = http_date(parse_http_date(modified) + timedelta(hours=1))
        assert (await http.get(path, headers={"if-modified-since": later})).status_code == 304
        earlier = http_date(parse_http_date(modified) - timedelta(seconds=1))
        again = await http.get(path, headers={"if-modified-since": earlier})
        assert again.status_code == 200 and again.content == first.content
        # An If-Modified-Since that is no HTTP date is ignored, as RFC 9110 says.
        assert (await http.get(path, headers={"if-modified-since": "yesterday"})).status_code == 200


async def test_a_change_is_republished_at_most_once_a_second(
        publisher: tuple[Datex2Simulator, httpx.AsyncClient], clock: Clock) -> None:
    sim, http = publisher
    first = await http.get(PUBLICATIONS["status"])
    before = {r.reference: r for r in read_status(first.content).records}
    assert sim.world.enter(HAMBURG, "HH-AB 1", "B")
    # Within the second of the last publication, the change waits: a client holding the
    # document would otherwise never learn of it (HTTP dates have whole seconds).
    same_second = await http.get(PUBLICATIONS["status"], headers={"if-modified-since": first.headers["last-modified"]})
    assert same_second.status_code == 304
    clock.tick()
    changed = await http.get(PUBLICATIONS["status"], headers={"if-modified-since": first.headers["last-modified"]})
    assert changed.status_code == 200
    assert parse_http_date(changed.headers["last-modified"]) == clock.now
    after = {r.reference: r for r in read_status(changed.content).records}
    site, level = VENDOR_IDS[HAMBURG], f"{VENDOR_IDS[HAMBURG]}-B"
    assert after[site].occupied == before[site].occupied + 1 and after[level].occupied == before[level].occupied + 1
    # Each record says when its own figures last changed: the untouched level keeps its time.
    assert after[site].last_updated == after[level].last_updated == clock.now
    assert after[f"{site}-A"].last_updated == before[f"{site}-A"].last_updated < clock.now


async def test_the_table_never_changes_while_it_runs(
        publisher: tuple[Datex2Simulator, httpx.AsyncClient], clock: Clock) -> None:
    sim, http = publisher
    first = await http.get(PUBLICATIONS["table"])
    assert sim.world.enter(HAMBURG, "HH-AB 2")
    clock.tick(60)
    later = await http.get(PUBLICATIONS["table"], headers={"if-modified-since": first.headers["last-modified"]})
    assert later.status_code == 304
