"""The sensor grid adapter against its simulator, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters.base import SystemSpec
from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from adapters.models import OccupancyMethod, OccupancyReading, OccupancyStatus, SystemKind, Trend
from adapters.sensorgrid import SensorGridAdapter
from adapters.sensorgrid.adapter import epoch_ms
from adapters.sensorgrid.simulator import DROP, QUIRKY_LEVEL, VENDOR_IDS, SensorGridSimulator, create_simulator
from adapters.simulated.harness import FaultMode
from adapters.simulated.world import GARAGES, World
from tests.support.servers import serve

CREDENTIALS = {"client_id": "parkgate", "client_secret": "s3cr3t-for-tests"}
TOKEN = "POST /oauth/token"
BELEGUNG = "GET /api/v3/belegung"
BASIC = (CREDENTIALS["client_id"], CREDENTIALS["client_secret"])
GARAGE_SPECS = {garage.key: garage for garage in GARAGES}
LEVELS = {  # level id -> (garage key, level index), as the vendor numbers them
    f"{site}-{n}": (key, n - 1)
    for key, site in VENDOR_IDS.items()
    for n in range(1, len(GARAGE_SPECS[key].levels) + 1)
}
LEVEL_PAGES = -(-len(LEVELS) // 2)  # pages of two


@pytest.fixture
def sim() -> SensorGridSimulator:
    return create_simulator(World(seed=3), "guidance", CREDENTIALS)


@asynccontextmanager
async def connected(
    sim: SensorGridSimulator, credentials: dict[str, str] = CREDENTIALS, **spec: Any
) -> AsyncIterator[SensorGridAdapter]:
    async with serve(sim.app) as url:
        adapter = SensorGridAdapter(
            SystemSpec(
                id="guidance",
                kind=SystemKind.GUIDANCE,
                dialect="sensor-grid",
                base_url=url,
                credentials=credentials,
                options={"page_size": 2},
                **spec,
            )
        )
        try:
            yield adapter
        finally:
            await adapter.aclose()


def levels(readings: list[OccupancyReading]) -> dict[str, OccupancyReading]:
    return {r.zone_id: r for r in readings if r.zone_id is not None}


def sites(readings: list[OccupancyReading]) -> dict[str, OccupancyReading]:
    return {r.vendor_facility_id: r for r in readings if r.zone_id is None}


# --- paging and mapping ---------------------------------------------------------------


async def test_occupancy_pages_through_every_level(sim: SensorGridSimulator) -> None:
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert batch.errors == []
    assert set(levels(batch.items)) == set(LEVELS)
    assert set(sites(batch.items)) == set(VENDOR_IDS.values())
    assert sim.control.requests[BELEGUNG] == LEVEL_PAGES
    assert sim.control.requests[TOKEN] == 1


async def test_readings_agree_with_the_world_within_sensor_noise(sim: SensorGridSimulator) -> None:
    sim.grid.missing_timestamp_rate = 0
    async with connected(sim) as adapter:
        before = datetime.now(UTC)
        batch = await adapter.occupancy()
        after = datetime.now(UTC)
    by_level = levels(batch.items)
    for level_id, (key, index) in LEVELS.items():
        state = sim.world.snapshot(key)
        reading = by_level[level_id]
        assert reading.vendor_facility_id == VENDOR_IDS[key]
        assert reading.method is OccupancyMethod.SENSED
        assert reading.capacity == state.spec.levels[index].capacity
        assert abs(reading.occupied - state.occupied[index]) <= 1
        assert reading.free is None
        assert reading.trend == {1: Trend.FILLING, -1: Trend.EMPTYING, 0: Trend.STEADY}[state.trend]
        fill = reading.occupied / reading.capacity
        if fill >= 1:
            assert reading.status is OccupancyStatus.FULL
        elif fill >= 0.85:
            assert reading.status is OccupancyStatus.ALMOST_FULL
        else:
            assert reading.status is OccupancyStatus.SPACES_AVAILABLE
        assert before - timedelta(seconds=10) <= reading.observed_at <= after
    for site, total in sites(batch.items).items():
        parts = [r for r in by_level.values() if r.vendor_facility_id == site]
        key = next(k for k, s in VENDOR_IDS.items() if s == site)
        assert total.capacity == sum(p.capacity for p in parts) == sim.world.snapshot(key).spec.capacity
        assert total.occupied == sum(p.occupied for p in parts)
        assert abs(total.occupied - sim.world.snapshot(key).total_occupied) <= len(parts)
        assert total.observed_at == min(p.observed_at for p in parts)
        assert total.status is None
        assert total.trend == parts[0].trend  # every level of a site shares the site's trend


async def test_epoch_milliseconds_parse_as_numbers_and_as_strings(sim: SensorGridSimulator) -> None:
    sim.grid.missing_timestamp_rate = 0
    async with serve(sim.app) as url, httpx.AsyncClient(base_url=url) as raw:
        token = (await raw.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=BASIC)).json()
        bearer = {"authorization": f"Bearer {token['access_token']}"}
        wire = (await raw.get("/api/v3/belegung", params={"limit": 200}, headers=bearer)).json()
    kinds = {type(item["zeitstempel"]) for item in wire["items"]}
    assert kinds == {int, str}, "the simulator must send both forms"
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert batch.errors == []
    assert all(isinstance(r.observed_at, datetime) for r in batch.items)
    expected = datetime(2025, 11, 27, 9, 24, 3, 123000, tzinfo=UTC)
    assert epoch_ms(1764235443123) == epoch_ms("1764235443123") == expected


async def test_a_level_without_time_stays_without_time(sim: SensorGridSimulator) -> None:
    sim.grid.missing_timestamp_rate = 1
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert batch.errors == []
    quirky = levels(batch.items)[QUIRKY_LEVEL]
    assert quirky.observed_at is None
    assert quirky.occupied is not None  # the figures still stand
    totals = sites(batch.items)
    assert totals[quirky.vendor_facility_id].observed_at is None
    assert all(r.observed_at is not None for site, r in totals.items() if site != quirky.vendor_facility_id)


# --- tokens -------------------------------------------------------------------------------


async def test_one_token_serves_many_calls(sim: SensorGridSimulator) -> None:
    async with connected(sim) as adapter:
        for _ in range(3):
            assert (await adapter.occupancy()).errors == []
    assert sim.control.requests[TOKEN] == 1
    assert sim.control.requests[BELEGUNG] == 3 * LEVEL_PAGES


async def test_short_lived_tokens_are_renewed_before_they_expire(sim: SensorGridSimulator) -> None:
    sim.grid.tokens.lifetime_s = 1
    async with connected(sim) as adapter:
        await adapter.occupancy()
        await asyncio.sleep(1.1)
        batch = await adapter.occupancy()
    assert batch.errors == [] and len(levels(batch.items)) == len(LEVELS)
    assert sim.control.requests[TOKEN] == 2
    assert sim.control.requests[BELEGUNG] == 2 * LEVEL_PAGES  # renewed ahead: no call was refused


async def test_a_revoked_token_is_renewed_once_and_the_call_retried(sim: SensorGridSimulator) -> None:
    async with connected(sim) as adapter:
        await adapter.occupancy()
        sim.grid.tokens.revoke_all()
        batch = await adapter.occupancy()
    assert batch.errors == [] and len(levels(batch.items)) == len(LEVELS)
    assert sim.control.requests[TOKEN] == 2
    assert sim.control.requests[BELEGUNG] == 2 * LEVEL_PAGES + 1  # the refused page, asked again


async def test_concurrent_calls_on_a_cold_adapter_share_one_token_request(sim: SensorGridSimulator) -> None:
    async with connected(sim) as adapter:
        batches = await asyncio.gather(*(adapter.occupancy() for _ in range(20)))
        assert all(len(levels(b.items)) == len(LEVELS) for b in batches)
        assert sim.control.requests[TOKEN] == 1
        sim.grid.tokens.revoke_all()  # and when all of them are refused at once, one renewal
        await asyncio.gather(*(adapter.occupancy() for _ in range(20)))
        assert sim.control.requests[TOKEN] == 2


async def test_a_wrong_client_secret_is_an_upstream_error(sim: SensorGridSimulator) -> None:
    wrong = {**CREDENTIALS, "client_secret": "not-the-secret"}
    async with connected(sim, credentials=wrong) as adapter:
        with pytest.raises(UpstreamError) as caught:
            await adapter.occupancy()
    assert type(caught.value) is UpstreamError
    assert "not-the-secret" not in str(caught.value)
    assert sim.control.requests[BELEGUNG] == 0


async def test_a_failing_token_request_is_shared_too(sim: SensorGridSimulator) -> None:
    sim.control.set_fault(FaultMode.DOWN)
    async with connected(sim) as adapter:
        results = await asyncio.gather(*(adapter.occupancy() for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, UpstreamUnavailable) for r in results)
    assert sim.control.requests[TOKEN] == 1


# --- faults and bad records -----------------------------------------------------------------


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize(
    ("mode", "error"),
    [(FaultMode.DOWN, UpstreamUnavailable), (FaultMode.ERROR, UpstreamError), (FaultMode.SLOW, UpstreamTimeout)],
)
async def test_fault_modes_map_to_upstream_errors(
    sim: SensorGridSimulator, mode: FaultMode, error: type[UpstreamError], warm: bool
) -> None:
    async with connected(sim, timeout_s=0.2) as adapter:
        if warm:  # the token is cached: the fault hits the data call, not the token call
            await adapter.occupancy()
        sim.control.set_fault(mode, delay_ms=1000)
        with pytest.raises(UpstreamError) as caught:
            await adapter.occupancy()
    assert type(caught.value) is error


async def test_a_malformed_level_is_a_record_error_and_withholds_its_site_total(sim: SensorGridSimulator) -> None:
    sim.grid.override_level("12-2", belegt="viele")
    sim.grid.override_level("31-1", zeitstempel="gestern")
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert {e.record_ref for e in batch.errors} == {"level/12-2", "site/12", "level/31-1", "site/31"}
    assert all(e.system_id == "guidance" for e in batch.errors)
    assert set(levels(batch.items)) == set(LEVELS) - {"12-2", "31-1"}
    assert set(sites(batch.items)) == {"14", "15"}


async def test_missing_or_impossible_figures_are_record_errors(sim: SensorGridSimulator) -> None:
    sim.grid.override_level("14-1", stellplaetze=DROP)
    sim.grid.override_level("15-1", belegt=-3)  # the site's only level: no total either
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert [e.record_ref for e in batch.errors] == ["level/14-1", "level/15-1", "site/14", "site/15"]
    assert set(sites(batch.items)) == {"12", "31"}


async def test_a_level_record_without_a_site_withholds_every_total(sim: SensorGridSimulator) -> None:
    sim.grid.override_level("31-2", siteId=DROP)
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert [e.record_ref for e in batch.errors] == ["level/31-2"] + [f"site/{s}" for s in VENDOR_IDS.values()]
    assert set(levels(batch.items)) == set(LEVELS) - {"31-2"}
    assert sites(batch.items) == {}


async def test_unknown_labels_lose_only_the_label(sim: SensorGridSimulator) -> None:
    sim.grid.override_level("12-1", status="gesperrt", tendenz=DROP)
    sim.grid.override_level("12-2", status="Störung")
    sim.grid.override_level("12-3", status="geschlossen")
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert batch.errors == []
    by_level = levels(batch.items)
    assert (by_level["12-1"].status, by_level["12-1"].trend) == (OccupancyStatus.UNKNOWN, Trend.UNKNOWN)
    assert by_level["12-2"].status is OccupancyStatus.UNKNOWN
    assert by_level["12-3"].status is OccupancyStatus.CLOSED
    assert sites(batch.items)["12"].trend == by_level["12-2"].trend  # two of three levels agree


# --- the simulator's side of the contract ---------------------------------------------------


async def test_simulator_speaks_the_contract(sim: SensorGridSimulator) -> None:
    async with serve(sim.app) as url, httpx.AsyncClient(base_url=url) as raw:
        wrong_grant = await raw.post("/oauth/token", data={"grant_type": "password"}, auth=BASIC)
        assert (wrong_grant.status_code, wrong_grant.json()) == (400, {"error": "unsupported_grant_type"})
        wrong_client = await raw.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("parkgate", "x"))
        assert (wrong_client.status_code, wrong_client.json()) == (401, {"error": "invalid_client"})

        no_token = await raw.get("/api/v3/belegung")
        assert (no_token.status_code, no_token.json()) == (401, {"error": "invalid_token"})
        assert no_token.headers["www-authenticate"] == 'Bearer error="invalid_token"'

        token = (await raw.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=BASIC)).json()
        assert token["token_type"] == "Bearer" and token["expires_in"] == 300
        bearer = {"authorization": f"Bearer {token['access_token']}"}
        first = (await raw.get("/api/v3/sites", params={"limit": 3}, headers=bearer)).json()
        assert len(first["items"]) == 3 and not first["next_cursor"].isdigit()
        last = (await raw.get("/api/v3/sites", params={"cursor": first["next_cursor"]}, headers=bearer)).json()
        assert len(last["items"]) == 1 and last["next_cursor"] is None
        default = (await raw.get("/api/v3/belegung", headers=bearer)).json()
        assert len(default["items"]) == len(LEVELS) and default["next_cursor"] is None

        for cursor in ("nonsense", first["next_cursor"]):  # a sites cursor is no belegung cursor
            bad = await raw.get("/api/v3/belegung", params={"cursor": cursor}, headers=bearer)
            assert (bad.status_code, bad.json()) == (400, {"error": "invalid_cursor"})
