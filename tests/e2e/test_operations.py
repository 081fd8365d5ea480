"""Operations end to end against the sandbox, through the public API: reservations, payments,
permits, plate checks, citations and hotel validations — and each effect seen in the vendor
simulator's own state."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.models import EventType
from adapters.simulated.back_office import BackOffice, office_of
from tests.support import idempotency_key
from tests.support.bed import Bed
from tests.support.vendors import HBF_PLACE
from tests.support.waiting import first_event

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUOTE = """query($id: ID!, $start: DateTime!, $end: DateTime!) {
  facility(id: $id) { quote(start: $start, end: $end) { id available price { amount currency } expiresAt } } }"""
CREATE = """mutation($input: CreateReservationInput!, $key: String!) {
  createReservation(input: $input, idempotencyKey: $key) { id facilityId plate start end status price { amount currency } paid version } }"""
MODIFY = """mutation($id: ID!, $input: ModifyReservationInput!, $key: String!) {
  modifyReservation(id: $id, input: $input, idempotencyKey: $key) { id start end status price { amount } version } }"""
CANCEL = """mutation($id: ID!, $key: String!) { cancelReservation(id: $id, idempotencyKey: $key) { id status version } }"""
RESERVATION = """query($id: ID!) { reservation(id: $id) { id status arrivedAt } }"""
SESSIONS = """query($f: ID!, $plate: String!) {
  parkingSessions(facilityId: $f, plate: $plate) { id status amountDue { amount currency } amountPaid { amount } paidUntil reservationId } }"""
PAY_SESSION = """mutation($input: PayForSessionInput!, $key: String!) {
  payForSession(input: $input, idempotencyKey: $key) { id targetId amount { amount currency } processorReference } }"""
PLATE = """query($plate: String!, $f: ID, $zone: String) {
  plateStatus(plate: $plate, facilityId: $f, zoneId: $zone) { plate facilityId verdict rights { kind id validUntil } session { id } } }"""


def key() -> str:
    return idempotency_key()


def plate() -> str:
    return "B-T " + uuid.uuid4().hex[:5].upper()


def office(bed: Bed) -> BackOffice:
    return office_of(bed.sandbox.world)


def soon(minutes: int = 5, hours: int = 2) -> tuple[str, str]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)
    return start.isoformat(), (start + timedelta(hours=hours)).isoformat()


def code(answer: dict[str, Any]) -> str:
    assert answer.get("errors"), answer
    return answer["errors"][0]["extensions"]["code"]


async def book(bed: Bed, facility: str = "berlin-hbf", car: str | None = None, client: str = "driver-app",
               **window: int) -> dict[str, Any]:
    start, end = soon(**window)
    answer = await bed.graphql(CREATE, {"input": {"facilityId": facility, "start": start, "end": end,
                                                  "plate": car or plate()}, "key": key()}, client=client)
    assert "errors" not in answer, answer
    return answer["data"]["createReservation"]


async def test_book_from_a_quote_once_however_often_retried(bed: Bed) -> None:
    start, end = soon()
    quoted = await bed.graphql(QUOTE, {"id": "berlin-hbf", "start": start, "end": end}, client="driver-app")
    quote = quoted["data"]["facility"]["quote"]
    assert quote["available"] and quote["id"]
    car, idem = plate(), key()
    variables = {"input": {"quoteId": quote["id"], "plate": car, "customerName": "Ada Driver"}, "key": idem}
    before = len(office(bed).reservations)
    first, again = [await bed.graphql(CREATE, variables, client="driver-app") for _ in range(2)]
    assert "errors" not in first and first["data"] == again["data"], first
    made = first["data"]["createReservation"]
    assert made["price"] == quote["price"] and made["status"] == "BOOKED" and made["facilityId"] == "berlin-hbf"
    # the booking exists in the PARCS simulator, once
    assert len(office(bed).reservations) == before + 1
    vendor = office(bed).reservations[made["id"].split(":", 1)[1]]
    assert vendor.plate == car.replace(" ", "").replace("-", "") and vendor.garage == "berlin-hbf"
    # concurrent retries too
    variables["key"] = key()
    answers = await asyncio.gather(*(bed.graphql(CREATE, variables, client="driver-app") for _ in range(5)))
    ids = {a["data"]["createReservation"]["id"] for a in answers if a.get("data") and a["data"]["createReservation"]}
    assert len(ids) == 1 and len(office(bed).reservations) == before + 2, answers
    # the same key with another body is a conflict, and books nothing
    variables["input"]["plate"] = plate()
    reused = await bed.graphql(CREATE, variables, client="driver-app")
    assert code(reused) == "CONFLICT" and reused["errors"][0]["extensions"]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(office(bed).reservations) == before + 2


def vendor_headers(bed: Bed, system_id: str) -> dict[str, str]:
    credentials = bed.sandbox.config.systems[system_id].credentials
    if system_id == "parcs-central":
        return {"x-mcc-access-token": credentials["token"]}
    if system_id == "parcs-london":
        return {"x-api-key": credentials["api_key"]}
    basic = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode()).decode()
    return {"authorization": f"Basic {basic}", "x-api-key": credentials["api_key"]}


async def vendor_get(bed: Bed, system_id: str, path: str) -> dict[str, Any]:
    """A record as the vendor simulator's own API shows it."""
    response = await bed.http.get(f"{bed.url}/sim/{system_id}{path}", headers=vendor_headers(bed, system_id))
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_vendors_own_apis_show_the_writes(bed: Bed) -> None:
    berlin = await book(bed, "berlin-hbf")
    # an APDS assigned right of the place's reservation right specification, for its planned use
    shown = await vendor_get(bed, "parcs-central", f"/apds/v1/rights/assigned/{berlin['id'].split(':', 1)[1]}")
    assert shown["rightSpecification"]["id"] == f"{HBF_PLACE}-reservation"
    assert [use.get("cancelTime") for use in shown["plannedUses"]] == [None]
    london = await book(bed, "london-kings-cross")
    shown = await vendor_get(bed, "parcs-london", f"/v2/bookings/{london['id'].split(':', 1)[1]}")
    assert shown["status"] == "booked" and shown["carpark"] == "KX01"
    issue = """mutation($input: IssueCitationInput!, $key: String!) { issueCitation(input: $input, idempotencyKey: $key) { number } }"""
    number = (await bed.graphql(issue, {"input": {"facilityId": "berlin-mitte", "plate": plate(), "violationCode": "V14"},
                                        "key": key()}, client="enforcement-handheld"))["data"]["issueCitation"]["number"]
    shown = await vendor_get(bed, "enforcement", f"/api/v1/citations/{number}")
    assert (shown["citationNumber"], shown["zoneCode"], shown["violationCode"]) == (number, "11", "V14")


async def test_an_id_cannot_reach_past_its_facility(bed: Bed) -> None:
    made = await book(bed, "berlin-hbf")
    vendor_id = made["id"].split(":", 1)[1]
    crafted = f"berlin-mitte:{vendor_id}"  # the same PARCS runs both garages
    assert code(await bed.graphql(RESERVATION, {"id": crafted}, client="driver-app")) == "NOT_FOUND"
    assert code(await bed.graphql(CANCEL, {"id": crafted, "key": key()}, client="driver-app")) == "NOT_FOUND"
    assert office(bed).reservations[vendor_id].status.value == "BOOKED"


async def test_tampered_or_expired_quote_is_refused(bed: Bed) -> None:
    start, end = soon()
    quoted = await bed.graphql(QUOTE, {"id": "berlin-hbf", "start": start, "end": end}, client="driver-app")
    quote_id = quoted["data"]["facility"]["quote"]["id"]
    tampered = quote_id[:-3] + ("AAA" if not quote_id.endswith("AAA") else "BBB")
    answer = await bed.graphql(CREATE, {"input": {"quoteId": tampered, "plate": plate()}, "key": key()}, client="driver-app")
    assert code(answer) == "BAD_USER_INPUT"
    other = await bed.graphql(CREATE, {"input": {"quoteId": quote_id, "plate": plate(), "facilityId": "berlin-mitte"},
                                       "key": key()}, client="driver-app")
    assert code(other) == "BAD_USER_INPUT"


async def test_modify_and_cancel(bed: Bed) -> None:
    made = await book(bed)
    start, end = soon(minutes=60, hours=5)
    moved = await bed.graphql(MODIFY, {"id": made["id"], "input": {"start": start, "end": end}, "key": key()},
                              client="driver-app")
    assert "errors" not in moved, moved
    assert moved["data"]["modifyReservation"]["version"] > made["version"]
    assert moved["data"]["modifyReservation"]["price"]["amount"] != made["price"]["amount"]
    idem = key()
    cancelled = await bed.graphql(CANCEL, {"id": made["id"], "key": idem}, client="driver-app")
    assert cancelled["data"]["cancelReservation"]["status"] == "CANCELLED"
    assert (await bed.graphql(CANCEL, {"id": made["id"], "key": idem}, client="driver-app"))["data"] == cancelled["data"]
    assert office(bed).reservations[made["id"].split(":", 1)[1]].status.value == "CANCELLED"
    again = await bed.graphql(CANCEL, {"id": made["id"], "key": key()}, client="driver-app")
    assert again["data"]["cancelReservation"]["status"] == "CANCELLED"  # cancelling a cancelled one: as it is


async def test_no_availability_says_why_and_books_nothing(bed: Bed) -> None:
    terms = office(bed).terms["berlin-mitte"]
    taken = sum(1 for r in office(bed).reservations.values() if r.garage == "berlin-mitte")
    office(bed).terms["berlin-mitte"] = type(terms)(**{**vars(terms), "reservable": taken})
    try:
        start, end = soon()
        before = len(office(bed).reservations)
        answer = await bed.graphql(CREATE, {"input": {"facilityId": "berlin-mitte", "start": start, "end": end,
                                                      "plate": plate()}, "key": key()}, client="driver-app")
        assert code(answer) == "CONFLICT" and answer["errors"][0]["extensions"]["reason"] == "FULLY_BOOKED"
        assert len(office(bed).reservations) == before
        quoted = await bed.graphql(QUOTE.replace("id available", "id available unavailableReason"),
                                   {"id": "berlin-mitte", "start": start, "end": end}, client="driver-app")
        quote = quoted["data"]["facility"]["quote"]
        assert (quote["available"], quote["unavailableReason"], quote["id"]) == (False, "FULLY_BOOKED", None)
    finally:
        office(bed).terms["berlin-mitte"] = terms


@pytest.mark.parametrize("facility", ["berlin-hbf", "london-kings-cross"])
async def test_reserved_car_arrives_and_the_event_is_raised(bed: Bed, facility: str) -> None:
    car = plate()
    made = await book(bed, facility, car, minutes=1)
    subscription = bed.sandbox.runtime.bus.subscribe()
    try:
        entered = await bed.simulate({"berlin-hbf": "parcs-central", "london-kings-cross": "parcs-london"}[facility],
                                 event="entry", facility_id=facility, plate=car)
        assert entered["reservation_id"] == made["id"].split(":", 1)[1]
        if facility == "berlin-hbf":  # the APDS PARCS pushes a webhook; ParkLine's arrival is polled (test_polling)
            event = await first_event(subscription, lambda e: e.type is EventType.RESERVATION_ARRIVED)
            assert event.facility_id == facility and event.payload["reservation_id"] == entered["reservation_id"]
    finally:
        await subscription.aclose()
    seen = await bed.graphql(RESERVATION, {"id": made["id"]}, client="driver-app")
    assert seen["data"]["reservation"]["status"] == "ARRIVED"


async def test_arrive_pay_leave_reconcile(bed: Bed) -> None:
    car = plate()
    entered = await bed.simulate("parcs-central", event="entry", facility_id="berlin-mitte", plate=car)
    # two hours in: past the free half hour
    office(bed).sessions[entered["session_id"]].entered_at -= timedelta(hours=2)
    sessions = (await bed.graphql(SESSIONS, {"f": "berlin-mitte", "plate": car.lower()}, client="driver-app"))["data"]
    (session,) = sessions["parkingSessions"]
    due = session["amountDue"]
    assert session["status"] == "OPEN" and due["currency"] == "EUR" and float(due["amount"]) > 0
    check = await bed.graphql(PLATE, {"plate": car, "f": "berlin-mitte"}, client="enforcement-handheld")
    assert check["data"]["plateStatus"]["verdict"] == "UNPAID"
    idem = key()
    variables = {"input": {"sessionId": session["id"], "amount": due, "paymentToken": "tok_visa"}, "key": idem}
    paid = await bed.graphql(PAY_SESSION, variables, client="driver-app")
    assert "errors" not in paid, paid
    assert (await bed.graphql(PAY_SESSION, variables, client="driver-app"))["data"] == paid["data"]  # a retry charges once
    assert sum(1 for c in office(bed).charges.values() if c.target_id == entered["session_id"]) == 1
    check = await bed.graphql(PLATE, {"plate": car, "f": "berlin-mitte"}, client="enforcement-handheld")
    assert check["data"]["plateStatus"]["verdict"] == "PAID"
    assert [r["kind"] for r in check["data"]["plateStatus"]["rights"]] == ["TRANSIENT"]
    await bed.simulate("parcs-central", event="exit", facility_id="berlin-mitte", plate=car)
    assert office(bed).sessions[entered["session_id"]].exited_at is not None
    ledger = [e for e in office(bed).ledger if e.reference == entered["session_id"]]
    assert [str(e.amount) for e in ledger] == [due["amount"]]  # paid by app; nothing more at the exit


@pytest.mark.parametrize("where", ["paymentToken", "amount", "sessionId", "key"])
async def test_card_numbers_are_refused_wherever_they_are_put(bed: Bed, where: str, caplog: pytest.LogCaptureFixture) -> None:
    card = "4111 1111-1111 1111"
    car = plate()
    entered = await bed.simulate("parcs-central", event="entry", facility_id="berlin-mitte", plate=car)
    office(bed).sessions[entered["session_id"]].entered_at -= timedelta(hours=2)
    inputs: dict[str, Any] = {"sessionId": f"berlin-mitte:{entered['session_id']}",
                              "amount": {"amount": "3.00", "currency": "EUR"}, "paymentToken": "tok_visa"}
    idem = key()
    if where == "key":
        idem = f"retry-{card}"
    elif where == "amount":
        inputs["amount"]["amount"] = card
    else:
        inputs[where] = card if where == "paymentToken" else f"berlin-mitte:{card}"
    charges = len(office(bed).charges)
    with caplog.at_level(logging.DEBUG):
        answer = await bed.graphql(PAY_SESSION, {"input": inputs, "key": idem}, client="driver-app")
    error = answer["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["reason"] == "CARD_NUMBER_REFUSED"
    assert error["extensions"]["argument"] == {"paymentToken": "input.paymentToken", "amount": "input.amount.amount",
                                               "sessionId": "input.sessionId", "key": "idempotencyKey"}[where]
    assert "4111" not in str(answer) and "4111" not in caplog.text
    assert len(office(bed).charges) == charges


async def test_permit_makes_a_plate_permitted(bed: Bed) -> None:
    car = plate()
    now = datetime.now(UTC).replace(microsecond=0)
    issue = """mutation($input: IssuePermitInput!, $key: String!) {
      issuePermit(input: $input, idempotencyKey: $key) { id plate status holderName validUntil } }"""
    variables = {"input": {"facilityId": "berlin-hbf", "plate": car, "holderName": "Grace Commuter",
                           "validFrom": (now - timedelta(minutes=1)).isoformat(),
                           "validUntil": (now + timedelta(days=30)).isoformat(), "description": "Monthly commuter"},
                 "key": key()}
    issued = (await bed.graphql(issue, variables, client="permit-office"))["data"]["issuePermit"]
    assert issued["status"] == "ACTIVE"
    assert office(bed).permits[issued["id"].split(":", 1)[1]].holder_name == "Grace Commuter"
    check = await bed.graphql(PLATE, {"plate": car.lower().replace(" ", ""), "zone": "10"}, client="enforcement-handheld")
    assert check["data"]["plateStatus"]["verdict"] == "PERMITTED"
    assert check["data"]["plateStatus"]["rights"][0]["id"] == issued["id"]
    update = """mutation($id: ID!, $input: UpdatePermitInput!, $key: String!) {
      updatePermit(id: $id, input: $input, idempotencyKey: $key) { plate version } }"""
    new_car = plate()
    updated = await bed.graphql(update, {"id": issued["id"], "input": {"plate": new_car}, "key": key()}, client="permit-office")
    assert updated["data"]["updatePermit"]["plate"] == new_car.replace(" ", "").replace("-", "")
    revoke = """mutation($id: ID!, $key: String!) { revokePermit(id: $id, idempotencyKey: $key) { status } }"""
    assert (await bed.graphql(revoke, {"id": issued["id"], "key": key()}, client="permit-office"))["data"]["revokePermit"]["status"] == "REVOKED"
    listed = await bed.graphql("""query($plate: String) { permits(plate: $plate) { id status } }""", {"plate": new_car},
                               client="permit-office")
    assert listed["data"]["permits"] == [{"id": issued["id"], "status": "REVOKED"}]
    check = await bed.graphql(PLATE, {"plate": new_car, "f": "berlin-hbf"}, client="enforcement-handheld")
    assert check["data"]["plateStatus"]["verdict"] == "UNKNOWN"


async def test_plate_check_reserved_and_tenancy(bed: Bed) -> None:
    car = plate()
    await book(bed, "berlin-hbf", car, minutes=1)
    check = await bed.graphql(PLATE, {"plate": car, "f": "berlin-hbf"}, client="enforcement-handheld")
    assert check["data"]["plateStatus"]["verdict"] == "RESERVED"
    outside = await bed.graphql(PLATE, {"plate": car, "f": "london-kings-cross"}, client="enforcement-handheld")
    assert code(outside) == "NOT_FOUND"
    both = await bed.graphql(PLATE, {"plate": car, "f": "berlin-hbf", "zone": "10"}, client="enforcement-handheld")
    assert code(both) == "BAD_USER_INPUT"


@pytest.mark.parametrize("hotel", ["berlin-spree-hotel", "london-southbank"])
async def test_hotel_check_in_validates_the_guest_car_on_its_own(bed: Bed, hotel: str) -> None:
    car = plate()
    await bed.simulate("hotel-pms", event="check_in", facility_id=hotel, plate=car)
    wanted = car.replace(" ", "").replace("-", "")
    for _ in range(100):
        granted = [v for v in office(bed).validations.values() if v.plate == wanted]
        if granted:
            break
        await asyncio.sleep(0.05)
    assert len(granted) == 1 and granted[0].garage == hotel
    check = await bed.graphql(PLATE, {"plate": car, "f": hotel}, client="admin")
    assert check["data"]["plateStatus"]["verdict"] == "VALIDATED"
    assert check["data"]["plateStatus"]["rights"][0]["kind"] == "VALIDATION"
    if hotel == "berlin-spree-hotel":  # the Spree's own front desk client sees it
        listed = await bed.graphql("""query($plate: String) { parkingValidations(facilityId: "berlin-spree-hotel", plate: $plate) {
          plate status source } }""", {"plate": car}, client="hotel-pms-spree")
        assert listed["data"]["parkingValidations"][0]["status"] == "ACTIVE"


async def test_front_desk_validates_only_at_its_own_hotel(bed: Bed) -> None:
    validate = """mutation($input: ValidateParkingInput!, $key: String!) {
      validateParking(input: $input, idempotencyKey: $key) { id plate status validUntil } }"""
    car = plate()
    mine = await bed.graphql(validate, {"input": {"facilityId": "berlin-spree-hotel", "plate": car, "guestName": "Ann Guest"},
                                        "key": key()}, client="hotel-pms-spree")
    assert mine["data"]["validateParking"]["status"] == "ACTIVE"
    before = len(office(bed).validations)
    other = await bed.graphql(validate, {"input": {"facilityId": "berlin-hbf", "plate": car}, "key": key()},
                              client="hotel-pms-spree")
    assert code(other) == "NOT_FOUND" and len(office(bed).validations) == before


async def test_citation_issue_once_and_void(bed: Bed) -> None:
    issue = """mutation($input: IssueCitationInput!, $key: String!) {
      issueCitation(input: $input, idempotencyKey: $key) { number plate violationCode fine { amount currency } status } }"""
    variables = {"input": {"zoneId": "10", "plate": plate(), "violationCode": "V12", "region": "DE-BE"}, "key": key()}
    state = bed.sandbox.simulators["enforcement"].state
    before = len(state.citations)
    first = await bed.graphql(issue, variables, client="enforcement-handheld")
    assert "errors" not in first, first
    assert (await bed.graphql(issue, variables, client="enforcement-handheld"))["data"] == first["data"]
    assert len(state.citations) == before + 1
    number = first["data"]["issueCitation"]["number"]
    assert any(c.number == number for c in state.citations)
    void = """mutation($n: String!, $key: String!) { voidCitation(number: $n, reason: "Wrong plate read", idempotencyKey: $key) { status } }"""
    assert (await bed.graphql(void, {"n": number, "key": key()}, client="enforcement-handheld"))["data"]["voidCitation"]["status"] == "VOID"
    unknown = await bed.graphql(void, {"n": "NOPE-1", "key": key()}, client="enforcement-handheld")
    assert code(unknown) == "NOT_FOUND"
    bad = await bed.graphql(issue, {"input": {**variables["input"], "violationCode": "X99"}, "key": key()},
                            client="enforcement-handheld")
    assert code(bad) == "BAD_USER_INPUT" and len(state.citations) == before + 1


BAD_INPUTS = [
    ("reversed dates", CREATE, lambda s, e: {"input": {"facilityId": "berlin-hbf", "start": e, "end": s, "plate": "B-X 1"}}),
    ("unknown facility", CREATE, lambda s, e: {"input": {"facilityId": "nowhere", "start": s, "end": e, "plate": "B-X 1"}}),
    ("plate of 40 chars", CREATE, lambda s, e: {"input": {"facilityId": "berlin-hbf", "start": s, "end": e, "plate": "B" * 40}}),
    ("no offset", CREATE, lambda s, e: {"input": {"facilityId": "berlin-hbf", "start": s[:19], "end": e, "plate": "B-X 1"}}),
]


@pytest.mark.parametrize(("name", "query", "make"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_reservation_input_is_refused_and_changes_nothing(bed: Bed, name: str, query: str, make: Any) -> None:
    start, end = soon()
    before = len(office(bed).reservations)
    answer = await bed.graphql(query, {**make(start, end), "key": key()}, client="driver-app")
    assert code(answer) in ("BAD_USER_INPUT", "NOT_FOUND"), answer
    assert len(office(bed).reservations) == before


@pytest.mark.parametrize(("amount", "reason"), [({"amount": "-3.00", "currency": "EUR"}, None),
                                                ({"amount": "3.00", "currency": "GBP"}, "WRONG_CURRENCY"),
                                                ({"amount": "3.001", "currency": "EUR"}, None),
                                                ({"amount": "1.00", "currency": "EUR"}, "AMOUNT_MISMATCH")])
async def test_bad_payments_change_nothing(bed: Bed, amount: dict[str, str], reason: str | None) -> None:
    car = plate()
    entered = await bed.simulate("parcs-central", event="entry", facility_id="berlin-mitte", plate=car)
    office(bed).sessions[entered["session_id"]].entered_at -= timedelta(hours=3)
    charges, ledger = len(office(bed).charges), len(office(bed).ledger)
    answer = await bed.graphql(PAY_SESSION, {"input": {"sessionId": f"berlin-mitte:{entered['session_id']}", "amount": amount,
                                                       "paymentToken": "tok_visa"}, "key": key()}, client="driver-app")
    assert answer["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "CONFLICT")
    if reason:
        assert answer["errors"][0]["extensions"]["reason"] == reason
    assert (len(office(bed).charges), len(office(bed).ledger)) == (charges, ledger)


async def test_declined_token(bed: Bed) -> None:
    car = plate()
    entered = await bed.simulate("parcs-central", event="entry", facility_id="berlin-mitte", plate=car)
    office(bed).sessions[entered["session_id"]].entered_at -= timedelta(hours=2)
    (session,) = (await bed.graphql(SESSIONS, {"f": "berlin-mitte", "plate": car}, client="driver-app"))["data"]["parkingSessions"]
    answer = await bed.graphql(PAY_SESSION, {"input": {"sessionId": session["id"], "amount": session["amountDue"],
                                                       "paymentToken": "tok_chargeDeclined"}, "key": key()}, client="driver-app")
    assert code(answer) == "PAYMENT_DECLINED"


async def test_scopes_guard_writes(bed: Bed) -> None:
    start, end = soon()
    answer = await bed.graphql(CREATE, {"input": {"facilityId": "berlin-hbf", "start": start, "end": end, "plate": "B-X 1"},
                                        "key": key()}, client="dashboard")
    assert code(answer) == "FORBIDDEN"


def counts(bed: Bed) -> tuple[int, ...]:
    """How many records every simulated system holds: a refused request must change none of them."""
    o = office(bed)
    return (len(o.reservations), len(o.permits), len(o.validations), len(o.charges), len(o.ledger),
            len(bed.sandbox.simulators["enforcement"].state.citations))


NOW = datetime.now(UTC).replace(microsecond=0)
PERMIT = """mutation($input: IssuePermitInput!, $key: String!) { issuePermit(input: $input, idempotencyKey: $key) { id } }"""
CITATION = """mutation($input: IssueCitationInput!, $key: String!) { issueCitation(input: $input, idempotencyKey: $key) { number } }"""
VALIDATE = """mutation($input: ValidateParkingInput!, $key: String!) { validateParking(input: $input, idempotencyKey: $key) { id } }"""
PERMIT_INPUT = {"facilityId": "berlin-hbf", "plate": "B-P 1", "holderName": "Hal Holder", "validFrom": NOW.isoformat()}
WRITES_REFUSED = [
    ("permit ends before it starts", "permit-office", PERMIT,
     {**PERMIT_INPUT, "validUntil": (NOW - timedelta(days=1)).isoformat()}, "BAD_USER_INPUT"),
    ("permit plate of 40 chars", "permit-office", PERMIT, {**PERMIT_INPUT, "plate": "X" * 40}, "BAD_USER_INPUT"),
    ("permit at an unknown facility", "permit-office", PERMIT, {**PERMIT_INPUT, "facilityId": "atlantis"}, "NOT_FOUND"),
    ("permit without a holder", "permit-office", PERMIT, {**PERMIT_INPUT, "holderName": "  "}, "BAD_USER_INPUT"),
    ("citation in an unknown zone", "enforcement-handheld", CITATION,
     {"zoneId": "99", "plate": "B-C 1", "violationCode": "V12"}, "NOT_FOUND"),
    ("citation at a facility and a zone", "enforcement-handheld", CITATION,
     {"facilityId": "berlin-hbf", "zoneId": "10", "plate": "B-C 1", "violationCode": "V12"}, "BAD_USER_INPUT"),
    ("citation outside the handheld's facilities", "enforcement-handheld", CITATION,
     {"facilityId": "london-kings-cross", "plate": "B-C 1", "violationCode": "V12"}, "NOT_FOUND"),
    ("citation for an unknown violation", "enforcement-handheld", CITATION,
     {"zoneId": "10", "plate": "B-C 1", "violationCode": "V99"}, "BAD_USER_INPUT"),
    ("validation ending in the past", "hotel-pms-spree", VALIDATE,
     {"facilityId": "berlin-spree-hotel", "plate": "B-V 1", "validUntil": (NOW - timedelta(hours=1)).isoformat()},
     "BAD_USER_INPUT"),
    ("validation for 40 days", "hotel-pms-spree", VALIDATE,
     {"facilityId": "berlin-spree-hotel", "plate": "B-V 1", "validUntil": (NOW + timedelta(days=40)).isoformat()},
     "BAD_USER_INPUT"),
    ("validation with a naive time", "hotel-pms-spree", VALIDATE,
     {"facilityId": "berlin-spree-hotel", "plate": "B-V 1", "validUntil": (NOW + timedelta(days=1)).isoformat()[:19]},
     "BAD_USER_INPUT"),
]


@pytest.mark.parametrize(("name", "client", "query", "inputs", "expected"), WRITES_REFUSED, ids=[w[0] for w in WRITES_REFUSED])
async def test_refused_writes_change_nothing(bed: Bed, name: str, client: str, query: str, inputs: dict[str, Any],
                                             expected: str) -> None:
    before = counts(bed)
    answer = await bed.graphql(query, {"input": inputs, "key": key()}, client=client)
    assert code(answer) == expected, answer
    assert counts(bed) == before


FINANCE_REFUSED = [
    ("reversed dates", {"from": "2026-11-20", "to": "2026-11-10"}, "BAD_USER_INPUT"),
    ("93 days", {"from": "2026-08-01", "to": "2026-11-01"}, "BAD_USER_INPUT"),
    ("unknown facility", {"from": "2026-11-01", "to": "2026-11-02", "facilityId": "atlantis"}, "NOT_FOUND"),
    ("foreign cursor", {"from": "2026-11-01", "to": "2026-11-02", "after": "bm90LWEtY3Vyc29y"}, "BAD_USER_INPUT"),
]


@pytest.mark.parametrize(("name", "variables", "expected"), FINANCE_REFUSED, ids=[f[0] for f in FINANCE_REFUSED])
async def test_bad_transaction_queries(bed: Bed, name: str, variables: dict[str, Any], expected: str) -> None:
    query = """query($from: Date!, $to: Date!, $facilityId: ID, $after: String) {
      transactions(from: $from, to: $to, facilityId: $facilityId, after: $after) { totalCount } }"""
    answer = await bed.graphql(query, {"facilityId": None, "after": None, **variables}, client="finance-readonly")
    assert code(answer) == expected, answer


EXTREME = [
    ("reservation in year 9999", CREATE, "driver-app",
     {"input": {"facilityId": "berlin-hbf", "start": "9999-12-31T22:00:00-01:00", "end": "9999-12-31T23:30:00-01:00",
                "plate": "B-X 1"}}),
    ("permit from year 1", PERMIT, "permit-office", {"input": {**PERMIT_INPUT, "validFrom": "0001-01-01T00:30:00+01:00"}}),
    ("citations since year 1", """query { citations(since: "0001-01-01T00:30:00+01:00") { totalCount } }""",
     "enforcement-handheld", {}),
    ("quote in year 9999", """query { facility(id: "berlin-hbf") { quote(start: "9999-12-31T20:00:00Z", end: "9999-12-31T21:00:00Z") { id } } }""",
     "driver-app", {}),
    ("transactions in year 9999", """query { transactions(from: "9999-12-31", to: "9999-12-31") { totalCount } }""",
     "finance-readonly", {}),
    ("void citation '.'", """mutation($key: String!) { voidCitation(number: ".", reason: "x", idempotencyKey: $key) { status } }""",
     "enforcement-handheld", {}),
]


@pytest.mark.parametrize(("name", "query", "client", "variables"), EXTREME, ids=[e[0] for e in EXTREME])
async def test_extreme_values_get_a_coded_answer(bed: Bed, name: str, query: str, client: str,
                                                 variables: dict[str, Any]) -> None:
    before = counts(bed)
    answer = await bed.graphql(query, {"key": key(), **variables}, client=client)
    assert code(answer) in ("BAD_USER_INPUT", "NOT_FOUND"), answer
    assert counts(bed) == before


@pytest.mark.parametrize("where", ["unknown field", "number for a string", "inline literal"])
async def test_card_numbers_never_come_back_in_input_errors(bed: Bed, where: str) -> None:
    card = "4111111111111111"
    inputs: dict[str, Any] = {"sessionId": "berlin-mitte:S1", "amount": {"amount": "3.00", "currency": "EUR"},
                              "paymentToken": "tok_visa"}
    query = PAY_SESSION
    if where == "unknown field":
        inputs["cardNumber"] = card
    elif where == "number for a string":
        inputs["amount"]["amount"] = int(card)
    else:
        query = PAY_SESSION.replace("idempotencyKey: $key)", f'idempotencyKey: $key, cvc: "{card}")')
    response = await bed.http.post(f"{bed.url}/graphql", json={"query": query, "variables": {"input": inputs, "key": key()}},
                                   headers=bed.auth("driver-app"))
    assert response.status_code == 200
    assert card not in response.text, response.text
    # The screen at the edge refuses it before graphql-core could quote it in a coercion or validation error.
    error = response.json()["errors"][0]
    assert error["extensions"].pop("requestId") == response.headers["x-request-id"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "reason": "CARD_NUMBER_REFUSED",
                                   "argument": {"unknown field": "input.cardNumber", "number for a string": "input.amount.amount",
                                                "inline literal": "cvc"}[where]}


async def test_a_forgotten_key_reused_for_another_payment_charges_that_one(bed: Bed) -> None:
    """Keys are kept 24 h: after that (or a restart of the in-memory store) the same key names a new request,
    and must not hand back an unrelated first payment as if it were this one."""
    sessions = []
    for _ in range(2):
        entered = await bed.simulate("parcs-central", event="entry", facility_id="berlin-hbf", plate=plate())
        office(bed).sessions[entered["session_id"]].entered_at -= timedelta(hours=2)
        sessions.append(entered["session_id"])
    idem = key()
    for session_id in sessions:
        due = office(bed).amount_due(office(bed).sessions[session_id])
        answer = await bed.graphql(PAY_SESSION, {"input": {"sessionId": f"berlin-hbf:{session_id}",
                                                           "amount": {"amount": str(due), "currency": "EUR"},
                                                           "paymentToken": "tok_visa"}, "key": idem}, client="driver-app")
        assert answer["data"]["payForSession"]["targetId"] == f"berlin-hbf:{session_id}", answer
        bed.sandbox.runtime.idempotency._entries.clear()  # the store forgets, as after 24 h
    assert all(office(bed).amount_due(office(bed).sessions[s]) == 0 for s in sessions)


async def test_booking_and_cancelling_raise_reservation_events(bed: Bed) -> None:
    subscription = bed.sandbox.runtime.bus.subscribe()
    try:
        made = await book(bed, "berlin-mitte")
        created = await first_event(subscription, lambda e: e.type is EventType.RESERVATION_CREATED)
        assert (created.facility_id, created.payload["reservation_id"]) == ("berlin-mitte", made["id"].split(":", 1)[1])
        await bed.graphql(CANCEL, {"id": made["id"], "key": key()}, client="driver-app")
        cancelled = await first_event(subscription, lambda e: e.type is EventType.RESERVATION_CANCELLED)
        assert cancelled.payload["reservation_id"] == created.payload["reservation_id"]
    finally:
        await subscription.aclose()


async def test_a_refusal_leaves_the_system_up(bed: Bed) -> None:
    """A PARCS that answers "fully booked" or "declined" is working: `sources` must not show it DOWN."""
    car = plate()
    entered = await bed.simulate("parcs-central", event="entry", facility_id="berlin-mitte", plate=car)
    office(bed).sessions[entered["session_id"]].entered_at -= timedelta(hours=2)
    (session,) = (await bed.graphql(SESSIONS, {"f": "berlin-mitte", "plate": car}, client="driver-app"))["data"]["parkingSessions"]
    declined = await bed.graphql(PAY_SESSION, {"input": {"sessionId": session["id"], "amount": session["amountDue"],
                                                         "paymentToken": "tok_chargeDeclined"}, "key": key()}, client="driver-app")
    assert code(declined) == "PAYMENT_DECLINED"
    assert bed.sandbox.runtime.systems.health["parcs-central"].status.value == "UP"


@pytest.mark.parametrize("facility", ["berlin-mitte", "london-southbank"])
async def test_partners_can_make_a_garage_full_or_closed_in_the_sandbox(bed: Bed, facility: str) -> None:
    url = f"{bed.url}/sandbox/facilities/{facility}/availability"
    original = (await bed.http.get(url)).json()
    start, end = soon()
    try:
        for setting, reason in (({"reservable": 0}, "FULLY_BOOKED"), ({"reservable": 50, "closed": True}, "CLOSED")):
            assert (await bed.http.post(url, json=setting)).status_code == 200
            await bed.clear_cache()  # quotes are cached for a minute
            answer = await bed.graphql(CREATE, {"input": {"facilityId": facility, "start": start, "end": end, "plate": plate()},
                                                "key": key()}, client="driver-app")
            assert code(answer) == "CONFLICT" and answer["errors"][0]["extensions"]["reason"] == reason, answer
            quoted = await bed.graphql(QUOTE.replace("id available", "id available unavailableReason"),
                                       {"id": facility, "start": start, "end": end}, client="driver-app")
            assert quoted["data"]["facility"]["quote"]["available"] is False
    finally:
        await bed.http.post(url, json={"reservable": original["reservable"], "closed": original["closed"]})
    assert (await bed.http.post(url, json={"reservable": -1})).status_code == 400
    assert (await bed.http.get(f"{bed.url}/sandbox/facilities/nowhere/availability")).status_code == 404
    await book(bed, facility)  # open again
