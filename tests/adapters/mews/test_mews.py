"""The Mews adapter against its simulator over real HTTP: stays with their guests' cars, paging, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.base import SystemSpec
from adapters.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from adapters.http import VendorHTTP
from adapters.mews import MewsAdapter
from adapters.mews.simulator import OMIT, VENDOR_IDS, MewsSimulator, create_simulator
from adapters.models import GuestStay, GuestStayState, HotelProperty, SystemKind
from adapters.simulated.harness import FaultMode
from adapters.simulated.world import World
from tests.support.servers import serve

CREDENTIALS = {"client_token": "mews-client-token", "access_token": "mews-portfolio-token"}
BERLIN = VENDOR_IDS["berlin-spree-hotel"]
LONDON = VENDOR_IDS["london-southbank"]
RESERVATIONS = "POST /api/connector/v1/reservations/getAll/2023-06-06"
CUSTOMERS = "POST /api/connector/v1/customers/getAll"
ENTERPRISES = "POST /api/connector/v1/enterprises/getAll"


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
    updated = datetime(2026, 11, 27, 8, 15, 42, 123000, tzinfo=UTC)
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
        property_id=BERLIN,
        state=GuestStayState.BOOKED,
        guest_name="Erika Mustermann",
        arrives_at=datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
        departs_at=datetime(2026, 11, 29, 10, 0, tzinfo=UTC),
        car_registration="B-SP 4711",
        updated_at=updated,  # milliseconds kept
    )


async def test_the_wire_speaks_utc_with_milliseconds(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    start = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    booked = simulator.state.add_reservation(LONDON, start=start, end=start + timedelta(days=1))
    async with httpx.AsyncClient(base_url=url) as raw:
        response = await raw.post(
            "/api/connector/v1/reservations/getAll/2023-06-06",
            json={
                "ClientToken": "mews-client-token", "AccessToken": "mews-portfolio-token", "Client": "test",
                "EnterpriseIds": [LONDON],
                "CollidingUtc": {"StartUtc": "2026-11-27T00:00:00.000Z", "EndUtc": "2026-11-28T00:00:00.000Z"},
                "Limitation": {"Count": 1000},
            },
        )
    wire = next(r for r in response.json()["Reservations"] if r["Id"] == booked.id)
    assert wire["ScheduledStartUtc"] == "2026-11-27T14:00:00.000Z"
    assert {r["EnterpriseId"] for r in response.json()["Reservations"]} == {LONDON}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("Confirmed", GuestStayState.BOOKED),
        ("Started", GuestStayState.CHECKED_IN),
        ("Processed", GuestStayState.CHECKED_OUT),
        ("Canceled", GuestStayState.CANCELLED),
    ],
)
async def test_states_map(sim: tuple[MewsSimulator, str], state: str, expected: GuestStayState) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    booked = simulator.state.add_reservation(LONDON, start=now, end=now + timedelta(days=1), state=state)
    mews = adapter(url, page_size=100)
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    [stay] = [s for s in batch.items if s.vendor_id == booked.id]
    assert stay.state is expected


async def test_stays_page_to_the_end_newest_first_with_their_guests(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    since, until = window()
    expected = simulator.state.colliding(None, since, until)
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
    # every stay carries its customer's name and car, as the PMS has them
    for stay, reservation in zip(batch.items, expected, strict=True):
        customer = reservation.customer
        assert stay.guest_name == f"{customer.first_name} {customer.last_name}"
        assert stay.car_registration == customer.car_registration
    with_car = sum(1 for s in batch.items if s.car_registration)
    assert 0.4 < with_car / len(batch.items) < 0.8
    # paged three at a time to the end (a full last page costs one more, empty, call) ...
    assert simulator.control.requests[RESERVATIONS] == len(expected) // 3 + 1
    # ... and all the guests in one call
    assert simulator.control.requests[CUSTOMERS] == 1


async def test_seeded_states_fit_the_present(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    mews = adapter(url, page_size=1000)
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    states = {s.state for s in batch.items}
    assert states == set(GuestStayState)
    for stay in batch.items:
        assert stay.arrives_at and stay.departs_at
        if stay.state is GuestStayState.CHECKED_OUT:
            assert stay.departs_at <= now
        elif stay.state is GuestStayState.CHECKED_IN:
            assert stay.arrives_at <= now < stay.departs_at
        elif stay.state is GuestStayState.BOOKED:
            assert now < stay.arrives_at
    assert {s.property_id for s in batch.items} == {BERLIN, LONDON}


async def test_enterprise_ids_option_narrows_the_hotels(sim: tuple[MewsSimulator, str]) -> None:
    _, url = sim
    mews = adapter(url, page_size=1000, options={"enterprise_ids": [LONDON]})
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    assert batch.items and {s.property_id for s in batch.items} == {LONDON}


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
            self.simulator.state.reservations[cursor].updated = datetime.now(UTC)
        return response


async def test_a_reservation_updated_while_paging_comes_once_and_newest(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    since, until = window()
    before = simulator.state.colliding(None, since, until)
    moved = before[2].id  # the last of the first page of three
    http = VendorHTTP("hotel-pms", url, transport=ReshuffleAfterFirstPage(simulator))
    mews = MewsAdapter(
        SystemSpec(
            id="hotel-pms", kind=SystemKind.HOSPITALITY, dialect="mews", base_url=url,
            credentials=CREDENTIALS, options={"page_size": 3},
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
    assert simulator.control.requests[RESERVATIONS] == 2


async def test_a_window_over_three_months_is_rejected_not_a_crash(sim: tuple[MewsSimulator, str]) -> None:
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
    assert raised.value.status == 400
    assert simulator.control.requests[CUSTOMERS] == 1  # nothing more after the refusal


@pytest.mark.parametrize(
    ("wire", "customer_wire"),
    [
        ({"ScheduledStartUtc": "2026-11-27 15:00"}, {}),
        ({"ScheduledStartUtc": "2026-11-27T15:00:00+01:00"}, {}),  # an offset is not UTC
        ({"UpdatedUtc": 1764253800000}, {}),
        ({"State": "Optional"}, {}),
        ({"Id": OMIT}, {}),
        ({"EnterpriseId": None}, {}),
    ],
)
async def test_a_malformed_reservation_is_one_record_error(
    sim: tuple[MewsSimulator, str], wire: dict, customer_wire: dict
) -> None:
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
    assert len(batch.items) == len(simulator.state.colliding(None, since, until)) - 1
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
    assert [(e.record_ref, e.system_id) for e in batch.errors] == [(f"customer {booked.customer.id}", "hotel-pms")]
    [stay] = [s for s in batch.items if s.vendor_id == booked.id]
    assert (stay.guest_name, stay.car_registration) == (None, None)


async def test_missing_times_stay_none(sim: tuple[MewsSimulator, str]) -> None:
    simulator, url = sim
    now = datetime.now(UTC)
    booked = simulator.state.add_reservation(
        LONDON, start=now, end=now + timedelta(days=1), car_registration=None, first_name=None,
        wire={"ScheduledEndUtc": None, "UpdatedUtc": OMIT},
    )
    mews = adapter(url)
    try:
        batch = await mews.stays(*window())
    finally:
        await mews.aclose()
    assert batch.errors == []
    [stay] = [s for s in batch.items if s.vendor_id == booked.id]
    assert (stay.departs_at, stay.updated_at, stay.car_registration) == (None, None, None)
    assert stay.guest_name == "Mustermann"
    assert batch.items[-1] is stay  # no UpdatedUtc sorts last


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
    base = {"ClientToken": "mews-client-token", "AccessToken": "mews-portfolio-token", "Client": "test"}
    path = "/api/connector/v1/enterprises/getAll"
    cases = [
        ({**base, "AccessToken": "nope", "Limitation": {"Count": 10}}, 401, "Invalid AccessToken."),
        ({**base, "ClientToken": None, "Limitation": {"Count": 10}}, 401, "Invalid ClientToken."),
        ({k: v for k, v in base.items() if k != "Client"} | {"Limitation": {"Count": 10}}, 400, None),
        (base, 400, None),  # no Limitation
        ({**base, "Limitation": {"Count": 0}}, 400, None),
        ({**base, "Limitation": {"Count": 1001}}, 400, None),
        ({**base, "Limitation": {"Count": 10, "Cursor": "not-an-id"}}, 400, None),
    ]
    async with httpx.AsyncClient(base_url=url) as raw:
        for body, status, message in cases:
            response = await raw.post(path, json=body)
            assert response.status_code == status, body
            assert isinstance(response.json()["Message"], str)
            if message:
                assert response.json()["Message"] == message
        too_many = await raw.post(
            "/api/connector/v1/customers/getAll",
            json={**base, "CustomerIds": [f"id-{n}" for n in range(1001)], "Limitation": {"Count": 10}},
        )
        assert too_many.status_code == 400
        get = await raw.get(path)
        assert get.status_code == 405


async def test_a_missing_client_name_is_rejected(sim: tuple[MewsSimulator, str]) -> None:
    _, url = sim
    mews = adapter(url, options={"client": " "})
    try:
        with pytest.raises(UpstreamRejected) as raised:
            await mews.properties()
    finally:
        await mews.aclose()
    assert raised.value.status == 400


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
                assert reservation.state == "Processed"
            elif reservation.start <= later:
                assert reservation.state == "Started"
