"""The Mews adapter against its simulator over real HTTP: stays with their guests' cars, paging, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from adapters.base import SystemSpec
from adapters.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from adapters.http import VendorHTTP
from adapters.mews import MewsAdapter
from adapters.mews.simulator import OMIT, VENDOR_IDS, MewsSimulator, MewsState, create_simulator
from adapters.mews.simulator.state import SimReservation, newest_first
from adapters.mews.simulator.webhooks import reservation_events
from adapters.mews.wire import STATES
from adapters.models import EventType, GuestStay, GuestStayState, HotelProperty, SystemKind
from adapters.simulated.harness import FaultMode
from adapters.simulated.world import World
from tests.support.servers import serve

CREDENTIALS = {"client_token": "mews-client-token", "access_token": "mews-portfolio-token", "webhook_token": "hook"}
BERLIN = VENDOR_IDS["berlin-spree-hotel"]
LONDON = VENDOR_IDS["london-southbank"]
RESERVATIONS = "POST /api/connector/v1/reservations/getAll/2023-06-06"
CUSTOMERS = "POST /api/connector/v1/customers/getAll"
ENTERPRISES = "POST /api/connector/v1/enterprises/getAll"
AUTH = {"ClientToken": "mews-client-token", "AccessToken": "mews-portfolio-token", "Client": "test"}


@pytest.fixture
async def sim() -> AsyncIterator[tuple[MewsSimulator, str]]:
    simulator = create_simulator(World(), "hotel-pms", CREDENTIALS)
    simulator.state.live = False  # no check-ins or bookings mid-test: counts stay exact
    async with serve(simulator.app) as url:
        yield simulator, url


def adapter(url: str, credentials: dict[str, str] = CREDENTIALS, page_size: int = 3, **spec: object) -> MewsAdapter:
    options = {"page_size": page_size, **spec.pop("options", {})}  # type: ignore[dict-item]
    return MewsAdapter(
        SystemSpec(
            id="hotel-pms", kind=SystemKind.HOSPITALITY, dialect="mews", base_url=url,
            credentials=credentials, options=options, **spec,  # type: ignore[arg-type]
        )
    )


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=10), now + timedelta(days=10)


def colliding(state: MewsState, since: datetime, until: datetime, hotel: str | None = None) -> list[SimReservation]:
    """What the PMS holds for a window (both ends included), newest first."""
    return newest_first([r for r in state.reservations.values()
                         if (hotel is None or r.enterprise.id == hotel) and r.start <= until and r.end >= since])


async def test_properties_map_every_field(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    mews = adapter(url, page_size=1)
    try:
        batch = await mews.properties()
    finally:
        await mews.aclose()
    assert batch.errors == []
    assert sorted(batch.items, key=lambda p: p.name) == [
        HotelProperty(BERLIN, "Spree Hotel Berlin", "Europe/Berlin"),
        HotelProperty(LONDON, "Thames Hotel London", "Europe/London"),
    ]
    # one a page: two full pages, then the empty one that says it was the last
    assert simulator.control.requests[ENTERPRISES] == 3


async def test_a_stay_maps_every_field(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    start = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    updated = datetime(2026, 11, 27, 8, 15, 42, tzinfo=UTC)
    booked = simulator.state.add_reservation(
        BERLIN, start=start, end=start + timedelta(days=2, hours=-4), state="Confirmed",
        first_name="Erika", last_name="Mustermann", car_registration="B-SP 4711", updated=updated,
    )
    mews = adapter(url)
    try:
        batch = await mews.stays(start - timedelta(days=1), start + timedelta(days=1))
    finally:
        await mews.aclose()
    assert batch.errors == []
    [stay] = [s for s in batch.items if s.vendor_id == booked.id]
    assert stay == GuestStay(
        vendor_id=booked.id,
        property_id=BERLIN,  # from the enterprise asked for: a 2023-06-06 Reservation does not name it
        state=GuestStayState.BOOKED,
        guest_name="Erika Mustermann",
        arrives_at=datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
        departs_at=datetime(2026, 11, 29, 10, 0, tzinfo=UTC),
        car_registration="B-SP 4711",  # the Customer's CarRegistrationNumber
        updated_at=updated,
    )


async def test_a_checked_in_stay_arrives_when_the_guest_did(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    now = datetime.now(UTC).replace(microsecond=0)
    early = simulator.state.add_reservation(LONDON, start=now + timedelta(hours=3), end=now + timedelta(days=1),
                                            state="Started")
    mews = adapter(url, page_size=1000)
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    [stay] = [s for s in batch.items if s.vendor_id == early.id]
    assert stay.state is GuestStayState.CHECKED_IN and stay.arrives_at == now  # ActualStartUtc, not the schedule


async def test_the_wire_speaks_the_documented_shapes(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    start = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    booked = simulator.state.add_reservation(LONDON, start=start, end=start + timedelta(days=1))
    async with httpx.AsyncClient(base_url=url) as raw:
        response = await raw.post(
            "/api/connector/v1/reservations/getAll/2023-06-06",
            json={**AUTH, "EnterpriseIds": [LONDON],
                  "CollidingUtc": {"StartUtc": "2026-11-27T00:00:00Z", "EndUtc": "2026-11-28T00:00:00Z"},
                  "Limitation": {"Count": 1000}},
        )
    assert response.headers["request-id"]
    reservations = response.json()["Reservations"]
    wire = next(r for r in reservations if r["Id"] == booked.id)
    assert wire["ScheduledStartUtc"] == "2026-11-27T14:00:00Z"  # YYYY-MM-DDThh:mm:ssZ (serialization.md)
    assert "EnterpriseId" not in wire  # as documented: the filter says which hotel
    assert {r["ServiceId"] for r in reservations} == {booked.enterprise.service_id}
    assert response.json()["Cursor"] == reservations[-1]["Id"]


#: every Service order state the reference page documents, and what parkgate makes of it
DOCUMENTED_STATES = [
    ("Inquired", GuestStayState.TENTATIVE),  # confirmed by neither side
    ("Optional", GuestStayState.TENTATIVE),  # by the hotel only (a room held)
    ("Requested", GuestStayState.TENTATIVE),  # by the guest only (wait list)
    ("Confirmed", GuestStayState.BOOKED),
    ("Started", GuestStayState.CHECKED_IN),
    ("Processed", GuestStayState.CHECKED_OUT),
    ("Canceled", GuestStayState.CANCELLED),
]


@pytest.mark.parametrize(("state", "expected"), DOCUMENTED_STATES)
async def test_every_documented_state_maps(sim: tuple[MewsSimulator, str], state: str, expected: GuestStayState) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    booked = simulator.state.add_reservation(LONDON, start=now, end=now + timedelta(days=1), state=state)
    mews = adapter(url, page_size=100)
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    assert batch.errors == []
    [stay] = [s for s in batch.items if s.vendor_id == booked.id]
    assert stay.state is expected


def test_the_states_tested_are_the_documented_ones() -> None:
    assert {state for state, _ in DOCUMENTED_STATES} == set(STATES)


async def test_stays_page_to_the_end_newest_first_with_their_guests(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    since, until = window()
    expected = colliding(simulator.state, since, until)
    assert len(expected) >= 60  # ~40 a hotel from a week ago to a week ahead
    mews = adapter(url)
    try:
        batch = await mews.stays(since, until)
    finally:
        await mews.aclose()
    assert batch.errors == []
    assert [s.vendor_id for s in batch.items] == [r.id for r in expected]
    updated = [s.updated_at for s in batch.items]
    assert updated == sorted(updated, reverse=True)  # type: ignore[type-var]
    # every stay carries its owner's name and car, as the PMS has them; a company's has neither
    for stay, reservation in zip(batch.items, expected, strict=True):
        assert stay.property_id == reservation.enterprise.id
        customer = reservation.customer
        if customer is None:
            assert (stay.guest_name, stay.car_registration) == (None, None)
        else:
            assert stay.guest_name == f"{customer.first_name} {customer.last_name}"
            assert stay.car_registration == customer.car_registration
    guests = [r for r in expected if r.customer is not None]
    assert len(guests) < len(expected)  # the seed has company bookings
    with_car = sum(1 for r in guests if r.customer and r.customer.car_registration)
    assert 0.4 < with_car / len(guests) < 0.8
    # each hotel paged three at a time to the end (a full last page costs one more, empty, call) ...
    per_hotel = [len(colliding(simulator.state, since, until, hotel)) for hotel in (BERLIN, LONDON)]
    assert simulator.control.requests[RESERVATIONS] == sum(n // 3 + 1 for n in per_hotel)
    # ... and all the guests in one call, the hotels once
    assert simulator.control.requests[CUSTOMERS] == 1
    assert simulator.control.requests[ENTERPRISES] == 1


async def test_the_hotels_are_asked_for_once_in_a_while(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    mews = adapter(url, page_size=1000)
    try:
        for _ in range(3):
            await mews.stays(*window())
    finally:
        await mews.aclose()
    assert simulator.control.requests[ENTERPRISES] == 1
    assert simulator.control.requests[RESERVATIONS] == 6


async def test_seeded_states_fit_the_present(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    mews = adapter(url, page_size=1000)
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    assert {s.state for s in batch.items} == set(GuestStayState)
    assert {r.state for r in simulator.state.reservations.values()} == set(STATES)
    for stay in batch.items:
        assert stay.arrives_at and stay.departs_at
        if stay.state is GuestStayState.CHECKED_OUT:
            assert stay.departs_at <= now
        elif stay.state is GuestStayState.CHECKED_IN:
            assert stay.arrives_at <= now < stay.departs_at
        elif stay.state in (GuestStayState.BOOKED, GuestStayState.TENTATIVE):
            assert now < stay.arrives_at
    assert {s.property_id for s in batch.items} == {BERLIN, LONDON}


async def test_enterprise_ids_option_narrows_the_hotels(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    mews = adapter(url, page_size=1000, options={"enterprise_ids": [LONDON]})
    try:
        batch = await mews.stays(*window())
        hotels = await mews.properties()
    finally:
        await mews.aclose()
    assert batch.items and {s.property_id for s in batch.items} == {LONDON}
    assert [h.vendor_id for h in hotels.items] == [LONDON]
    assert simulator.control.requests[RESERVATIONS] == 1


class ReshuffleAfterFirstPage(httpx.AsyncHTTPTransport):
    """Lets the PMS update the first page's last reservation while the adapter pages.

    Newest first, that reservation jumps to the front, and the cursor (its id) now points at
    the front: the next page repeats two of the first. The simulator does this on its own; the
    transport only picks the moment.
    """

    def __init__(self, simulator: MewsSimulator) -> None:
        super().__init__()
        self.simulator = simulator
        self.done = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if not self.done and request.url.path.endswith("/2023-06-06"):
            self.done = True
            await response.aread()
            cursor = httpx.Response(200, content=response.content).json()["Cursor"]
            newest = max(r.updated for r in self.simulator.state.reservations.values())
            self.simulator.state.reservations[cursor].updated = newest + timedelta(seconds=1)
        return response


async def test_a_reservation_updated_while_paging_comes_once_and_newest(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    since, until = window()
    before = colliding(simulator.state, since, until, BERLIN)
    moved = before[2].id  # the last of the first page of three
    http = VendorHTTP("hotel-pms", url, transport=ReshuffleAfterFirstPage(simulator))
    mews = MewsAdapter(
        SystemSpec(
            id="hotel-pms", kind=SystemKind.HOSPITALITY, dialect="mews", base_url=url,
            credentials=CREDENTIALS, options={"page_size": 3, "enterprise_ids": [BERLIN]},
        ),
        http=http,
    )
    try:
        batch = await mews.stays(since, until)
    finally:
        await mews.aclose()
    # the second page repeated two stays of the first; each comes once, newest first still holds
    ids = [s.vendor_id for s in batch.items]
    assert len(ids) == len(set(ids)) == len(before)
    assert set(ids) == {r.id for r in before} and moved in ids
    updated = [s.updated_at for s in batch.items]
    assert updated == sorted(updated, reverse=True)  # type: ignore[type-var]
    assert simulator.control.requests[RESERVATIONS] == (len(before) + 2) // 3 + 1


async def test_customers_are_fetched_in_chunks_of_1000(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    start = datetime(2027, 6, 1, 14, 0, tzinfo=UTC)  # clear of the seeded stays
    for n in range(1100):
        simulator.state.add_reservation(BERLIN, start=start, end=start + timedelta(days=1), last_name=f"Gast{n}")
    mews = adapter(url, page_size=1000)
    try:
        batch = await mews.stays(start - timedelta(hours=1), start + timedelta(hours=1))
    finally:
        await mews.aclose()
    assert len(batch.items) == 1100 and batch.errors == []
    assert all(s.guest_name and s.guest_name.startswith("Erika Gast") for s in batch.items)
    assert simulator.control.requests[CUSTOMERS] == 2
    assert simulator.control.requests[RESERVATIONS] == 3  # Berlin's two pages, London's empty one


async def test_a_window_over_three_months_is_refused_with_the_pms_message(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    since = datetime(2026, 11, 1, tzinfo=UTC)
    mews = adapter(url)
    try:
        ok = await mews.stays(since, datetime(2027, 2, 1, tzinfo=UTC))  # exactly three months
        with pytest.raises(UpstreamRejected) as raised:
            await mews.stays(since, datetime(2027, 2, 1, 0, 0, 1, tzinfo=UTC))
    finally:
        await mews.aclose()
    assert ok.items
    assert raised.value.status == 400 and "Invalid CollidingUtc" in str(raised.value)
    assert simulator.control.requests[CUSTOMERS] == 1  # nothing more after the refusal


@pytest.mark.parametrize("wire", [
    {"ScheduledStartUtc": "2026-11-27 15:00"},
    {"ScheduledStartUtc": "2026-11-27T15:00:00+01:00"},  # an offset is not UTC
    {"UpdatedUtc": 1764253800000},
    {"State": "CheckedIn"},  # not a documented state
    {"Id": OMIT},
    {"ScheduledEndUtc": None},  # documented as required
    {"AccountType": OMIT},
], ids=["no-T", "offset", "epoch", "state", "no-id", "no-end", "no-account-type"])
async def test_a_malformed_reservation_is_one_record_error(sim: tuple[MewsSimulator, str], wire: dict) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    bad = simulator.state.add_reservation(BERLIN, start=now, end=now + timedelta(days=1), wire=wire)
    since, until = window()
    mews = adapter(url)
    try:
        batch = await mews.stays(since, until)
    finally:
        await mews.aclose()
    assert len(batch.errors) == 1
    [error] = batch.errors
    assert error.system_id == "hotel-pms"
    assert error.record_ref.startswith("#") if "Id" in wire else error.record_ref == bad.id
    assert len(batch.items) == len(colliding(simulator.state, since, until)) - 1
    assert bad.id not in {s.vendor_id for s in batch.items}


async def test_a_malformed_customer_leaves_its_stay_without_a_guest(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    booked = simulator.state.add_reservation(
        BERLIN, start=now, end=now + timedelta(days=1), car_registration="B-SP 4711", customer_wire={"FirstName": 42}
    )
    mews = adapter(url)
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    assert [(e.record_ref, e.system_id) for e in batch.errors] == [(f"customer {booked.customer.id}", "hotel-pms")]  # type: ignore[union-attr]
    [stay] = [s for s in batch.items if s.vendor_id == booked.id]
    assert (stay.guest_name, stay.car_registration) == (None, None)


async def test_optional_fields_may_be_missing_or_null(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    booked = simulator.state.add_reservation(
        LONDON, start=now, end=now + timedelta(days=1), car_registration="  ", first_name=None,
        wire={"ActualStartUtc": OMIT, "ActualEndUtc": None, "BookerId": OMIT, "Purpose": OMIT, "QrCodeData": None},
        customer_wire={"FirstName": OMIT},
    )
    mews = adapter(url)
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    assert batch.errors == []
    [stay] = [s for s in batch.items if s.vendor_id == booked.id]
    assert (stay.guest_name, stay.car_registration) == ("Mustermann", None)  # a blank registration is none


@pytest.mark.parametrize("credentials", [{**CREDENTIALS, "access_token": "wrong"}, {**CREDENTIALS, "client_token": "x"}])
async def test_bad_tokens_are_an_upstream_error(sim: tuple[MewsSimulator, str], credentials: dict) -> None:
    simulator, url = sim
    mews = adapter(url, credentials=credentials)
    try:
        with pytest.raises(UpstreamError) as raised:
            await mews.properties()
    finally:
        await mews.aclose()
    assert type(raised.value) is UpstreamError
    assert "401" in str(raised.value) and "wrong" not in str(raised.value)
    assert simulator.control.requests[ENTERPRISES] == 1


async def test_the_simulator_checks_tokens_client_and_limitation(sim: tuple[MewsSimulator, str]) -> None:
    _, url = sim
    path = "/api/connector/v1/enterprises/getAll"
    cases = [
        ({**AUTH, "AccessToken": "nope", "Limitation": {"Count": 10}}, 401, "Invalid AccessToken."),
        ({**AUTH, "ClientToken": None, "Limitation": {"Count": 10}}, 401, "Invalid ClientToken."),
        ({k: v for k, v in AUTH.items() if k != "Client"} | {"Limitation": {"Count": 10}}, 400, "Invalid Client."),
        (AUTH, 400, "Invalid Limitation."),
        ({**AUTH, "Limitation": {"Count": 0}}, 400, None),
        ({**AUTH, "Limitation": {"Count": 1001}}, 400, None),
        ({**AUTH, "Limitation": {"Count": 10, "Cursor": "not-an-id"}}, 400, None),
        ({**AUTH, "EnterpriseIds": "all", "Limitation": {"Count": 10}}, 400, None),
    ]
    async with httpx.AsyncClient(base_url=url) as raw:
        for body, status, message in cases:
            response = await raw.post(path, json=body)
            assert response.status_code == status, body
            assert set(response.json()) == {"Message", "RequestId"}  # responses.md: error response details
            assert response.headers["request-id"] == response.json()["RequestId"]
            if message:
                assert response.json()["Message"] == message
        not_json = await raw.post(path, content=b'{"ClientToken": "a",}')  # a trailing comma is not JSON
        assert (not_json.status_code, not_json.json()["Message"]) == (400, "Invalid JSON.")
        get = await raw.get(path)
        assert get.status_code == 405


async def test_the_address_must_match_exactly(sim: tuple[MewsSimulator, str]) -> None:
    _, url = sim
    body = {**AUTH, "Limitation": {"Count": 10}}
    async with httpx.AsyncClient(base_url=url) as raw:
        for path in ("/api/connector/v1/enterprises/getAll/", "/api/connector/v1/Enterprises/getAll",
                     "/api/connector/v1/reservations/getAll/2023-06-07"):
            response = await raw.post(path, json=body)
            assert response.status_code == 404, path
            assert response.json()["Message"]


async def test_reservation_filters_as_documented(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    now = datetime.now(UTC).replace(microsecond=0)
    stay = simulator.state.add_reservation(BERLIN, start=now + timedelta(days=30), end=now + timedelta(days=31),
                                           state="Optional")
    path = "/api/connector/v1/reservations/getAll/2023-06-06"
    start = {"StartUtc": stay.start.strftime("%Y-%m-%dT%H:%M:%SZ"), "EndUtc": stay.start.strftime("%Y-%m-%dT%H:%M:%SZ")}
    async with httpx.AsyncClient(base_url=url) as raw:
        async def ids(**filters: object) -> list[str] | int:
            response = await raw.post(path, json={**AUTH, **filters, "Limitation": {"Count": 1000}})
            if response.status_code != 200:
                return response.status_code
            return [r["Id"] for r in response.json()["Reservations"]]

        assert await ids(ScheduledStartUtc=start) == [stay.id]  # an instant interval: both ends included
        assert await ids(States=["Optional"], AccountIds=[stay.account_id]) == [stay.id]
        assert await ids(States=["Confirmed"], AccountIds=[stay.account_id]) == []
        assert await ids(Numbers=[stay.number]) == [stay.id]
        assert await ids(EnterpriseIds=[LONDON], Numbers=[stay.number]) == []
        assert await ids(States=["Booked"]) == 400  # not a Service order state
        assert await ids(ScheduledStartUtc=start, ActualStartUtc=start) == 400
        assert await ids(PartnerCompanyIds=["x"] * 101) == 400
        optional = (await raw.post(path, json={**AUTH, "ReservationIds": [stay.id], "Limitation": {"Count": 1}})).json()
        assert optional["Reservations"][0]["ReleasedUtc"]  # an Optional stay says when the room is let go


async def test_customers_need_extent_and_on_a_portfolio_chain_ids(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    customer = next(c for c in simulator.state.customers.values() if c.car_registration)
    path = "/api/connector/v1/customers/getAll"
    base = {**AUTH, "CustomerIds": [customer.id], "Limitation": {"Count": 10}}
    extent = {"Customers": True, "Addresses": False}
    async with httpx.AsyncClient(base_url=url) as raw:
        assert (await raw.post(path, json={**base, "ChainIds": [customer.chain_id]})).status_code == 400  # no Extent
        assert (await raw.post(path, json={**base, "Extent": extent})).status_code == 400  # no ChainIds
        found = (await raw.post(path, json={**base, "Extent": extent, "ChainIds": [customer.chain_id]})).json()
        assert [c["CarRegistrationNumber"] for c in found["Customers"]] == [customer.car_registration]
        assert found["Customers"][0]["Address"] is None and found["Documents"] is None
        other_chain = next(c for c in simulator.state.customers.values() if c.chain_id != customer.chain_id).chain_id
        elsewhere = (await raw.post(path, json={**base, "Extent": extent, "ChainIds": [other_chain]})).json()
        assert elsewhere["Customers"] == [] and elsewhere["Cursor"] is None
        # Extent false: no data, but the cursor still comes (pagination.md)
        none = (await raw.post(path, json={**base, "Extent": {"Customers": False},
                                           "ChainIds": [customer.chain_id]})).json()
        assert none == {"Customers": [], "Documents": None, "Cursor": customer.id}
        no_filter = await raw.post(path, json={**AUTH, "Extent": extent, "ChainIds": [customer.chain_id],
                                               "Limitation": {"Count": 10}})
        assert no_filter.status_code == 400
        too_many = await raw.post(path, json={**base, "Extent": extent, "ChainIds": [customer.chain_id],
                                              "CustomerIds": [f"id-{n}" for n in range(1001)]})
        assert too_many.status_code == 400


async def test_an_empty_page_is_204_when_asked_for_minimal(sim: tuple[MewsSimulator, str]) -> None:
    _, url = sim
    body = {**AUTH, "ReservationIds": ["0f515589-99b4-423d-b83a-b237009f0509"], "Limitation": {"Count": 10}}
    async with httpx.AsyncClient(base_url=url) as raw:
        minimal = await raw.post("/api/connector/v1/reservations/getAll/2023-06-06", json=body,
                                 headers={"Prefer": "return=minimal"})
        full = await raw.post("/api/connector/v1/reservations/getAll/2023-06-06", json=body)
    assert (minimal.status_code, minimal.content, minimal.headers.get("content-type")) == (204, b"", None)
    assert minimal.headers["request-id"]
    assert full.json() == {"Reservations": [], "Cursor": None}


async def test_a_single_hotel_token_needs_no_chain() -> None:
    simulator = create_simulator(World(), "hotel-pms", CREDENTIALS, hotels=["berlin-spree-hotel"])
    simulator.state.live = False
    async with serve(simulator.app) as url:
        mews = adapter(url, page_size=1000)
        try:
            batch = await mews.stays(*window())
        finally:
            await mews.aclose()
    assert batch.errors == [] and {s.property_id for s in batch.items} == {BERLIN}
    assert any(s.car_registration for s in batch.items)


async def test_a_webhook_expands_into_the_stays_it_names(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    states = ("Confirmed", "Started", "Processed", "Canceled", "Optional", "Inquired", "Requested")
    stays = [simulator.state.add_reservation(BERLIN, start=now, end=now + timedelta(days=1), state=state,
                                             car_registration=f"B-WH {n}") for n, state in enumerate(states)]
    mews = adapter(url)
    try:
        events = []
        for stay in stays:
            body = reservation_events(BERLIN, stay.id, new_customer=stay.account_id)
            events += mews.verify_webhook({}, orjson.dumps(body), {"token": "hook"}, now)
        expanded = await mews.expand_webhook(events)
    finally:
        await mews.aclose()
    assert {e.payload["reservation_id"]: e.type for e in expanded} == {
        stays[0].id: EventType.GUEST_BOOKED, stays[1].id: EventType.GUEST_CHECKED_IN,
        stays[2].id: EventType.GUEST_CHECKED_OUT,
    }  # cancelled and tentative stays: no guest event
    [checked_in] = [e for e in expanded if e.type is EventType.GUEST_CHECKED_IN]
    assert checked_in.vendor_event_id == f"{stays[1].id}:CHECKED_IN" and checked_in.vendor_facility_id == BERLIN
    assert checked_in.payload["car_registration"] == "B-WH 1" and checked_in.payload["guest_name"] == "Erika Mustermann"
    # one reservations call for the enterprise (every id at once), one for the owners
    assert simulator.control.requests[RESERVATIONS] == 1 and simulator.control.requests[CUSTOMERS] == 1


@pytest.mark.parametrize(
    ("mode", "error"),
    [(FaultMode.DOWN, UpstreamUnavailable), (FaultMode.ERROR, UpstreamError)],
)
async def test_faults_map_to_upstream_errors(sim: tuple[MewsSimulator, str], mode: FaultMode, error: type) -> None:
    simulator, url = sim
    simulator.control.set_fault(mode)
    mews = adapter(url)
    try:
        with pytest.raises(UpstreamError) as raised:
            await mews.stays(*window())
    finally:
        await mews.aclose()
    assert type(raised.value) is error


async def test_a_slow_pms_times_out(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    simulator.control.set_fault(FaultMode.SLOW, delay_ms=500)
    mews = adapter(url, timeout_s=0.1)
    try:
        with pytest.raises(UpstreamTimeout):
            await mews.properties()
    finally:
        await mews.aclose()


def test_the_hotels_move_on_in_real_time() -> None:
    simulator = create_simulator(World(), "hotel-pms", CREDENTIALS)
    state = simulator.state
    before = len(state.reservations)
    later = datetime.now(UTC) + timedelta(days=2)
    state.advance(later)
    assert len(state.reservations) > before  # new bookings arrived
    for reservation in state.reservations.values():
        if reservation.state != "Canceled":
            if reservation.end <= later:
                assert reservation.state == "Processed" and reservation.actual_end
            elif reservation.start <= later:
                assert reservation.state == "Started" and reservation.actual_start
            elif reservation.release <= later:  # a tentative stay is confirmed or let go before arrival
                assert reservation.state == "Confirmed"
