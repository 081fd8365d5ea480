"""Issuing and voiding citations through the LPR platform's API, adapter and simulator over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest

from adapters.base import SystemSpec
from adapters.lpr import LprAdapter
from adapters.lpr.simulator import LprSimulator, SimCitation
from adapters.lpr.simulator.webhooks import citation_event
from adapters.lpr.webhooks import verify
from adapters.lpr.wire import format_timestamp
from adapters.models import Citation, CitationRequest, Money, SystemKind
from adapters.operation_models import RefusalReason, VendorRefused
from gateway.events.inbox import InboxItem, InboxOutcome, MemoryInbox
from tests.support.vendors import LPR_CREDENTIALS

ISSUE = "POST /api/v1/citations"
FETCH = "GET /api/v1/citations/{number}"
VOID = "POST /api/v1/citations/{number}/void"


@pytest.fixture
async def lpr(sim: tuple[LprSimulator, str]) -> AsyncIterator[LprAdapter]:
    _, url = sim
    adapter = LprAdapter(SystemSpec(id="enforcement", kind=SystemKind.ENFORCEMENT, dialect="lpr", base_url=url,
                                    credentials=LPR_CREDENTIALS, options={"page_size": 100}))
    try:
        yield adapter
    finally:
        await adapter.aclose()


def request(reference: str = "gw-ref-1", **changes: str) -> CitationRequest:
    fields = {"zone_id": "11", "plate": "BPG123", "violation_code": "V21", "region": "DE-BE",
              "note": "blue hatchback, hazard lights on"}
    return CitationRequest(reference=reference, **{**fields, **changes})  # type: ignore[arg-type]


def raw_client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, auth=("parkgate", "correct horse"), headers={"X-API-Key": "lpr-test-key"})


async def test_an_issued_citation_is_listed_and_kept_with_the_catalog_fine(
    sim: tuple[LprSimulator, str], lpr: LprAdapter
) -> None:
    simulator, _ = sim
    before = datetime.now(UTC)
    issued = await lpr.issue_citation(request(plate="b-pg 123"))

    stored = simulator.state.find(issued.number)
    assert stored is not None
    assert (stored.zone.code, stored.plate, stored.region, stored.violation_code) == ("11", "BPG123", "DE-BE", "V21")
    assert (stored.fine_cents, stored.zone.currency, stored.status) == (5500, "EUR", "ISSUED")
    assert (stored.reference, stored.note) == ("gw-ref-1", "blue hatchback, hazard lights on")
    assert issued == Citation(
        number=stored.number,
        issued_at=stored.issued_at,
        plate="BPG123",
        region="DE-BE",
        violation_code="V21",
        violation="Parking in a no-stopping zone",
        fine=Money(Decimal("55.00"), "EUR"),
        zone_id="11",
        location=issued.location,
        status="ISSUED",
        version=1,
    )
    assert issued.number.startswith("MIT-")  # the zone's prefix, numbered by the platform
    # issued now, to the minute the handheld-style issueTime can say
    assert before.replace(second=0, microsecond=0) <= issued.issued_at <= datetime.now(UTC)
    assert issued.location is not None

    listed = await lpr.citations(before - timedelta(minutes=1))
    assert listed.errors == []
    assert [c for c in listed.items if c.number == issued.number] == [issued]


async def test_the_same_reference_twice_is_one_citation(sim: tuple[LprSimulator, str], lpr: LprAdapter) -> None:
    simulator, _ = sim
    count = len(simulator.state.citations)
    first = await lpr.issue_citation(request("gw-ref-twice"))
    again = await lpr.issue_citation(request("gw-ref-twice"))
    other = await lpr.issue_citation(request("gw-ref-other"))
    assert again == first
    assert other.number != first.number
    assert len(simulator.state.citations) == count + 2
    assert simulator.control.requests[ISSUE] == 3
    assert simulator.control.requests[FETCH] == 1  # the duplicate answer named the citation: fetched once


async def test_a_duplicate_is_a_spring_conflict_naming_the_existing_citation(sim: tuple[LprSimulator, str]) -> None:
    _, url = sim
    body = {"zoneCode": "10", "plate": "HHAB12", "violationCode": "V12", "externalReference": "raw-1"}
    async with raw_client(url) as raw:
        created = await raw.post("/api/v1/citations", json=body)
        duplicate = await raw.post("/api/v1/citations", json=body)
        fetched = await raw.get(created.headers["location"])
    assert created.status_code == 201
    wire = created.json()
    assert wire["status"] == "ISSUED" and wire["externalReference"] == "raw-1" and wire["plateRegion"] is None
    assert wire["issueTime"][-1] in "AP" and len(wire["issueTime"]) == 5  # the handheld's 0143A form
    assert duplicate.status_code == 409
    error = duplicate.json()
    assert {k: error[k] for k in ("status", "error", "path")} == {
        "status": 409, "error": "Conflict", "path": "/api/v1/citations"}
    assert error["existingNumber"] == wire["citationNumber"] and error["message"] and error["timestamp"]
    assert fetched.json() == wire


@pytest.mark.parametrize(
    ("changes", "reason", "status", "words"),
    [
        ({"zone_id": "99"}, RefusalReason.NOT_FOUND, 404, "99"),
        ({"violation_code": "V99"}, RefusalReason.INVALID, 400, "V12, V14, V21, V30, V33"),  # names the known codes
        ({"plate": "B-PG 123 !!"}, RefusalReason.INVALID, 400, "plate"),
    ],
)
async def test_a_refused_issue_issues_nothing(
    sim: tuple[LprSimulator, str], lpr: LprAdapter, changes: dict, reason: RefusalReason, status: int, words: str
) -> None:
    simulator, _ = sim
    count = len(simulator.state.citations)
    with pytest.raises(VendorRefused) as raised:
        await lpr.issue_citation(request(**changes))
    assert (raised.value.reason, raised.value.status, raised.value.existing_id) == (reason, status, None)
    assert words in str(raised.value)
    assert len(simulator.state.citations) == count
    assert simulator.control.requests[ISSUE] == 1  # a refusal is an answer: not retried
    # the reference was not used up: the corrected request goes through
    fixed = await lpr.issue_citation(request())
    assert fixed.zone_id == "11"


async def test_unauthorized_writes_are_refused(sim: tuple[LprSimulator, str]) -> None:
    simulator, url = sim
    count = len(simulator.state.citations) + 1
    target = simulator.state.issue("10")
    number = target.number
    async with httpx.AsyncClient(base_url=url, auth=("parkgate", "wrong")) as raw:
        issue = await raw.post("/api/v1/citations", json={"zoneCode": "10", "plate": "B1", "violationCode": "V12",
                                                           "externalReference": "x"},
                               headers={"X-API-Key": "lpr-test-key"})
        void = await raw.post(f"/api/v1/citations/{number}/void", json={"reason": "x"},
                              headers={"X-API-Key": "lpr-test-key"})
    assert (issue.status_code, void.status_code) == (401, 401)
    assert len(simulator.state.citations) == count
    assert (target.status, target.version) == ("ISSUED", 1)


@pytest.mark.parametrize(
    "body",
    [
        {"plate": "B1", "violationCode": "V12", "externalReference": "x"},  # no zone
        {"zoneCode": "10", "plate": "B1", "violationCode": "V12"},  # no reference
        {"zoneCode": "10", "plate": "B1", "violationCode": "V12", "externalReference": "x" * 201},
        {"zoneCode": "10", "plate": 12, "violationCode": "V12", "externalReference": "x"},
        ["not", "an", "object"],
    ],
)
async def test_a_malformed_issue_is_a_spring_bad_request(sim: tuple[LprSimulator, str], body: object) -> None:
    simulator, url = sim
    count = len(simulator.state.citations)
    async with raw_client(url) as raw:
        response = await raw.post("/api/v1/citations", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request" and response.json()["message"]
    assert len(simulator.state.citations) == count


async def test_void_is_listed_as_void_and_voiding_again_changes_nothing(
    sim: tuple[LprSimulator, str], lpr: LprAdapter
) -> None:
    simulator, _ = sim
    issued = await lpr.issue_citation(request("gw-void"))
    voided = await lpr.void_citation(issued.number, "officer error: permit was on the dashboard")
    assert voided.status == "VOID"
    assert voided.version == issued.version + 1  # re-reads as changed
    assert {voided.number, voided.plate, voided.fine} == {issued.number, issued.plate, issued.fine}
    stored = simulator.state.find(issued.number)
    assert stored is not None and stored.void_reason == "officer error: permit was on the dashboard"

    listed = await lpr.citations(issued.issued_at - timedelta(minutes=1))
    assert [c for c in listed.items if c.number == issued.number] == [voided]

    again = await lpr.void_citation(issued.number, "a second thought")
    assert again == voided
    assert stored.void_reason == "officer error: permit was on the dashboard"
    assert simulator.control.requests[VOID] == 2


async def test_voiding_a_handheld_citation(sim: tuple[LprSimulator, str], lpr: LprAdapter) -> None:
    simulator, _ = sim
    handheld = simulator.state.issue("20", violation_code="V33")
    voided = await lpr.void_citation(handheld.number, "duplicate ticket")
    assert (voided.status, voided.zone_id, voided.version) == ("VOID", "20", 2)
    assert handheld.status == "VOID" and handheld.last_modified is not None


async def test_voiding_an_unknown_citation_is_not_found(lpr: LprAdapter) -> None:
    with pytest.raises(VendorRefused) as raised:
        await lpr.void_citation("HBF-2026-999999", "customer complained")
    assert (raised.value.reason, raised.value.status) == (RefusalReason.NOT_FOUND, 404)
    assert "HBF-2026-999999" in str(raised.value)


async def test_a_paid_citation_cannot_be_voided(sim: tuple[LprSimulator, str], lpr: LprAdapter) -> None:
    simulator, _ = sim
    paid = simulator.state.issue("10", status="PAID")
    with pytest.raises(VendorRefused) as raised:
        await lpr.void_citation(paid.number, "customer complained")
    assert (raised.value.reason, raised.value.status) == (RefusalReason.WRONG_STATE, 409)
    assert "PAID" in str(raised.value)
    assert (paid.status, paid.version, paid.void_reason) == ("PAID", 1, None)


async def test_fetching_an_unknown_citation_is_not_found(lpr: LprAdapter) -> None:
    with pytest.raises(VendorRefused) as raised:
        await lpr.citation("NOPE-1")
    assert raised.value.reason is RefusalReason.NOT_FOUND


async def test_listeners_hear_api_issues_and_voids_once(sim: tuple[LprSimulator, str], lpr: LprAdapter) -> None:
    simulator, _ = sim
    heard: list[tuple[str, str, str]] = []
    simulator.state.listeners.append(lambda c, what: heard.append((what, c.number, c.status)))

    simulator.state.issue("10")  # a handheld's own: the sandbox announces those itself
    issued = await lpr.issue_citation(request("gw-listen"))
    await lpr.issue_citation(request("gw-listen"))  # a duplicate issues nothing
    with pytest.raises(VendorRefused):
        await lpr.issue_citation(request("gw-listen-bad", zone_id="99"))
    await lpr.void_citation(issued.number, "wrong plate")
    await lpr.void_citation(issued.number, "wrong plate")  # already void: nothing happens

    assert heard == [("issued", issued.number, "ISSUED"), ("voided", issued.number, "VOID")]


async def test_a_failing_listener_does_not_undo_the_citation(sim: tuple[LprSimulator, str], lpr: LprAdapter) -> None:
    simulator, _ = sim

    def broken(citation: SimCitation, what: str) -> None:
        raise RuntimeError("webhook queue is gone")

    heard: list[str] = []
    simulator.state.listeners.extend([broken, lambda c, what: heard.append(what)])
    issued = await lpr.issue_citation(request("gw-broken"))
    assert simulator.state.find(issued.number) is not None
    assert heard == ["issued"]  # the listeners after the broken one still hear


async def test_a_voided_citation_resent_under_its_event_id_is_revision_two(
    sim: tuple[LprSimulator, str], lpr: LprAdapter
) -> None:
    """What the sandbox does with the listener: announce, then re-send the void under the first id."""
    simulator, _ = sim
    events: list[dict] = []
    first_ids: dict[str, str] = {}

    def announce(citation: SimCitation, what: str) -> None:
        event = citation_event(citation.zone.code, citation.to_wire(), first_ids.get(citation.number))
        first_ids.setdefault(citation.number, event["eventId"])
        events.append(event)

    simulator.state.listeners.append(announce)
    issued = await lpr.issue_citation(request("gw-event"))
    await lpr.void_citation(issued.number, "wrong plate")

    inbox, now = MemoryInbox(), datetime.now(UTC)
    answers = []
    for event in events:
        raw = orjson.dumps({**event, "timestamp": format_timestamp(now)})
        [vendor_event] = verify("s3cret", {"x-webhook-secret": "s3cret"}, raw, now)
        outcome = await inbox.accept(InboxItem("enforcement", vendor_event, now))
        answers.append((vendor_event.payload["status"], outcome))
    assert [e["eventId"] for e in events] == [first_ids[issued.number]] * 2
    assert answers == [("ISSUED", (InboxOutcome.ACCEPTED, 1)), ("VOID", (InboxOutcome.CORRECTED, 2))]
