"""ParkLine adapter against the ParkLine simulator, over real HTTP on loopback.

Both sides of the wire are ours, so these tests pin the contract from both ends: what the
simulator puts on the wire (read raw with httpx) and what the adapter makes of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.base import SystemSpec
from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from adapters.models import (
    Address,
    FacilityKind,
    GeoPoint,
    Money,
    OccupancyMethod,
    OccupancyStatus,
    QuoteRequest,
    RateKind,
    SystemKind,
    ZoneRecord,
)
from adapters.parkline import ParklineAdapter
from adapters.parkline.simulator import VENDOR_IDS, ParklineSimulator, create_simulator
from adapters.simulated.harness import FaultMode
from adapters.simulated.world import World
from tests.support.servers import serve

KEY = "pl-test-key-7f3a"
WINTER = datetime(2026, 11, 27, 9, 14, 3, tzinfo=UTC)  # London on GMT: +00:00
SUMMER = datetime(2026, 7, 15, 8, 30, 0, tzinfo=UTC)  # London on BST: +01:00
PRICE = "GET /v2/carparks/{code}/price"


def simulator(clock: datetime | None = None) -> ParklineSimulator:
    return create_simulator(World(seed=7), "parcs-london", {"api_key": KEY}, clock=(lambda: clock) if clock else None)


@asynccontextmanager
async def connected(sim: ParklineSimulator, key: str = KEY, **spec: Any) -> AsyncIterator[ParklineAdapter]:
    """The simulator served on loopback and an adapter for it (page_size 1 unless told)."""
    spec.setdefault("options", {"page_size": 1})
    async with serve(sim.app) as url:
        adapter = ParklineAdapter(
            SystemSpec(
                id="parcs-london",
                kind=SystemKind.PARCS,
                dialect="parkline",
                base_url=url,
                credentials={"api_key": key},
                **spec,
            )
        )
        try:
            yield adapter
        finally:
            await adapter.aclose()


# --- facilities and paging ---------------------------------------------------------------


async def test_facilities_maps_every_carpark_following_link_headers() -> None:
    sim = simulator()
    async with connected(sim) as adapter:
        batch = await adapter.facilities()

    assert batch.errors == []
    by_code = {record.vendor_id: record for record in batch.items}
    assert list(by_code) == ["KX01", "SB02", "ZZ99"]
    assert sim.control.requests["GET /v2/carparks"] == 3  # one item per page, no empty last page

    kx = by_code["KX01"]
    assert kx.name == "King's Cross Car Park"
    assert kx.capacity == 350
    assert kx.time_zone == "Europe/London"
    assert kx.address == Address(street="Pancras Road 5", postal_code="N1C 4AG", city="London", country="GB")
    assert kx.location == GeoPoint(51.5310, -0.1233)
    assert kx.zones == (
        ZoneRecord("L0", "Level 0", FacilityKind.LEVEL, 180),
        ZoneRecord("L1", "Level 1", FacilityKind.LEVEL, 170),
    )
    assert by_code["SB02"].address == Address("Belvedere Road 2", "SE1 8XX", "London", "GB")

    # decommissioned: still listed, without spaces or coordinates, and that is not an error
    zz = by_code["ZZ99"]
    assert (zz.capacity, zz.location, zz.zones) == (None, None, ())
    assert zz.address is not None and zz.address.postal_code == "EC1V 9NR"


async def test_next_link_host_is_not_trusted() -> None:
    sim = simulator()
    sim.backend.public_url = "http://parkline.invalid"  # as a vendor behind a proxy advertises
    async with connected(sim) as adapter, httpx.AsyncClient(headers={"X-Api-Key": KEY}) as client:
        raw = await client.get(f"{adapter.spec.base_url}/v2/carparks", params={"per_page": 1})
        batch = await adapter.facilities()
    assert raw.headers["link"] == '<http://parkline.invalid/v2/carparks?page=2&per_page=1>; rel="next"'
    assert [record.vendor_id for record in batch.items] == ["KX01", "SB02", "ZZ99"]
    assert sim.control.requests["GET /v2/carparks"] == 4  # the raw call, then three pages from us


async def test_wire_paging_defaults_and_maximum() -> None:
    sim = simulator()
    async with serve(sim.app) as url, httpx.AsyncClient(base_url=url, headers={"X-Api-Key": KEY}) as client:
        first = await client.get("/v2/carparks", params={"per_page": 2})
        last = await client.get("/v2/carparks", params={"per_page": 2, "page": 2})
        everything = await client.get("/v2/carparks", params={"per_page": 500})  # clamped to 100
    assert [item["code"] for item in first.json()] == ["KX01", "SB02"]
    assert first.headers["link"] == f'<{url}/v2/carparks?page=2&per_page=2>; rel="next"'
    assert [item["code"] for item in last.json()] == ["ZZ99"]
    assert "link" not in last.headers
    assert len(everything.json()) == 3 and "link" not in everything.headers


async def test_default_page_size_needs_one_call_per_list() -> None:
    sim = simulator()
    async with connected(sim, options={}) as adapter:
        await adapter.facilities()
        await adapter.occupancy()
        await adapter.rates()
    assert sim.control.requests == {"GET /v2/carparks": 1, "GET /v2/carparks/occupancy": 1, "GET /v2/tariffs": 1}


# --- occupancy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "on_the_wire"),
    [(WINTER, "2026-11-27T09:14:03+00:00"), (SUMMER, "2026-07-15T09:30:00+01:00")],
)
async def test_occupancy_counted_without_free_and_local_times_in_utc(clock: datetime, on_the_wire: str) -> None:
    sim = simulator(clock)
    async with connected(sim) as adapter, httpx.AsyncClient(headers={"X-Api-Key": KEY}) as client:
        raw = await client.get(f"{adapter.spec.base_url}/v2/carparks/occupancy")
        before = datetime.now(UTC)
        batch = await adapter.occupancy()

    assert raw.json()[0]["updated"] == on_the_wire
    assert batch.errors == []
    assert sim.control.requests["GET /v2/carparks/occupancy"] == 3  # two pages of one, then the raw call
    readings = {reading.vendor_facility_id: reading for reading in batch.items}
    assert set(readings) == {"KX01", "SB02"}
    for garage_key, code in VENDOR_IDS.items():
        reading = readings[code]
        state = sim.world.garages[garage_key]  # as the simulator last saw it, not advanced again
        assert reading.method is OccupancyMethod.COUNTED
        assert reading.zone_id is None
        assert reading.capacity == state.spec.capacity
        assert reading.occupied == state.counted_occupied
        assert reading.free is None  # ParkLine sends no free count; the gateway derives it
        assert reading.observed_at == clock and reading.observed_at.tzinfo is UTC
        assert before <= reading.received_at <= datetime.now(UTC)
        assert reading.status in (OccupancyStatus.OPEN, OccupancyStatus.FULL)
        assert isinstance(reading.entries, int) and reading.entries >= 0
        assert isinstance(reading.exits, int) and reading.exits >= 0


async def test_closed_carpark_and_missing_timestamp() -> None:
    sim = simulator(WINTER)
    sim.backend.closed.add("SB02")
    sim.backend.patch_occupancy("KX01", updated=None)
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    readings = {reading.vendor_facility_id: reading for reading in batch.items}
    assert batch.errors == []
    assert readings["SB02"].status is OccupancyStatus.CLOSED
    assert readings["KX01"].observed_at is None  # never invented from our clock


async def test_one_malformed_record_does_not_sink_the_batch() -> None:
    sim = simulator(WINTER)
    sim.backend.patch_occupancy("SB02", updated="n/a")
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert [reading.vendor_facility_id for reading in batch.items] == ["KX01"]
    assert batch.items[0].observed_at == WINTER
    assert len(batch.errors) == 1
    error = batch.errors[0]
    assert (error.system_id, error.record_ref) == ("parcs-london", "SB02")
    assert "n/a" in error.message


async def test_records_without_a_code_are_named_by_position() -> None:
    sim = simulator(WINTER)
    sim.backend.extra_occupancy += [{"present": "many"}, "not an object"]
    async with connected(sim) as adapter:
        batch = await adapter.occupancy()
    assert len(batch.items) == 2
    assert [error.record_ref for error in batch.errors] == ["#2", "#3"]


# --- rates and quotes --------------------------------------------------------------------


async def test_rates_in_pence_become_decimals() -> None:
    sim = simulator()
    async with connected(sim) as adapter:
        batch = await adapter.rates()
    assert batch.errors == []
    assert sim.control.requests["GET /v2/tariffs"] == 2
    kx = next(table for table in batch.items if table.vendor_facility_id == "KX01")
    assert kx.currency == "GBP"
    cap = Money(Decimal("32.00"), "GBP")
    assert [(line.kind, line.description, line.amount, line.up_to_minutes, line.max_amount) for line in kx.lines] == [
        (RateKind.TIERED, "Up to 1 h", Money(Decimal("4.50"), "GBP"), 60, cap),
        (RateKind.TIERED, "Up to 2 h", Money(Decimal("8.00"), "GBP"), 120, cap),
        (RateKind.TIERED, "Up to 4 h", Money(Decimal("14.00"), "GBP"), 240, cap),
        (RateKind.TIERED, "Up to 12 h", Money(Decimal("26.00"), "GBP"), 720, cap),
        (RateKind.FLAT, "Night rate", Money(Decimal("10.00"), "GBP"), None, None),
    ]
    assert str(kx.lines[0].amount.amount) == "4.50"  # exact, two places, never a float
    sb = next(table for table in batch.items if table.vendor_facility_id == "SB02")
    assert sb.lines[0].description == "Up to 30 min"


def window(code: str, start: datetime, minutes: int) -> QuoteRequest:
    return QuoteRequest(code, start, start + timedelta(minutes=minutes))


async def test_quotes_are_band_prices_in_order() -> None:
    sim = simulator(SUMMER)
    start = datetime(2026, 7, 16, 8, 0, tzinfo=UTC)
    cases = [
        (window("KX01", start, 45), "4.50"),
        (window("KX01", start, 60), "4.50"),  # a band covers stays up to and including its length
        (window("KX01", start, 61), "8.00"),
        (window("KX01", start, 5 * 60), "26.00"),
        (window("KX01", start, 13 * 60), "32.00"),  # beyond the last band: one started day
        (window("KX01", start, 25 * 60), "64.00"),  # two started days
        (window("SB02", start, 20), "2.50"),
        (window("SB02", start, 90), "10.00"),
    ]
    async with connected(sim) as adapter:
        quotes = await adapter.quotes([request for request, _ in cases])

    assert sim.control.requests[PRICE] == len(cases)
    for (request, expected), quote in zip(cases, quotes, strict=True):
        assert (quote.vendor_facility_id, quote.starts_at, quote.ends_at) == (
            request.vendor_facility_id,
            request.starts_at,
            request.ends_at,
        )
        assert quote.price == Money(Decimal(expected), "GBP"), request
        assert quote.unavailable_reason is None
        assert quote.expires_at == SUMMER + timedelta(minutes=15)
    # the adapter asked in London summer time, as ParkLine wants
    assert sim.backend.price_requests[0] == {"arrive": "2026-07-16T09:00:00+01:00", "depart": "2026-07-16T09:45:00+01:00"}


async def test_quotes_the_vendor_cannot_price_get_a_reason() -> None:
    sim = simulator(WINTER)
    sim.backend.closed.add("SB02")
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    requests = [
        window("KX01", start, 30),
        window("NOPE", start, 30),
        QuoteRequest("KX01", start, start - timedelta(hours=1)),
        window("SB02", start, 30),
        window("ZZ99", start, 30),
    ]
    async with connected(sim) as adapter:
        quotes = await adapter.quotes(requests)
    assert quotes[0].price == Money(Decimal("4.50"), "GBP")
    assert [quote.unavailable_reason for quote in quotes[1:]] == [
        "unknown_carpark",
        "depart_before_arrive",
        "closed",
        "closed",
    ]
    assert all(quote.price is None and quote.expires_at is None for quote in quotes[1:])
    assert sim.control.requests[PRICE] == 4  # a reversed window is refused without a call


async def test_wire_price_rejections() -> None:
    sim = simulator(WINTER)
    async with serve(sim.app) as url, httpx.AsyncClient(base_url=url, headers={"X-Api-Key": KEY}) as client:
        reversed_ = await client.get(
            "/v2/carparks/KX01/price", params={"arrive": "2026-12-01T10:00:00+00:00", "depart": "2026-12-01T09:00:00+00:00"}
        )
        unknown = await client.get(
            "/v2/carparks/NOPE/price", params={"arrive": "2026-12-01T10:00:00+00:00", "depart": "2026-12-01T11:00:00+00:00"}
        )
        naive = await client.get("/v2/carparks/KX01/price", params={"arrive": "2026-12-01T10:00:00", "depart": "x"})
        ok = await client.get(
            "/v2/carparks/KX01/price", params={"arrive": "2026-12-01T10:00:00Z", "depart": "2026-12-01T11:30:00Z"}
        )
    assert (reversed_.status_code, reversed_.json()) == (422, {"reason": "depart_before_arrive"})
    assert (unknown.status_code, unknown.json()) == (404, {"reason": "unknown_carpark"})
    assert naive.status_code == 400
    assert ok.json() == {
        "code": "KX01",
        "arrive": "2026-12-01T10:00:00+00:00",
        "depart": "2026-12-01T11:30:00+00:00",
        "price_minor": 800,
        "currency": "GBP",
        "quote_expires": "2026-11-27T09:29:03+00:00",
    }


async def test_at_most_four_price_calls_at_once() -> None:
    sim = simulator()
    sim.backend.price_delay_ms = 100
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    requests = [window("KX01", start, 30 + i) for i in range(10)]
    async with connected(sim) as adapter:
        quotes = await adapter.quotes(requests)
    assert len(quotes) == 10 and all(quote.price is not None for quote in quotes)
    assert sim.control.requests[PRICE] == 10
    assert sim.backend.max_prices_in_flight == 4  # concurrent, but capped


# --- auth and faults ---------------------------------------------------------------------


async def test_wrong_key_is_an_upstream_error_after_a_plain_403() -> None:
    sim = simulator()
    async with connected(sim, key="wrong") as adapter:
        with pytest.raises(UpstreamError) as caught:
            await adapter.facilities()
        async with httpx.AsyncClient(base_url=adapter.spec.base_url) as client:
            wrong = await client.get("/v2/carparks", headers={"X-Api-Key": "wrong"})
            missing = await client.get("/v2/tariffs")
    assert type(caught.value) is UpstreamError
    assert "403" in str(caught.value) and "wrong" not in str(caught.value)
    assert sim.control.requests["GET /v2/carparks"] == 2
    for response in (wrong, missing):
        assert (response.status_code, response.text) == (403, "Forbidden")
        assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("mode", "error"),
    [(FaultMode.DOWN, UpstreamUnavailable), (FaultMode.ERROR, UpstreamError), (FaultMode.SLOW, UpstreamTimeout)],
)
async def test_faults_map_to_upstream_errors(mode: FaultMode, error: type[UpstreamError]) -> None:
    sim = simulator()
    sim.control.set_fault(mode, delay_ms=500)
    async with connected(sim, timeout_s=0.1) as adapter:
        for call in (adapter.facilities(), adapter.occupancy(), adapter.rates()):
            with pytest.raises(UpstreamError) as caught:
                await call
            assert type(caught.value) is error
        with pytest.raises(UpstreamError) as caught:
            await adapter.quotes([window("KX01", datetime(2026, 12, 1, 10, tzinfo=UTC), 30)] * 6)
        assert type(caught.value) is error
