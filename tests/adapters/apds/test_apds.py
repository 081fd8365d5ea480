"""The APDS adapter against its simulator over real HTTP: places, occupancy, rates, quotes, and
every request and answer validated against the APDS document (harness.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.apds import wire
from adapters.apds.pages import Page, walk
from adapters.apds.simulator import REMOVE, VENDOR_IDS
from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from adapters.models import FacilityKind, Money, OccupancyMethod, OccupancyStatus, QuoteRequest, RateKind
from adapters.simulated.harness import FaultMode
from tests.adapters.apds.harness import TOKEN, apds

HBF, MITTE, HOTEL, ELBE = (VENDOR_IDS[k] for k in ("berlin-hbf", "berlin-mitte", "berlin-spree-hotel", "hamburg-elbe"))


def soon(hours: float = 1, length: float = 2) -> QuoteRequest:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)
    return QuoteRequest(HBF, start, start + timedelta(hours=length))


async def test_places_with_their_levels_read_page_by_page_from_one_view() -> None:
    async with apds() as a:
        batch = await a.adapter.facilities()
        a.assert_conforms()
    assert batch.errors == []
    by_id = {f.vendor_id: f for f in batch.items}
    assert set(by_id) == set(VENDOR_IDS.values())  # the campuses (layer 0) are not facilities
    hbf = by_id[HBF]
    assert hbf.name == "Hauptbahnhof Garage" and hbf.capacity == 820 and hbf.version == 3
    assert hbf.time_zone == "Europe/Berlin"
    assert [(z.vendor_id, z.kind, z.capacity) for z in hbf.zones] == [
        ("P1", FacilityKind.LEVEL, 300), ("P2", FacilityKind.LEVEL, 280), ("P3", FacilityKind.LEVEL, 240)]
    assert hbf.address is not None and (hbf.address.street, hbf.address.city, hbf.address.country) == (
        "Europaplatz 1", "Berlin", "DE")
    assert hbf.location is not None and (hbf.location.latitude, hbf.location.longitude) == (52.5251, 13.3694)
    pages = [x for x in a.recorder.exchanges if x.path == "/places"]
    # 2 campuses, 4 places, 8 levels at 2 a page; from the second page on, the first page's view is asked for
    assert len(pages) == 7
    assert all(dict(x.query).get("referenceInstant") for x in pages[1:]) and "referenceInstant" not in dict(pages[0].query)
    assert all(x.headers.get("x-mcc-access-token") == TOKEN for x in a.recorder.exchanges)


async def test_occupancy_is_the_counted_demand_with_a_drifting_counter_and_a_controller_without_clock() -> None:
    async with apds() as a:
        garage = a.sim.world.garages["berlin-hbf"]
        garage.counter_drift += 2_000  # exits the gate loop missed: the counter runs far over capacity
        before = datetime.now(UTC).replace(microsecond=0)
        batch = await a.adapter.occupancy()
        a.assert_conforms()
    readings = {r.vendor_facility_id: r for r in batch.items}
    assert batch.errors == [] and set(readings) == set(VENDOR_IDS.values())
    hbf = readings[HBF]
    assert hbf.method is OccupancyMethod.COUNTED and hbf.capacity == 820
    assert hbf.occupied is not None and hbf.occupied > 2_000 and hbf.free is None  # APDS reports no free count
    assert hbf.status is OccupancyStatus.FULL and hbf.observed_at is not None and hbf.observed_at >= before
    assert hbf.entries is None and hbf.exits is None  # APDS has no gate counters
    # Hamburg's controller has no clock: no timestamp on its demand table, none invented
    assert readings[ELBE].observed_at is None and readings[ELBE].received_at >= before
    assert readings[ELBE].occupied is not None


async def test_one_places_occupancy_is_read_alone_and_reads_as_the_lists_does() -> None:
    """`occupancy_at` (an event renews one garage: gateway/events/renewals.py): GET /places/{id} with its
    occupancy expanded, checked against the APDS document like every exchange, mapped as the list maps it."""
    async with apds() as a:
        a.sim.world.garages["berlin-hbf"].counter_drift += 2_000  # a count no other garage has
        listed = {r.vendor_facility_id: r for r in (await a.adapter.occupancy()).items}
        alone = await a.adapter.occupancy_at([HBF, ELBE])
        alone_reads = sorted((e.path, dict(e.query).get("expand")) for e in a.recorder.exchanges if e.path.startswith("/places/"))
        assert alone_reads == sorted([(f"/places/{HBF}", "occupancy"), (f"/places/{ELBE}", "occupancy")])
        a.assert_conforms()
    assert alone.errors == [] and [r.vendor_facility_id for r in alone.items] == [HBF, ELBE]
    for reading in alone.items:
        assert replace(reading, received_at=listed[reading.vendor_facility_id].received_at) == listed[reading.vendor_facility_id]
    assert a.adapter.occupancy_by_facility


async def test_a_closed_place_and_a_malformed_one() -> None:
    async with apds() as a:
        a.sim.state.closed.add("berlin-mitte")
        a.sim.state.raw_overrides[("places", HOTEL)] = {"timeZone": REMOVE}  # breaks the document: Place needs it
        batch = await a.adapter.occupancy()
        described = await a.adapter.facilities()
        a.sim.state.raw_overrides.clear()
    readings = {r.vendor_facility_id: r for r in batch.items}
    assert readings[MITTE].status is OccupancyStatus.CLOSED
    assert [e.record_ref for e in described.errors] == [HOTEL] and len(described.items) == 3


async def test_rates_are_the_walk_in_specifications_rate_tables() -> None:
    async with apds() as a:
        batch = await a.adapter.rates()
        a.assert_conforms()
    assert batch.errors == []
    tables = {t.vendor_facility_id: t for t in batch.items}
    assert set(tables) == set(VENDOR_IDS.values())
    hbf = tables[HBF]
    assert hbf.currency == "EUR" and hbf.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert [(line.kind, line.amount.amount, line.up_to_minutes, line.period_minutes) for line in hbf.lines] == [
        (RateKind.TIERED, Decimal("0.00"), 15, None), (RateKind.INCREMENTING, Decimal("3.00"), None, 60),
        (RateKind.FLAT, Decimal("25.00"), None, None)]
    assert hbf.lines[1].max_amount == Money(Decimal("30.00"), "EUR")


async def test_some_places_rates_are_asked_with_the_lists_place_filter() -> None:
    async with apds() as a:
        whole = {t.vendor_facility_id: t for t in (await a.adapter.rates()).items}
        a.recorder.exchanges.clear()
        batch = await a.adapter.rates_at([MITTE, HBF])
        a.assert_conforms()
    assert batch.errors == [] and {t.vendor_facility_id: t for t in batch.items} == {HBF: whole[HBF], MITTE: whole[MITTE]}
    listed = [dict(x.query) for x in a.recorder.exchanges if x.path == "/rates"]
    assert listed and all(query["place"] == ",".join(sorted([HBF, MITTE])) for query in listed)


async def test_a_list_whose_pages_are_asked_side_by_side_is_whole_and_in_order() -> None:
    async with apds(options={"page_concurrency": 3}) as a:
        in_turn = await a.adapter.facilities()
        a.adapter._page_concurrency = 1
        assert await a.adapter.facilities() == in_turn
        a.assert_conforms()
    offsets = Counter(int(dict(x.query)["offset"]) for x in a.recorder.exchanges if x.path == "/places")
    # every page once per walk (pages of 2), none skipped, none twice
    assert len(offsets) > 3 and set(offsets) == set(range(0, max(offsets) + 1, 2)) and set(offsets.values()) == {2}


@pytest.mark.parametrize("short_at", [2, 4, 8])
async def test_a_page_that_comes_back_short_leaves_no_gap(short_at: int) -> None:
    """A platform may serve fewer records than asked on any page (a byte cap): the walk reads what
    the side-by-side pages left out, one page at a time, and gives every record once, in order."""
    records, asked = list(range(10)), []

    async def read(offset: int, reference: int | None) -> tuple[Page, wire.PageMeta]:
        asked.append(offset)
        size = 1 if offset == short_at else 2
        return Page(records[offset:offset + size], datetime.now(UTC)), wire.PageMeta(offset, 2, len(records), 7)

    pages = await walk(read, concurrency=3)
    assert [r for page in pages for r in page.records] == records
    assert asked.count(short_at + 1) == 1  # the gap, once


async def test_quotes_price_by_the_tariff_or_say_why_not() -> None:
    async with apds() as a:
        two_hours, closed_place = soon(), soon()
        a.sim.state.closed.add("berlin-mitte")
        quotes = await a.adapter.quotes([two_hours, QuoteRequest(MITTE, closed_place.starts_at, closed_place.ends_at),
                                         QuoteRequest("no-such-place", two_hours.starts_at, two_hours.ends_at)])
        a.assert_conforms()
    assert quotes[0].price == Money(Decimal("6.00"), "EUR") and quotes[0].expires_at is not None
    assert (quotes[1].price, quotes[1].unavailable_reason) == (None, "CLOSED")
    assert (quotes[2].price, quotes[2].unavailable_reason) == (None, "UNKNOWN_PLACE")
    posted = [x for x in a.recorder.exchanges if x.method == "POST"]
    assert len(posted) == 2  # one QuoteRightRequest per place the platform offers reservations at


async def test_a_fully_booked_window_is_no_availability() -> None:
    async with apds() as a:
        terms = a.sim.office.terms["berlin-hbf"]
        a.sim.office.terms["berlin-hbf"] = type(terms)(**{**terms.__dict__, "reservable": 0})
        [quote] = await a.adapter.quotes([soon()])
        a.assert_conforms()
    assert (quote.price, quote.unavailable_reason) == (None, "FULLY_BOOKED")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hours=st.floats(min_value=-48, max_value=24 * 400), length=st.floats(min_value=-5, max_value=24 * 40))
async def test_any_window_is_a_conforming_request_answered_with_a_price_or_a_reason(hours: float, length: float) -> None:
    async with apds() as a:
        [quote] = await a.adapter.quotes([soon(hours, length)])
        a.assert_conforms()
    assert (quote.price is None) != (quote.unavailable_reason is None)
    if quote.price is not None:
        assert quote.price.amount >= 0 and quote.price.currency == "EUR"


@given(st.decimals(min_value=Decimal(0), max_value=Decimal(100000), places=2))
def test_amounts_cross_the_wire_as_numbers_and_come_back_the_same_decimals(value: Decimal) -> None:
    body = wire.amount_body(Money(value, "EUR"))
    assert isinstance(body["currencyValue"], int | float)
    assert wire.amount(body, "value") == Money(value.quantize(Decimal("0.01")), "EUR")


async def test_a_missing_or_wrong_token_is_401_the_way_the_readme_says() -> None:
    async with apds(token="wrong") as a:
        with pytest.raises(UpstreamError, match="credentials"):
            await a.adapter.facilities()
        async with httpx.AsyncClient() as http:
            bare = await http.get(f"{a.url}/apds/v1/places")
        assert bare.status_code == 401 and bare.json()["status"] == "error"
        a.assert_conforms()


async def test_fault_modes_map_to_upstream_errors() -> None:
    async with apds(timeout_s=0.5, retries=0) as a:
        a.sim.control.set_fault(FaultMode.DOWN)
        with pytest.raises(UpstreamUnavailable):
            await a.adapter.occupancy()
        a.sim.control.set_fault(FaultMode.ERROR)
        with pytest.raises(UpstreamError):
            await a.adapter.occupancy()
        a.sim.control.set_fault(FaultMode.SLOW, 2000)
        with pytest.raises(UpstreamTimeout):
            await a.adapter.occupancy()


async def test_concurrent_quotes_read_the_specification_catalog_once() -> None:
    """Every write, quote and plate check needs the catalog; at a thousand garages it is dozens of
    pages, so requests that find it missing at once share one read of it, not one each."""
    def catalog_pages(a: Any) -> int:
        return sum(1 for x in a.recorder.exchanges if x.method == "GET" and x.path == "/rights/specs")

    async with apds() as alone:
        await alone.adapter.quotes([soon()])
    async with apds() as a:
        quotes = await asyncio.gather(*(a.adapter.quotes([soon()]) for _ in range(5)))
        a.assert_conforms()
    assert all(q[0].price == Money(Decimal("6.00"), "EUR") for q in quotes)
    assert catalog_pages(alone) > 1 and catalog_pages(a) == catalog_pages(alone)
