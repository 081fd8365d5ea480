"""The Mews Connector API as its reference pages show it: their examples (adapters/mews/reference/) both ways.

- The adapter reads the documented answers (played back as the vendor, the only fake here: the
  examples *are* the vendor's word), every documented reservation state, the documented
  General Webhooks body; what it sends has the structure of the documented requests.
- The simulator takes the documented requests as they are, and its answers and webhook bodies
  have the documented structure (adapters/mews/conformance.py: keys and types, generically).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from adapters.base import SystemSpec
from adapters.errors import WebhookMalformed, WebhookRejected
from adapters.http import VendorHTTP
from adapters.mews import MewsAdapter
from adapters.mews.simulator import VENDOR_IDS, MewsSimulator, create_simulator
from adapters.mews.simulator.webhooks import reservation_events
from adapters.mews.wire import CUSTOMER_EXTENT, STATES
from adapters.models import EventType, GuestStay, GuestStayState, HotelProperty, SystemKind
from adapters.simulated.world import World
from adapters.mews.conformance import REFERENCE, mismatches
from tests.support.servers import serve

FIXTURES = REFERENCE
API = "/api/connector/v1/"
OPERATIONS = {  # path below API -> fixture name
    "reservations/getAll/2023-06-06": "reservations-getAll-2023-06-06",
    "customers/getAll": "customers-getAll",
    "enterprises/getAll": "enterprises-getAll",
}


def example(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


RESERVATION = example("reservations-getAll-2023-06-06.response")["Reservations"][0]
CUSTOMER = example("customers-getAll.response")["Customers"][0]
ENTERPRISE = example("enterprises-getAll.response")["Enterprises"][0]
WEBHOOK = example("wh-general")
TOKENS = {key: example("pagination.request")[key] for key in ("ClientToken", "AccessToken", "Client")}


def test_the_fixtures_are_the_documented_examples() -> None:
    """Guards the copies: the ids the tests below rely on, as the pages print them."""
    assert RESERVATION["Id"] == "0f515589-99b4-423d-b83a-b237009f0509" and RESERVATION["State"] == "Confirmed"
    assert RESERVATION["AccountId"] == CUSTOMER["Id"] == "fadd5bb6-b428-45d5-94f8-fd0d89fece6d"
    assert "EnterpriseId" not in RESERVATION  # what the old client wrongly required
    assert CUSTOMER["CarRegistrationNumber"] == "1A2 3456"
    assert example("customers-getAll.request")["Extent"] == {"Customers": True, "Documents": False, "Addresses": False}
    assert set(WEBHOOK) == {"EnterpriseId", "IntegrationId", "Events"}


class DocumentedVendor:
    """Answers each operation with its documented example (edited by `change`), records what it was sent."""

    def __init__(self, change: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.change = change
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        operation = request.url.path.removeprefix(API)
        body = orjson.loads(request.content)
        self.sent.append((operation, body))
        answer = copy.deepcopy(example(f"{OPERATIONS[operation]}.response"))
        if body.get("ReservationIds"):  # asked for by id: the example is the reservation named
            answer["Reservations"][0]["Id"] = answer["Cursor"] = body["ReservationIds"][0]
        if self.change is not None:
            self.change(operation, answer)
        return httpx.Response(200, json=answer)

    def adapter(self, **options: Any) -> MewsAdapter:
        spec = SystemSpec(id="hotel-pms", kind=SystemKind.HOSPITALITY, dialect="mews", base_url="https://mews.test",
                          credentials={"client_token": TOKENS["ClientToken"], "access_token": TOKENS["AccessToken"],
                                       "webhook_token": "s3cret"},
                          options={"client": TOKENS["Client"], **options})
        return MewsAdapter(spec, http=VendorHTTP(spec.id, spec.base_url, transport=httpx.MockTransport(self)))


async def test_the_adapter_reads_the_documented_answers() -> None:
    vendor = DocumentedVendor()
    mews = vendor.adapter()
    try:
        hotels = await mews.properties()
        stays = await mews.stays(datetime(2023, 4, 23, tzinfo=UTC), datetime(2023, 4, 24, tzinfo=UTC))
    finally:
        await mews.aclose()
    assert hotels.errors == [] and hotels.items == [
        HotelProperty("3fa85f64-5717-4562-b3fc-2c963f66afa6", "Sample Portfolio Hotel", "Europe/Budapest")]
    assert stays.errors == []
    assert stays.items == [GuestStay(
        vendor_id="0f515589-99b4-423d-b83a-b237009f0509",
        property_id="3fa85f64-5717-4562-b3fc-2c963f66afa6",  # the enterprise the adapter asked for
        state=GuestStayState.BOOKED,
        guest_name="John Smith",
        arrives_at=datetime(2023, 4, 23, 14, 0, tzinfo=UTC),
        departs_at=datetime(2023, 4, 25, 12, 0, tzinfo=UTC),
        car_registration="1A2 3456",
        updated_at=datetime(2023, 4, 22, 17, 0, tzinfo=UTC),
    )]


async def test_what_the_adapter_sends_has_the_documented_structure() -> None:
    vendor = DocumentedVendor()
    mews = vendor.adapter()
    try:
        await mews.stays(datetime(2023, 4, 23, tzinfo=UTC), datetime(2023, 4, 24, tzinfo=UTC))
        [event] = mews.verify_webhook({}, orjson.dumps(WEBHOOK), {"token": "s3cret"}, datetime.now(UTC))
        await mews.expand_webhook([event])
    finally:
        await mews.aclose()
    paging = example("pagination.request")["Limitation"]
    assert [operation for operation, _ in vendor.sent] == [
        "enterprises/getAll", "reservations/getAll/2023-06-06", "customers/getAll",  # stays
        "reservations/getAll/2023-06-06", "customers/getAll",  # the webhook's reservation and its owner
    ]
    for operation, body in vendor.sent:
        documented = {**example(f"{OPERATIONS[operation]}.request"), "Limitation": paging}
        assert mismatches(documented, body, subset=True) == [], operation
        assert {key: body[key] for key in TOKENS} == TOKENS  # authentication in the body, every time
        assert 1 <= body["Limitation"]["Count"] <= 1000
    stays_call, hook_call = vendor.sent[1][1], vendor.sent[3][1]
    assert stays_call["EnterpriseIds"] == ["3fa85f64-5717-4562-b3fc-2c963f66afa6"]
    assert stays_call["CollidingUtc"] == {"StartUtc": "2023-04-23T00:00:00Z", "EndUtc": "2023-04-24T00:00:00Z"}
    assert hook_call["ReservationIds"] == ["bfee2c44-1f84-4326-a862-5289598f6e2d"]
    assert hook_call["EnterpriseIds"] == ["851df8c8-90f2-4c4a-8e01-a4fc46b25178"]
    customers = vendor.sent[2][1]
    assert customers["Extent"] == CUSTOMER_EXTENT == {"Customers": True, "Addresses": False}  # required
    assert customers["CustomerIds"] == ["fadd5bb6-b428-45d5-94f8-fd0d89fece6d"]
    assert customers["ChainIds"] == ["2f6be44e-9881-4b12-aefe-afce011a9d67"]  # the enterprise's chain


#: every Service order state, in the page's order: what parkgate makes of it, and the guest event it gives
DOCUMENTED_STATES = [
    ("Inquired", GuestStayState.TENTATIVE, None),
    ("Confirmed", GuestStayState.BOOKED, EventType.GUEST_BOOKED),
    ("Started", GuestStayState.CHECKED_IN, EventType.GUEST_CHECKED_IN),
    ("Processed", GuestStayState.CHECKED_OUT, EventType.GUEST_CHECKED_OUT),
    ("Canceled", GuestStayState.CANCELLED, None),
    ("Optional", GuestStayState.TENTATIVE, None),
    ("Requested", GuestStayState.TENTATIVE, None),
]


@pytest.mark.parametrize(("state", "expected", "event"), DOCUMENTED_STATES)
async def test_every_documented_state(state: str, expected: GuestStayState, event: EventType | None) -> None:
    def set_state(operation: str, answer: dict[str, Any]) -> None:
        if operation.startswith("reservations/"):
            answer["Reservations"][0]["State"] = state

    vendor = DocumentedVendor(set_state)
    mews = vendor.adapter()
    try:
        [stay] = (await mews.stays(datetime(2023, 4, 23, tzinfo=UTC), datetime(2023, 4, 24, tzinfo=UTC))).items
        hook = mews.verify_webhook({}, orjson.dumps(WEBHOOK), {"token": "s3cret"}, datetime.now(UTC))
        expanded = await mews.expand_webhook(hook)
    finally:
        await mews.aclose()
    assert stay.state is expected
    assert [e.type for e in expanded] == ([event] if event else [])


def test_the_states_are_the_documented_ones() -> None:
    assert [state for state, _, _ in DOCUMENTED_STATES] == list(STATES)


async def test_a_company_owned_reservation_has_no_guest_to_look_up() -> None:
    def company(operation: str, answer: dict[str, Any]) -> None:
        if operation.startswith("reservations/"):
            answer["Reservations"][0]["AccountType"] = "Company"

    vendor = DocumentedVendor(company)
    mews = vendor.adapter()
    try:
        [stay] = (await mews.stays(datetime(2023, 4, 23, tzinfo=UTC), datetime(2023, 4, 24, tzinfo=UTC))).items
    finally:
        await mews.aclose()
    assert (stay.guest_name, stay.car_registration) == (None, None)
    assert "customers/getAll" not in [operation for operation, _ in vendor.sent]


def test_the_documented_webhook_names_one_reservation() -> None:
    mews = DocumentedVendor().adapter()
    [event] = mews.verify_webhook({}, orjson.dumps(WEBHOOK), {"token": "s3cret"}, datetime.now(UTC))
    assert event.vendor_event_id == "bfee2c44-1f84-4326-a862-5289598f6e2d"
    assert event.vendor_facility_id == "851df8c8-90f2-4c4a-8e01-a4fc46b25178"  # the EnterpriseId
    assert event.payload == {"reservation_id": "bfee2c44-1f84-4326-a862-5289598f6e2d",
                             "integration_id": "c8bee838-7fb1-4f4e-8fac-ac87008b2f90"}
    # the resource, message, customer and payment events are read and let go
    assert len(WEBHOOK["Events"]) == 6


def _edited(edit: Callable[[dict[str, Any]], None]) -> bytes:
    body = copy.deepcopy(WEBHOOK)
    edit(body)
    return orjson.dumps(body)


@pytest.mark.parametrize("edit", [
    lambda b: b.pop("IntegrationId"),
    lambda b: b.update(EnterpriseId=""),
    lambda b: b.update(Events={"Discriminator": "ServiceOrderUpdated"}),
    lambda b: b["Events"][0].pop("Value"),
    lambda b: b["Events"][0]["Value"].pop("Id"),
    lambda b: b["Events"][3].update(Value={"CustomerId": "c2f1d888-232e-49eb-87ac-5f75363af13b"}),
], ids=["no-integration", "empty-enterprise", "events-not-a-list", "no-value", "no-id", "customer-without-id"])
def test_a_webhook_off_the_documented_envelope_is_malformed(edit: Callable[[dict[str, Any]], None]) -> None:
    mews = DocumentedVendor().adapter()
    with pytest.raises(WebhookMalformed):
        mews.verify_webhook({}, _edited(edit), {"token": "s3cret"}, datetime.now(UTC))


def test_a_discriminator_mews_adds_later_is_let_go() -> None:
    mews = DocumentedVendor().adapter()
    body = _edited(lambda b: b["Events"].append({"Discriminator": "BillClosed", "Value": {"BillId": "x"}}))
    assert [e.vendor_event_id for e in mews.verify_webhook({}, body, {"token": "s3cret"}, datetime.now(UTC))] == [
        "bfee2c44-1f84-4326-a862-5289598f6e2d"]


@pytest.mark.parametrize("query", [{}, {"token": "wrong"}, {"secret": "s3cret"}])
def test_a_webhook_without_the_url_token_is_rejected(query: dict[str, str]) -> None:
    mews = DocumentedVendor().adapter()
    with pytest.raises(WebhookRejected):
        mews.verify_webhook({}, orjson.dumps(WEBHOOK), query, datetime.now(UTC))


# --- the simulator ----------------------------------------------------------------------------

@pytest.fixture
async def documented_sim() -> Any:
    """The simulator holding the documented demo tokens, so the documented requests go as they are."""
    simulator = create_simulator(World(), "hotel-pms", {"client_token": TOKENS["ClientToken"],
                                                        "access_token": TOKENS["AccessToken"]})
    simulator.state.live = False
    async with serve(simulator.app) as url, httpx.AsyncClient(base_url=url + API) as client:
        yield simulator, client


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_the_simulator_takes_the_documented_requests(
        documented_sim: tuple[MewsSimulator, httpx.AsyncClient], operation: str) -> None:
    _, client = documented_sim
    request = example(f"{OPERATIONS[operation]}.request")
    if operation == "enterprises/getAll":
        request["Limitation"].pop("Cursor")  # the example's cursor names an enterprise the sandbox has not
    response = await client.post(operation, json=request)
    assert response.status_code == 200, response.text
    assert mismatches(example(f"{OPERATIONS[operation]}.response"), response.json()) == []


async def test_the_simulator_answers_in_the_documented_structure(
        documented_sim: tuple[MewsSimulator, httpx.AsyncClient]) -> None:
    _, client = documented_sim
    now = datetime.now(UTC)
    enterprises = (await client.post("enterprises/getAll", json={**TOKENS, "Limitation": {"Count": 10}})).json()
    assert len(enterprises["Enterprises"]) == 2
    assert mismatches(example("enterprises-getAll.response"), enterprises) == []
    window = {"StartUtc": (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "EndUtc": (now + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    reservations = (await client.post("reservations/getAll/2023-06-06", json={
        **TOKENS, "CollidingUtc": window, "Limitation": {"Count": 1000}})).json()
    # every seeded reservation: every state, guests' and companies', checked in or not
    assert {r["State"] for r in reservations["Reservations"]} == set(STATES)
    assert {r["AccountType"] for r in reservations["Reservations"]} == {"Customer", "Company"}
    assert mismatches(example("reservations-getAll-2023-06-06.response"), reservations) == []
    owners = [r["AccountId"] for r in reservations["Reservations"] if r["AccountType"] == "Customer"]
    chains = [e["ChainId"] for e in enterprises["Enterprises"]]
    for extent in ({"Customers": True, "Addresses": False}, {"Customers": True, "Addresses": True}):
        customers = (await client.post("customers/getAll", json={
            **TOKENS, "ChainIds": chains, "CustomerIds": owners[:1000], "Extent": extent,
            "Limitation": {"Count": 1000}})).json()
        assert customers["Customers"] and mismatches(example("customers-getAll.response"), customers) == []
    assert any(c["CarRegistrationNumber"] for c in customers["Customers"])
    assert all(c["Address"] for c in customers["Customers"])  # Extent.Addresses


def test_the_simulators_webhooks_have_the_documented_envelope() -> None:
    hotel = VENDOR_IDS["berlin-spree-hotel"]
    for body in (reservation_events(hotel, "3b5d1c1e-0c7a-4a43-9a5b-1f2e3d4c5b6a"),
                 reservation_events(hotel, "3b5d1c1e-0c7a-4a43-9a5b-1f2e3d4c5b6a",
                                    new_customer="6a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b")):
        assert mismatches(WEBHOOK, body) == []
        documented = {e["Discriminator"] for e in WEBHOOK["Events"]}
        assert {e["Discriminator"] for e in body["Events"]} <= documented
    assert [e["Discriminator"] for e in body["Events"]] == ["ServiceOrderUpdated", "CustomerAdded", "CustomerUpdated"]


def test_the_structure_comparison_catches_what_it_should() -> None:
    """The comparison itself: a renamed key, a wrong type, a local time, an extra key."""
    good = copy.deepcopy(RESERVATION)
    assert mismatches(RESERVATION, good) == []
    bad = {**good, "State": 3, "UpdatedUtc": "2023-04-22T19:00:00+02:00", "Extra": 1, "PersonCounts": [{"Count": "2"}]}
    bad.pop("Number")
    found = mismatches(RESERVATION, bad)
    assert any(line.startswith("$.State: number") for line in found)
    assert any(line.startswith("$.UpdatedUtc:") and "UTC instant" in line for line in found)
    assert "$.Extra: not documented" in found and "$.Number: missing" in found
    assert "$.PersonCounts[0].AgeCategoryId: missing" in found
    assert any(line.startswith("$.PersonCounts[0].Count: string") for line in found)
