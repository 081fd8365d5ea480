"""The LPR adapter against its simulator over real HTTP: mapping, handheld times, paging, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from adapters.base import SystemSpec
from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from adapters.lpr import LprAdapter
from adapters.lpr.simulator import OMIT, VENDOR_IDS, LprSimulator, LprState, SimZone, create_simulator
from adapters.models import Citation, EnforcementZone, GeoPoint, Money, SystemKind
from adapters.simulated.harness import FaultMode
from adapters.simulated.world import World
from tests.support.vendors import LPR_CREDENTIALS

CITATIONS = "GET /api/v1/citations"
ZONES = "GET /api/v1/zones"


def adapter(url: str, credentials: dict[str, str] = LPR_CREDENTIALS, page_size: int = 3, **spec: float) -> LprAdapter:
    return LprAdapter(
        SystemSpec(
            id="enforcement", kind=SystemKind.ENFORCEMENT, dialect="lpr", base_url=url,
            credentials=credentials, options={"page_size": page_size}, **spec,
        )
    )


def since_all() -> datetime:
    return datetime.now(UTC) - timedelta(days=400)


async def test_zones_map_every_field_across_pages(sim: tuple[LprSimulator, str]) -> None:
    simulator, url = sim
    lpr = adapter(url, page_size=2)
    try:
        batch = await lpr.zones()
    finally:
        await lpr.aclose()
    assert batch.errors == []
    assert batch.items == [
        EnforcementZone("10", "Hauptbahnhof Garage", 180),
        EnforcementZone("11", "Alexanderplatz Parkhaus", 120),
        EnforcementZone("20", "Elbphilharmonie Garage", 240),
    ]
    assert {z.vendor_id for z in batch.items} == set(VENDOR_IDS.values())
    assert simulator.control.requests[ZONES] == 2  # three zones, two to a page


async def test_citation_maps_every_field(sim: tuple[LprSimulator, str]) -> None:
    simulator, url = sim
    at = datetime(2026, 11, 27, 8, 43, tzinfo=UTC)  # 09:43 in Berlin (CET)
    issued = simulator.state.issue("10", at=at, plate="B-XY 1234", region="DE-BE", violation_code="V12")
    lpr = adapter(url)
    try:
        batch = await lpr.citations(at - timedelta(minutes=1))
    finally:
        await lpr.aclose()
    assert batch.errors == []
    [citation] = [c for c in batch.items if c.number == issued.number]
    assert citation == Citation(
        number=issued.number,
        issued_at=at,
        plate="B-XY 1234",
        region="DE-BE",
        violation_code="V12",
        violation="Parking without valid ticket",
        fine=Money(Decimal("30.00"), "EUR"),
        zone_id="10",
        location=GeoPoint(issued.latitude, issued.longitude),
        status="ISSUED",
        version=1,
    )
    assert isinstance(citation.fine.amount, Decimal) and str(citation.fine.amount) == "30.00"
    assert issued.number.startswith("HBF-2026-")


@pytest.mark.parametrize(
    ("issue_date", "issue_time", "expected"),
    [
        ("2026-11-27", "0143A", datetime(2026, 11, 27, 0, 43, tzinfo=UTC)),  # CET, +01:00
        ("2026-11-27", "1207P", datetime(2026, 11, 27, 11, 7, tzinfo=UTC)),  # 12 P is the noon hour
        ("2026-11-27", "1200A", datetime(2026, 11, 26, 23, 0, tzinfo=UTC)),  # 12 A is the midnight hour
        ("2026-11-27", "1159P", datetime(2026, 11, 27, 22, 59, tzinfo=UTC)),
        ("2026-07-15", "0915A", datetime(2026, 7, 15, 7, 15, tzinfo=UTC)),  # CEST, +02:00
        ("2026-03-29", "0143A", datetime(2026, 3, 29, 0, 43, tzinfo=UTC)),  # before clocks go forward at 02:00
        ("2026-03-29", "0343A", datetime(2026, 3, 29, 1, 43, tzinfo=UTC)),  # after: two local hours, one real
        ("2026-10-25", "0343A", datetime(2026, 10, 25, 2, 43, tzinfo=UTC)),  # after clocks went back at 03:00
        ("2026-10-25", "0243A", datetime(2026, 10, 25, 0, 43, tzinfo=UTC)),  # twice that night: the first one
        ("2026-03-29", "0243A", datetime(2026, 3, 29, 1, 43, tzinfo=UTC)),  # never that night: the old offset
    ],
)
async def test_handheld_times_become_utc_in_the_zone_time_zone(
    sim: tuple[LprSimulator, str], issue_date: str, issue_time: str, expected: datetime
) -> None:
    simulator, url = sim
    issued = simulator.state.issue("11", wire={"issueDate": issue_date, "issueTime": issue_time})
    lpr = adapter(url)
    try:
        batch = await lpr.citations(datetime.now(UTC) - timedelta(minutes=5))
    finally:
        await lpr.aclose()
    assert batch.errors == []
    [citation] = [c for c in batch.items if c.number == issued.number]
    assert citation.issued_at == expected
    assert citation.issued_at.utcoffset() == timedelta(0)


async def test_simulator_prints_handheld_times_and_the_adapter_reads_them_back(
    sim: tuple[LprSimulator, str],
) -> None:
    simulator, url = sim
    noon = simulator.state.issue("20", at=datetime(2026, 11, 27, 11, 7, tzinfo=UTC))  # 12:07 in Hamburg
    summer = simulator.state.issue("20", at=datetime(2026, 7, 1, 22, 30, tzinfo=UTC))  # 00:30 next day, CEST
    async with httpx.AsyncClient(base_url=url, auth=("parkgate", "correct horse")) as raw:
        response = await raw.get(
            "/api/v1/citations",
            params={"since": "2026-01-01T00:00:00+0000", "size": 100},
            headers={"X-API-Key": "lpr-test-key"},
        )
    body = response.json()
    wire = {c["citationNumber"]: c for c in body["content"]}
    assert (wire[noon.number]["issueDate"], wire[noon.number]["issueTime"]) == ("2026-11-27", "1207P")
    assert (wire[summer.number]["issueDate"], wire[summer.number]["issueTime"]) == ("2026-07-02", "1230A")
    assert wire[noon.number]["lastModified"] == "2026-11-27T11:07:00+0000"

    lpr = adapter(url)
    try:
        batch = await lpr.citations(datetime(2026, 1, 1, tzinfo=UTC))
    finally:
        await lpr.aclose()
    by_number = {c.number: c for c in batch.items}
    assert by_number[noon.number].issued_at == noon.issued_at
    assert by_number[summer.number].issued_at == summer.issued_at


async def test_citations_page_to_the_end_newest_first(sim: tuple[LprSimulator, str]) -> None:
    simulator, url = sim
    expected = simulator.state.newest_first(None)
    assert len(expected) >= 30  # a few dozen seeded over the last three days
    lpr = adapter(url)
    try:
        batch = await lpr.citations(since_all())
    finally:
        await lpr.aclose()
    assert batch.errors == []
    assert [c.number for c in batch.items] == [c.number for c in expected]
    assert [c.issued_at for c in batch.items] == sorted((c.issued_at for c in batch.items), reverse=True)
    pages = -(-len(expected) // 3)
    assert simulator.control.requests[CITATIONS] == pages
    assert simulator.control.requests[ZONES] == 1  # time zones learnt once


async def test_since_filters_on_the_issue_instant(sim: tuple[LprSimulator, str]) -> None:
    simulator, url = sim
    since = (datetime.now(UTC) - timedelta(hours=20)).replace(microsecond=0)
    lpr = adapter(url, page_size=100)
    try:
        recent = await lpr.citations(since)
        again = await lpr.citations(since)
    finally:
        await lpr.aclose()
    expected = simulator.state.newest_first(since)
    assert 0 < len(recent.items) < len(simulator.state.citations)
    assert [c.number for c in recent.items] == [c.number for c in expected]
    assert all(c.issued_at >= since for c in recent.items)
    assert again.items == recent.items
    assert simulator.control.requests[ZONES] == 1  # the second call reuses the zones' time zones


async def test_a_bad_since_is_refused_spring_style(sim: tuple[LprSimulator, str]) -> None:
    _, url = sim
    async with httpx.AsyncClient(base_url=url, auth=("parkgate", "correct horse")) as raw:
        for since in ("2026-11-27T09:14:03Z", "2026-11-27T09:14:03+00:00", "yesterday"):
            response = await raw.get("/api/v1/citations", params={"since": since}, headers={"X-API-Key": "lpr-test-key"})
            assert response.status_code == 400
            assert response.json()["error"] == "Bad Request"
            assert response.json()["path"] == "/api/v1/citations"


async def test_a_zone_the_adapter_has_not_seen_is_learnt_on_the_fly(sim: tuple[LprSimulator, str]) -> None:
    simulator, url = sim
    lpr = adapter(url, page_size=100)
    try:
        await lpr.zones()
        old = simulator.state.zones["20"]
        simulator.state.zones["30"] = SimZone(
            "30", "Dublin Docklands", 90, "Europe/Dublin", "Dublin", "EUR", 53.3478, -6.2597, "DUB", old.created_at
        )
        issued = simulator.state.issue("30", wire={"issueDate": "2026-11-27", "issueTime": "0914A"})
        batch = await lpr.citations(datetime.now(UTC) - timedelta(minutes=5))
    finally:
        await lpr.aclose()
    [citation] = [c for c in batch.items if c.number == issued.number]
    assert citation.issued_at == datetime(2026, 11, 27, 9, 14, tzinfo=UTC)  # Dublin is on UTC in winter
    assert simulator.control.requests[ZONES] == 2


@pytest.mark.parametrize(
    "wire",
    [
        {"issueTime": "1375P"},  # no 13 on a 12-hour clock
        {"issueTime": "0000A"},
        {"issueTime": "9:14A"},
        {"issueDate": "27.11.2026"},
        {"fineCents": 29.99},  # money is never a float
        {"plate": OMIT},
        {"zoneCode": "99"},  # a zone the platform does not list: no time zone to place it in
        {"gps": {"lat": "52.5", "lon": 13.4}},
    ],
)
async def test_a_malformed_citation_is_one_record_error(sim: tuple[LprSimulator, str], wire: dict) -> None:
    simulator, url = sim
    bad = simulator.state.issue("10", wire=wire)
    lpr = adapter(url)
    try:
        batch = await lpr.citations(since_all())
    finally:
        await lpr.aclose()
    assert len(batch.errors) == 1
    [error] = batch.errors
    assert (error.system_id, error.record_ref) == ("enforcement", bad.number)
    assert error.message
    assert len(batch.items) == len(simulator.state.citations) - 1
    assert bad.number not in {c.number for c in batch.items}


async def test_missing_optional_fields_stay_none(sim: tuple[LprSimulator, str]) -> None:
    simulator, url = sim
    issued = simulator.state.issue("10", wire={"gps": None, "fineCents": None, "plateRegion": OMIT, "version": OMIT})
    lpr = adapter(url)
    try:
        batch = await lpr.citations(datetime.now(UTC) - timedelta(minutes=5))
    finally:
        await lpr.aclose()
    [citation] = [c for c in batch.items if c.number == issued.number]
    assert (citation.location, citation.fine, citation.region, citation.version) == (None, None, None, 1)


@pytest.mark.parametrize(
    "credentials",
    [
        {**LPR_CREDENTIALS, "api_key": "wrong"},
        {**LPR_CREDENTIALS, "password": "wrong"},
        {**LPR_CREDENTIALS, "username": "someone"},
    ],
)
async def test_bad_credentials_are_an_upstream_error(sim: tuple[LprSimulator, str], credentials: dict) -> None:
    simulator, url = sim
    lpr = adapter(url, credentials=credentials)
    try:
        with pytest.raises(UpstreamError) as raised:
            await lpr.zones()
    finally:
        await lpr.aclose()
    assert type(raised.value) is UpstreamError
    assert "401" in str(raised.value)
    assert credentials["password"] not in str(raised.value) and credentials["api_key"] not in str(raised.value)
    assert simulator.control.requests[ZONES] == 1


async def test_the_simulator_answers_401_spring_style(sim: tuple[LprSimulator, str]) -> None:
    _, url = sim
    async with httpx.AsyncClient(base_url=url) as raw:
        no_key = await raw.get("/api/v1/zones", auth=("parkgate", "correct horse"))
        no_basic = await raw.get("/api/v1/citations", headers={"X-API-Key": "lpr-test-key"})
        good = await raw.get("/api/v1/zones", auth=("parkgate", "correct horse"), headers={"X-API-Key": "lpr-test-key"})
    for response, path in ((no_key, "/api/v1/zones"), (no_basic, "/api/v1/citations")):
        assert response.status_code == 401
        body = response.json()
        assert {k: body[k] for k in ("status", "error", "path")} == {"status": 401, "error": "Unauthorized", "path": path}
        assert datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%S%z")
    assert good.status_code == 200
    assert {"content", "totalPages", "totalElements", "number", "size", "last"} <= good.json().keys()


async def test_page_size_is_capped_at_100(sim: tuple[LprSimulator, str]) -> None:
    _, url = sim
    async with httpx.AsyncClient(base_url=url, auth=("parkgate", "correct horse")) as raw:
        response = await raw.get("/api/v1/citations", params={"size": 500}, headers={"X-API-Key": "lpr-test-key"})
    assert response.json()["size"] == 100


@pytest.mark.parametrize(
    ("mode", "error"),
    [(FaultMode.DOWN, UpstreamUnavailable), (FaultMode.ERROR, UpstreamError)],
)
async def test_faults_map_to_upstream_errors(sim: tuple[LprSimulator, str], mode: FaultMode, error: type) -> None:
    simulator, url = sim
    simulator.control.set_fault(mode)
    lpr = adapter(url)
    try:
        with pytest.raises(UpstreamError) as raised:
            await lpr.citations(since_all())
    finally:
        await lpr.aclose()
    assert type(raised.value) is error


async def test_a_slow_platform_times_out(sim: tuple[LprSimulator, str]) -> None:
    simulator, url = sim
    simulator.control.set_fault(FaultMode.SLOW, delay_ms=500)
    lpr = adapter(url, timeout_s=0.1)
    try:
        with pytest.raises(UpstreamTimeout):
            await lpr.zones()
    finally:
        await lpr.aclose()


async def test_the_simulator_keeps_issuing_in_real_time() -> None:
    simulator = create_simulator(World(), "enforcement", LPR_CREDENTIALS)
    state = simulator.state
    before = len(state.citations)
    state.advance(datetime.now(UTC) + timedelta(hours=1))
    added = state.citations[before:]
    assert 8 <= len(added) <= 35  # one every two to six minutes
    assert all(c.issued_at.second == 0 for c in added)



def test_the_same_seed_gives_the_same_citations() -> None:
    zones = list(create_simulator(World(), "enforcement", LPR_CREDENTIALS).state.zones.values())
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    one, two = LprState(zones, seed=7, now=now), LprState(zones, seed=7, now=now)
    assert [c.to_wire() for c in one.citations] == [c.to_wire() for c in two.citations]
    assert {c.zone.code for c in one.citations} == set(VENDOR_IDS.values())
