"""An id that is not yours reads exactly like an id that does not exist.

A client limited to some facilities names, through every operation that takes an id, a real
record of another facility (on the same PARCS as one of its own, so the PARCS does know it) and a
made-up id of the same shape. Both answers are the same JSON — message, extensions, path, data —
but for the id itself, and both cost the vendor the same number of calls (an answer without a
vendor call would tell "not yours" from "unknown" by its timing). Sequential ids (sessions,
ParkLine records, citation numbers) could otherwise be counted.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.simulated.back_office import office_of
from gateway.auth.keys import Environment
from gateway.auth.scopes import Scope
from gateway.card_numbers import looks_like_card_number
from tests.support import idempotency_key
from tests.support.bed import Bed

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: the client's own facility on each PARCS, and another facility of that PARCS it may not see
MINE = {"parcs-central": "berlin-hbf", "parcs-london": "london-kings-cross"}
# (not berlin-mitte: a test fills its reservable spaces by counting every reservation there)
THEIRS = {"parcs-central": "hamburg-elbe", "parcs-london": "london-southbank"}
SAME = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class World:
    key: str  # the tenancy-limited client's
    records: dict[tuple[str, str], str]  # (kind, PARCS) -> vendor id of a record at THEIRS[PARCS]
    citation: str  # the number of a citation in another facility's zone
    endpoint: str  # another client's webhook endpoint


_WORLDS: dict[int, World] = {}


async def _data(bed: Bed, query: str, variables: dict[str, Any], client: str) -> dict[str, Any]:
    answer = await bed.graphql(query, variables, client=client)
    assert "errors" not in answer, answer
    return next(iter(answer["data"].values()))


async def world(bed: Bed) -> World:
    """Made once: the limited client, and real records it may not see."""
    if id(bed) in _WORLDS:
        return _WORLDS[id(bed)]
    admin = bed.sandbox.runtime.admin
    limited = await admin.create_client("tests", name=f"one-garage-partner-{uuid.uuid4().hex[:6]}", environment=Environment.TEST,
                                        scopes=[s.value for s in Scope if s is not Scope.ADMIN],
                                        facilities=list(MINE.values()), plan="partner")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    records: dict[tuple[str, str], str] = {}
    for system, facility in THEIRS.items():
        booked = await _data(bed, """mutation($input: CreateReservationInput!, $key: String!) {
          createReservation(input: $input, idempotencyKey: $key) { id } }""", {"input": {
            "facilityId": facility, "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
            "plate": "B-TN 1001"}, "key": idempotency_key()}, "driver-app")
        permit = await _data(bed, """mutation($input: IssuePermitInput!, $key: String!) {
          issuePermit(input: $input, idempotencyKey: $key) { id } }""", {"input": {
            "facilityId": facility, "plate": "B-TN 1002", "holderName": "Someone Else", "validFrom": start.isoformat()},
            "key": idempotency_key()}, "permit-office")
        entered = await bed.simulate(system, event="entry", facility_id=facility, plate=f"B-TN {1003 + len(records)}")
        records[("reservation", system)] = booked["id"].split(":", 1)[1]
        records[("permit", system)] = permit["id"].split(":", 1)[1]
        records[("session", system)] = entered["session_id"]
    citation = await _data(bed, """mutation($key: String!) { issueCitation(input: {facilityId: "berlin-mitte",
      plate: "B-TN 1009", violationCode: "V12"}, idempotencyKey: $key) { number } }""", {"key": idempotency_key()},
                           "enforcement-handheld")
    other = await admin.create_client("tests", name=f"another-partner-{uuid.uuid4().hex[:6]}", environment=Environment.TEST,
                                      scopes=[Scope.WEBHOOKS_WRITE.value, Scope.ENFORCEMENT_READ.value], plan="standard")
    endpoint = (await _data(bed, """mutation($client: ID!) { registerWebhook(url: "http://127.0.0.1:9/hook",
      eventTypes: ["CITATION_UPDATED"], clientId: $client) { endpoint { id } } }""", {"client": other.client.id},
                            "admin"))["endpoint"]["id"]
    # it exists, and receives nothing: no delivery of other tests' events goes to a closed port
    await _data(bed, "mutation($id: ID!) { disableWebhook(id: $id) { id } }", {"id": endpoint}, "admin")
    made = World(limited.key, records, citation["number"], endpoint)
    _WORLDS[id(bed)] = made
    return made


def same_shape(real: str) -> st.SearchStrategy[str]:
    """Ids like `real`: its leading letters and separator kept, every other digit a digit, letter a
    letter of the same kind (hex stays hex), punctuation kept; never `real` itself."""
    prefix = re.match(r"[A-Za-z]*[-_]?", real).group()  # type: ignore[union-attr]
    hexlike = bool(re.fullmatch(r"[0-9a-f-]+", real[len(prefix):]))
    parts = []
    for ch in real[len(prefix):]:
        if ch.isdigit():
            parts.append(st.sampled_from("0123456789"))
        elif hexlike and ch in "abcdef":
            parts.append(st.sampled_from("0123456789abcdef"))
        elif ch.islower():
            parts.append(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
        elif ch.isupper():
            parts.append(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        else:
            parts.append(st.just(ch))
    # an id that reads as a card number is blanked out of every message (gateway/card_numbers.py), whoever's it is
    return st.tuples(*parts).map(lambda chars: prefix + "".join(chars)).filter(
        lambda made: made != real and not looks_like_card_number(made))


async def ask(bed: Bed, key: str, query: str, value: str) -> tuple[str, int]:
    """The answer (the id blanked out, quota extensions left out) and the vendor calls it made."""
    before = {s: (await bed.stats(s))["total"] for s in MINE} | {"enforcement": (await bed.stats("enforcement"))["total"]}
    response = await bed.http.post(f"{bed.url}/graphql", headers={"authorization": f"Bearer {key}"},
                                   json={"query": query, "variables": {"id": value, "key": idempotency_key()}})
    assert response.status_code == 200, response.text
    answer = response.json()
    after = {s: (await bed.stats(s))["total"] for s in before}
    assert answer.get("errors"), answer  # nothing of someone else's, nor of nothing, is ever answered
    assert all(e["extensions"]["code"] == "NOT_FOUND" for e in answer["errors"]), answer
    # each answer carries its own request's id (extensions.requestId): the same for a known and a made-up id but for that
    errors = [{**e, "extensions": {k: v for k, v in e["extensions"].items() if k != "requestId"}} for e in answer["errors"]]
    assert all(e["extensions"]["requestId"] == response.headers["x-request-id"] for e in answer["errors"])
    shown = orjson.dumps(blanked({"data": answer.get("data"), "errors": errors}, value)).decode()
    return shown, sum(after[s] - before[s] for s in before)


def blanked(answer: Any, value: str) -> Any:
    """`answer` with `value` blanked out of its texts only: a made-up zone "23" is not the column 23
    an error's location names."""
    if isinstance(answer, str):
        return answer.replace(value, "<id>")
    if isinstance(answer, list):
        return [blanked(item, value) for item in answer]
    if isinstance(answer, dict):
        return {key: blanked(item, value) for key, item in answer.items()}
    return answer


def exists(bed: Bed, kind: str, vendor_id: str) -> bool:
    office = office_of(bed.sandbox.world)
    return vendor_id in {"reservation": office.reservations, "session": office.sessions, "permit": office.permits}[kind]


MONEY = '{amount: "1.00", currency: "EUR"}'
#: every operation that takes the id of a PARCS record: (kind, operation)
RECORD_OPERATIONS = [
    ("reservation", 'query($id: ID!) { reservation(id: $id) { id } }'),
    ("reservation", 'mutation($id: ID!, $key: String!) { modifyReservation(id: $id, input: {plate: "B-X 1"}, '
                    'idempotencyKey: $key) { id } }'),
    ("reservation", "mutation($id: ID!, $key: String!) { cancelReservation(id: $id, idempotencyKey: $key) { id } }"),
    ("reservation", f"mutation($id: ID!, $key: String!) {{ payForReservation(input: {{reservationId: $id, amount: {MONEY}, "
                    f'paymentToken: "tok_visa"}}, idempotencyKey: $key) {{ id }} }}'),
    ("session", f"mutation($id: ID!, $key: String!) {{ payForSession(input: {{sessionId: $id, amount: {MONEY}, "
                f'paymentToken: "tok_visa"}}, idempotencyKey: $key) {{ id }} }}'),
    ("permit", 'mutation($id: ID!, $key: String!) { updatePermit(id: $id, input: {holderName: "X"}, '
               "idempotencyKey: $key) { id } }"),
    ("permit", "mutation($id: ID!, $key: String!) { revokePermit(id: $id, idempotencyKey: $key) { id } }"),
]


@pytest.mark.parametrize("system", list(MINE))
@pytest.mark.parametrize(("kind", "query"), RECORD_OPERATIONS, ids=[f"{k}-{q.split('{')[1].split('(')[0].strip()}"
                                                                  for k, q in RECORD_OPERATIONS])
@SAME
@given(data=st.data())
async def test_another_facilitys_record_reads_as_unknown(bed: Bed, system: str, kind: str, query: str,
                                                         data: st.DataObject) -> None:
    w = await world(bed)
    real = w.records[(kind, system)]
    made_up = data.draw(same_shape(real), label="made-up vendor id")
    assume(not exists(bed, kind, made_up))
    for facility in (MINE[system], THEIRS[system]):  # the client's own prefix (its PARCS is asked), and the true one
        theirs = await ask(bed, w.key, query, f"{facility}:{real}")
        unknown = await ask(bed, w.key, query, f"{facility}:{made_up}")
        assert theirs == unknown, (theirs, unknown)
    assert exists(bed, kind, real)
    office = office_of(bed.sandbox.world)
    if kind == "reservation":
        assert office.reservations[real].status.value == "BOOKED" and not office.reservations[real].paid
    if kind == "permit":
        assert office.permits[real].holder_name == "Someone Else"


@SAME
@given(data=st.data())
async def test_another_zones_citation_reads_as_unknown(bed: Bed, data: st.DataObject) -> None:
    w = await world(bed)
    made_up = data.draw(same_shape(w.citation), label="made-up citation number")
    assume(bed.sandbox.simulators["enforcement"].state.find(made_up) is None)
    query = 'mutation($id: String!, $key: String!) { voidCitation(number: $id, reason: "r", idempotencyKey: $key) { status } }'
    assert await ask(bed, w.key, query, w.citation) == await ask(bed, w.key, query, made_up)
    assert bed.sandbox.simulators["enforcement"].state.find(w.citation).status == "ISSUED"


SINCE = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
WINDOW = 'start: "2030-01-01T09:00:00Z", end: "2030-01-01T10:00:00Z"'
#: every operation that takes a facility id or a zone code
PLACE_OPERATIONS = [
    ("berlin-mitte", 'query($id: ID!) { reservations(facilityId: $id) { totalCount } }'),
    ("berlin-mitte", 'query($id: ID!) { permits(facilityId: $id) { id } }'),
    ("berlin-mitte", 'query($id: ID!) { parkingSessions(facilityId: $id, plate: "B-X 1") { id } }'),
    ("berlin-mitte", 'query($id: ID!) { plateStatus(facilityId: $id, plate: "B-X 1") { verdict } }'),
    ("berlin-mitte", f'query($id: ID!) {{ citations(facilityId: $id, since: "{SINCE}") {{ totalCount }} }}'),
    ("berlin-mitte", 'query($id: ID!) { parkingValidations(facilityId: $id) { id } }'),
    ("berlin-mitte", 'query($id: ID!) { transactions(facilityId: $id, from: "2026-11-01", to: "2026-11-02") { totalCount } }'),
    ("berlin-mitte", f"mutation($id: ID!, $key: String!) {{ createReservation(input: {{facilityId: $id, {WINDOW}, "
                     'plate: "B-X 1"}, idempotencyKey: $key) { id } }'),
    ("berlin-mitte", 'mutation($id: ID!, $key: String!) { issuePermit(input: {facilityId: $id, plate: "B-X 1", '
                     'holderName: "X", validFrom: "2030-01-01T00:00:00Z"}, idempotencyKey: $key) { id } }'),
    ("berlin-mitte", 'mutation($id: ID!, $key: String!) { validateParking(input: {facilityId: $id, plate: "B-X 1"}, '
                     "idempotencyKey: $key) { id } }"),
    ("berlin-mitte", 'mutation($id: ID!, $key: String!) { issueCitation(input: {facilityId: $id, plate: "B-X 1", '
                     'violationCode: "V12"}, idempotencyKey: $key) { number } }'),
    ("11", 'query($id: String!) { plateStatus(zoneId: $id, plate: "B-X 1") { verdict } }'),
    ("11", 'mutation($id: String!, $key: String!) { issueCitation(input: {zoneId: $id, plate: "B-X 1", '
           'violationCode: "V12"}, idempotencyKey: $key) { number } }'),
]


@pytest.mark.parametrize(("real", "query"), PLACE_OPERATIONS,
                         ids=[f"{r}-{q.split('{')[1].split('(')[0].strip()}" for r, q in PLACE_OPERATIONS])
@SAME
@given(data=st.data())
async def test_another_facility_or_zone_reads_as_unknown(bed: Bed, real: str, query: str, data: st.DataObject) -> None:
    w = await world(bed)
    made_up = data.draw(same_shape(real), label="made-up facility id or zone code")
    known = set(bed.sandbox.config.facilities) | {"10", "11", "20"}
    assume(made_up not in known)
    assert await ask(bed, w.key, query, real) == await ask(bed, w.key, query, made_up)


@pytest.mark.parametrize("query", [
    "query($id: ID!) { webhookDeliveries(endpointId: $id) { id } }",
    "mutation($id: ID!) { disableWebhook(id: $id) { id } }",
])
@SAME
@given(data=st.data())
async def test_another_clients_webhook_endpoint_reads_as_unknown(bed: Bed, query: str, data: st.DataObject) -> None:
    w = await world(bed)
    made_up = data.draw(same_shape(w.endpoint), label="made-up endpoint id")
    assert await ask(bed, w.key, query, w.endpoint) == await ask(bed, w.key, query, made_up)
