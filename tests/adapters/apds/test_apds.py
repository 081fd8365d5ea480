"""The APDS adapter against its simulator, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.apds import ApdsAdapter
from adapters.apds.simulator import REMOVE, VENDOR_IDS, ApdsSimulator, create_simulator
from adapters.base import SystemSpec
from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from adapters.models import (
    FacilityKind,
    Money,
    OccupancyMethod,
    OccupancyStatus,
    QuoteRequest,
    RateKind,
    SystemKind,
)
from adapters.simulated.harness import FaultMode
from adapters.simulated.world import World
from tests.support.servers import serve

TOKEN = "apds-sandbox-token"
HBF, MITTE, HOTEL, ELBE = (VENDOR_IDS[k] for k in ("berlin-hbf", "berlin-mitte", "berlin-spree-hotel", "hamburg-elbe"))
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@asynccontextmanager
async def apds(token: str = TOKEN, **spec: Any) -> AsyncIterator[tuple[ApdsSimulator, ApdsAdapter, str]]:
    """A running simulator and an adapter pointed at it (page size 2, so lists really page)."""
    sim = create_simulator(World(seed=11), "parcs-central", {"token": TOKEN})
    async with serve(sim.app) as url:
        adapter = ApdsAdapter(SystemSpec(
            id="parcs-central", kind=SystemKind.PARCS, dialect="apds", base_url=url,
            credentials={"token": token}, options={"page_size": 2}, **spec,
        ))
        try:
            yield sim, adapter, url
        finally:
            await adapter.aclose()


def window(place_id: str, minutes: int) -> QuoteRequest:
    return QuoteRequest(place_id, T0, T0 + timedelta(minutes=minutes))


async def test_places_mapped_with_levels_and_time_zone_across_pages() -> None:
    async with apds() as (sim, adapter, _):
        batch = await adapter.facilities()
    assert batch.errors == []
    by_id = {f.vendor_id: f for f in batch.items}
    assert set(by_id) == set(VENDOR_IDS.values())
    assert all(f.time_zone == "Europe/Berlin" for f in batch.items)
    hbf = by_id[HBF]
    assert hbf.name == "Hauptbahnhof Garage" and hbf.capacity == 820 and hbf.version == 3
    assert [(z.vendor_id, z.kind, z.capacity) for z in hbf.zones] == [
        ("P1", FacilityKind.LEVEL, 300), ("P2", FacilityKind.LEVEL, 280), ("P3", FacilityKind.LEVEL, 240)
    ]
    assert hbf.address is not None and hbf.address.city == "Berlin" and hbf.address.country == "DE"
    assert hbf.location is not None and (hbf.location.latitude, hbf.location.longitude) == (52.5251, 13.3694)
    assert len(by_id[ELBE].zones) == 2
    # four places at two per page: two calls, not one and not four
    assert sim.control.requests["GET /apds/v1/places"] == 2


async def test_occupancy_counted_live_with_negative_free_and_hamburg_without_clock() -> None:
    async with apds() as (sim, adapter, _):
        garage = sim.world.garages["berlin-hbf"]
        garage.counter_drift += 2_000  # exits the gate loop missed: the counter runs far over capacity
        garage.exits -= 2_000
        before = datetime.now(UTC)
        batch = await adapter.occupancy()
    assert batch.errors == []
    by_id = {r.vendor_facility_id: r for r in batch.items}
    assert set(by_id) == set(VENDOR_IDS.values())
    assert sim.control.requests["GET /apds/v1/occupancy"] == 2

    hbf = by_id[HBF]
    assert hbf.method is OccupancyMethod.COUNTED and hbf.zone_id is None
    assert hbf.capacity == 820 and hbf.occupied is not None and hbf.occupied > 2_000
    assert hbf.free == 820 - hbf.occupied and hbf.free < 0  # passed through, not clamped
    assert hbf.status is OccupancyStatus.FULL
    assert hbf.entries is not None and hbf.exits is not None
    assert hbf.entries - hbf.exits == hbf.occupied  # one counter, and it is what the PARCS believes

    assert by_id[ELBE].observed_at is None  # no clock on that controller: never invented
    assert by_id[MITTE].observed_at is not None and by_id[MITTE].observed_at.tzinfo is not None
    assert all(r.received_at >= before.replace(microsecond=0) for r in batch.items)
    assert by_id[MITTE].status is OccupancyStatus.OPEN


async def test_occupancy_sums_counters_and_maps_closed() -> None:
    async with apds() as (sim, adapter, _):
        sim.state.closed.add("berlin-mitte")
        sim.state.raw_overrides[("occupancy", HOTEL)] = {
            "counters": [{"counterId": "north", "entries": 10, "exits": 4}, {"counterId": "south", "entries": 7, "exits": 1}],
            "status": "maintenance",  # not in the contract: no status rather than a guess
        }
        batch = await adapter.occupancy()
    by_id = {r.vendor_facility_id: r for r in batch.items}
    assert by_id[MITTE].status is OccupancyStatus.CLOSED
    assert (by_id[HOTEL].entries, by_id[HOTEL].exits, by_id[HOTEL].status) == (17, 5, None)


async def test_one_malformed_record_is_an_error_and_the_rest_stand() -> None:
    async with apds() as (sim, adapter, _):
        sim.state.raw_overrides[("occupancy", MITTE)] = {"observedAt": "2026-11-27 09:14:03"}  # not the wire format
        sim.state.raw_overrides[("places", HOTEL)] = {"hierarchyElements": "U1", "timeZone": REMOVE}
        sim.state.extra_records["places"] = ["not a place"]
        occupancy = await adapter.occupancy()
        places = await adapter.facilities()
    assert [(e.system_id, e.record_ref) for e in occupancy.errors] == [("parcs-central", MITTE)]
    assert "observedAt" in occupancy.errors[0].message
    assert {r.vendor_facility_id for r in occupancy.items} == {HBF, HOTEL, ELBE}

    assert sorted(e.record_ref for e in places.errors) == sorted([HOTEL, "#4"])
    assert {f.vendor_id for f in places.items} == {HBF, MITTE, ELBE}
    assert sim.control.requests["GET /apds/v1/places"] == 3  # five records, two per page


async def test_rates_per_garage() -> None:
    async with apds() as (_, adapter, _):
        batch = await adapter.rates()
    assert batch.errors == []
    by_id = {t.vendor_facility_id: t for t in batch.items}
    assert set(by_id) == set(VENDOR_IDS.values())
    elbe = by_id[ELBE]
    assert elbe.currency == "EUR" and elbe.valid_from == datetime(2026, 3, 1, tzinfo=UTC)
    tier, hourly, day = elbe.lines
    assert (tier.kind, tier.up_to_minutes, tier.amount) == (RateKind.TIERED, 30, Money(Decimal("0.00"), "EUR"))
    assert (hourly.kind, hourly.period_minutes, hourly.amount, hourly.max_amount) == (
        RateKind.INCREMENTING, 60, Money(Decimal("2.50"), "EUR"), Money(Decimal("24.00"), "EUR")
    )
    assert (day.kind, day.amount.amount, day.description) == (RateKind.FLAT, Decimal("18.00"), "Day ticket")
    # every garage its own tariff
    assert len({t.lines[1].amount.amount for t in batch.items}) == 4


async def test_quotes_priced_from_the_tariff_in_request_order() -> None:
    requests = [
        window(ELBE, 20),  # inside the free 30 minutes
        window(ELBE, 30),  # the free tier includes its end
        window(ELBE, 31),  # one started hour after the free tier: 2.50
        window(ELBE, 120),  # 90 minutes after the free tier: 2 started hours, 5.00
        window(ELBE, 25 * 60),  # first 24 h: 24 hours * 2.50 capped at 24.00; then 1 hour: 2.50
        window(MITTE, 120),  # 90 minutes after 30 free, per started 30 minutes at 1.50: 4.50
        window(MITTE, 10 * 60),  # 570 minutes: 19 * 1.50 = 28.50, capped at 20.00
        window(HBF, 76),  # 61 minutes after 15 free: 2 started hours at 3.00
        window("00000000-0000-0000-0000-000000000000", 60),
        QuoteRequest(HBF, T0, T0),  # empty window
        QuoteRequest(HBF, T0, T0 - timedelta(hours=1)),  # backwards
    ]
    async with apds() as (sim, adapter, _):
        before = datetime.now(UTC).replace(microsecond=0)
        quotes = await adapter.quotes(requests)
    assert [q.vendor_facility_id for q in quotes] == [r.vendor_facility_id for r in requests]
    assert [(q.starts_at, q.ends_at) for q in quotes] == [(r.starts_at, r.ends_at) for r in requests]
    prices = [q.price.amount if q.price else q.unavailable_reason for q in quotes]
    assert prices == [
        Decimal("0.00"), Decimal("0.00"), Decimal("2.50"), Decimal("5.00"), Decimal("26.50"),
        Decimal("4.50"), Decimal("20.00"), Decimal("6.00"),
        "UNKNOWN_PLACE", "INVALID_WINDOW", "INVALID_WINDOW",
    ]
    priced = [q for q in quotes if q.price]
    assert all(q.price.currency == "EUR" for q in priced)
    assert all(q.expires_at and before + timedelta(minutes=15) <= q.expires_at <= datetime.now(UTC) + timedelta(minutes=15)
               for q in priced)
    assert all(q.expires_at is None for q in quotes if not q.price)
    assert sim.control.requests["POST /apds/v1/quotes"] == 1


async def test_quotes_closed_and_chunked_by_100() -> None:
    requests = [window(HOTEL, 10 + i) for i in range(150)] + [window(MITTE, 60)]
    async with apds() as (sim, adapter, _):
        sim.state.closed.add("berlin-mitte")
        quotes = await adapter.quotes(requests)
        assert await adapter.quotes([]) == []
    assert sim.control.requests["POST /apds/v1/quotes"] == 2
    assert len(quotes) == 151
    # hotel: 10 free minutes, then 4.00 per started hour
    assert quotes[0].price == Money(Decimal("0.00"), "EUR")
    assert quotes[1].price == Money(Decimal("4.00"), "EUR")  # 11 minutes
    assert quotes[70].price == Money(Decimal("8.00"), "EUR")  # 80 minutes: 70 after the free tier
    assert quotes[149].price == Money(Decimal("12.00"), "EUR")  # 159 minutes: 149 after
    assert (quotes[150].price, quotes[150].unavailable_reason) == (None, "CLOSED")


async def test_bad_token_is_an_upstream_error_and_the_simulator_said_401() -> None:
    async with apds(token="not-the-token") as (sim, adapter, url):
        with pytest.raises(UpstreamError) as caught:
            await adapter.facilities()
        assert type(caught.value) is UpstreamError and "credentials" in caught.value.detail
        assert "not-the-token" not in str(caught.value)
        assert sim.control.requests["GET /apds/v1/places"] == 1
        async with httpx.AsyncClient(base_url=url) as client:
            wrong = await client.get("/apds/v1/places", headers={"Authorization": "Token not-the-token"})
            missing = await client.get("/apds/v1/places")
            other_scheme = await client.get("/apds/v1/places", headers={"Authorization": f"Bearer {TOKEN}"})
    for response in (wrong, missing, other_scheme):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Token"
        assert response.json()["error"]["code"] == "unauthorized"


async def test_simulator_rejects_bad_requests_with_400() -> None:
    auth = {"Authorization": f"Token {TOKEN}"}
    async with apds() as (_, _, url):
        async with httpx.AsyncClient(base_url=url, headers=auth) as client:
            answers = [
                await client.get("/apds/v1/places", params={"limit": 51}),
                await client.get("/apds/v1/places", params={"limit": 0}),
                await client.get("/apds/v1/occupancy", params={"offset": "-1"}),
                await client.post("/apds/v1/quotes", content=b"{not json"),
                await client.post("/apds/v1/quotes", json={"requests": "all"}),
                await client.post("/apds/v1/quotes", json={"requests": [{"placeId": HBF, "from": "yesterday", "to": "2026-11-27T10:00:00Z"}]}),
                await client.post("/apds/v1/quotes", json={"requests": [
                    {"placeId": HBF, "from": "2026-11-27T09:00:00Z", "to": "2026-11-27T10:00:00Z"}] * 101}),
            ]
            default = await client.get("/apds/v1/places")
            tail = await client.get("/apds/v1/places", params={"offset": 3, "limit": 50})
    for response in answers:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "bad_request"
    assert default.json()["meta"] == {"total": 4, "offset": 0, "limit": 20}
    assert [p["id"] for p in tail.json()["data"]] == [ELBE]


async def test_fault_modes_map_to_upstream_errors() -> None:
    async with apds(timeout_s=0.2) as (sim, adapter, _):
        sim.control.set_fault(FaultMode.DOWN)
        with pytest.raises(UpstreamUnavailable):
            await adapter.occupancy()
        sim.control.set_fault(FaultMode.ERROR)
        with pytest.raises(UpstreamError) as caught:
            await adapter.rates()
        assert type(caught.value) is UpstreamError
        sim.control.set_fault(FaultMode.SLOW, delay_ms=600)
        with pytest.raises(UpstreamTimeout):
            await adapter.quotes([window(HBF, 60)])
        sim.control.set_fault(FaultMode.OK)
        assert len((await adapter.occupancy()).items) == 4  # and it recovers
