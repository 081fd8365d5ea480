"""One failing system costs only its own root fields: with a vendor system down (the sandbox's
fault control), a document that asks for a root field on that system and one on a healthy
system gets the healthy one's data, null for the failed one, and an UPSTREAM_* error at the
failed one's path — for every pair of such root fields, queries and mutations alike."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.auth.scopes import Scope
from tests.support.bed import Bed

pytestmark = pytest.mark.asyncio(loop_scope="session")

SYSTEMS = ("parcs-central", "parcs-london", "guidance", "enforcement", "hotel-pms")
#: the systems that some root field depends on (the rest answer nested fields only)
ROOT_FIELD_SYSTEMS = {"parcs-central", "parcs-london", "enforcement"}
#: a facility of each PARCS, and where each write goes
PARCS_OF = {"berlin-hbf": "parcs-central", "london-kings-cross": "parcs-london"}
HOTEL_PARCS_OF = {"berlin-spree-hotel": "parcs-central", "london-southbank": "parcs-london"}
PLATE = "B-PR 1234"  # long enough to be masked as B-•••34, as other tests expect of every plate


@dataclass(frozen=True)
class Probe:
    """A root field as a document asks for it, and the vendor system it depends on (None: none)."""

    name: str
    field: str
    system: str | None

    def id(self) -> str:
        return f"{self.name}@{self.system}"


def query_probes() -> list[Probe]:
    today = datetime.now(UTC).date().isoformat()
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    probes = []
    for facility, system in PARCS_OF.items():
        f = f'facilityId: "{facility}"'
        probes += [
            Probe("reservations", f"reservations({f}, first: 1) {{ totalCount }}", system),
            Probe("parkingSessions", f'parkingSessions({f}, plate: "{PLATE}") {{ id }}', system),
            Probe("permits", f"permits({f}, first: 1) {{ id }}", system),
            Probe("plateStatus", f'plateStatus({f}, plate: "{PLATE}") {{ verdict }}', system),
            Probe("transactions", f'transactions({f}, from: "{today}", to: "{today}", first: 1) {{ totalCount }}', system),
        ]
    for facility, system in HOTEL_PARCS_OF.items():
        probes.append(Probe("parkingValidations", f'parkingValidations(facilityId: "{facility}") {{ id }}', system))
    probes += [
        Probe("citations", f'citations(facilityId: "berlin-hbf", since: "{since}", first: 1) {{ totalCount }}', "enforcement"),
        # fields no vendor answers: they stand whatever fails
        Probe("facility", 'facility(id: "berlin-hbf") { name }', None),
        Probe("sources", "sources { id }", None),
        Probe("scopes", "scopes { name }", None),
    ]
    return probes


def mutation_probes() -> list[Probe]:
    start = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    window = f'start: "{start.isoformat()}", end: "{(start + timedelta(hours=2)).isoformat()}"'
    probes = []
    for facility, system in PARCS_OF.items():
        probes += [
            Probe("issuePermit", f'issuePermit(input: {{facilityId: "{facility}", plate: "{PLATE}", holderName: "Ada", '
                                 f'validFrom: "{start.isoformat()}"}}, idempotencyKey: "KEY") {{ id }}', system),
            Probe("createReservation", f'createReservation(input: {{facilityId: "{facility}", {window}, plate: "{PLATE}"}}, '
                                       f'idempotencyKey: "KEY") {{ id }}', system),
        ]
    for facility, system in HOTEL_PARCS_OF.items():
        probes.append(Probe("validateParking", f'validateParking(input: {{facilityId: "{facility}", plate: "{PLATE}"}}, '
                                               f'idempotencyKey: "KEY") {{ id }}', system))
    probes.append(Probe("issueCitation", f'issueCitation(input: {{facilityId: "berlin-hbf", plate: "{PLATE}", '
                                         f'violationCode: "V12"}}, idempotencyKey: "KEY") {{ number }}', "enforcement"))
    return probes


_KEYS: dict[int, str] = {}


async def operator_key(bed: Bed) -> str:
    """A client of this test with every scope the probed fields need, at every facility."""
    if id(bed) not in _KEYS:
        scopes = [s.value for s in Scope if s is not Scope.ADMIN]
        answer = await bed.graphql("""mutation($scopes: [String!]!) { createClient(input: {name: "partial-answers",
          environment: TEST, scopes: $scopes}) { key } }""", {"scopes": scopes})
        _KEYS[id(bed)] = answer["data"]["createClient"]["key"]
    return _KEYS[id(bed)]


async def ask(bed: Bed, document: str) -> dict[str, Any]:
    response = await bed.http.post(f"{bed.url}/graphql", json={"query": document},
                                   headers={"authorization": f"Bearer {await operator_key(bed)}"})
    assert response.status_code == 200, response.text
    return response.json()


def check_pair(answer: dict[str, Any], system: str, failed: Probe, healthy: Probe) -> None:
    """`failed` is null with the system's UPSTREAM_* error at its path; `healthy` has data and no error."""
    context = (failed.id(), healthy.id(), answer)
    data = answer.get("data")
    assert data is not None and data["failed"] is None and data["healthy"] is not None, context
    errors = answer.get("errors", [])
    assert errors and all(e["path"] == ["failed"] for e in errors), context
    for error in errors:
        assert error["extensions"]["code"].startswith("UPSTREAM_"), context
        assert error["extensions"]["system"] == system, context


def pairs(probes: list[Probe], system: str) -> list[tuple[Probe, Probe]]:
    failing = [p for p in probes if p.system == system]
    healthy = [p for p in probes if p.system != system]
    return list(itertools.product(failing, healthy))


@pytest.mark.parametrize("system", SYSTEMS)
async def test_a_system_down_nulls_only_its_own_root_fields(bed: Bed, system: str) -> None:
    await bed.fault(system, "down")
    checked = pairs(query_probes(), system)
    # a system that root fields depend on has them probed; the others (sensors, hotels) answer only nested fields
    assert bool(checked) == (system in ROOT_FIELD_SYSTEMS), (system, [p.id() for p in query_probes()])
    for failed, healthy in checked:
        answer = await ask(bed, f"{{ failed: {failed.field} healthy: {healthy.field} }}")
        check_pair(answer, system, failed, healthy)
    # root fields of no other system depend on this one: all of them at once still answer
    others = [p for p in query_probes() if p.system != system]
    for chunk in (others[i:i + 9] for i in range(0, len(others), 9)):  # at most 10 root fields a document
        answer = await ask(bed, "{ " + " ".join(f"p{i}: {p.field}" for i, p in enumerate(chunk)) + " }")
        assert "errors" not in answer and all(v is not None for v in answer["data"].values()), answer


def keyed(field: str) -> str:
    return field.replace('"KEY"', f'"{uuid.uuid4()}"')


@pytest.mark.parametrize("system", [s for s in SYSTEMS if any(p.system == s for p in mutation_probes())])
async def test_a_failed_mutation_leaves_its_sibling_mutations_standing(bed: Bed, system: str) -> None:
    await bed.fault(system, "down")
    checked = pairs(mutation_probes(), system)
    assert checked, f"no pair of mutation probes, one writing to {system} and one not: nothing to check"
    for failed, healthy in checked:
        answer = await ask(bed, f"mutation {{ failed: {keyed(failed.field)} healthy: {keyed(healthy.field)} }}")
        check_pair(answer, system, failed, healthy)


async def test_every_probe_answers_when_every_system_is_up(bed: Bed) -> None:
    """The probes above are real: healthy, each one has data (else 'null when down' would prove nothing)."""
    for probe in query_probes():
        answer = await ask(bed, f"{{ field: {probe.field} }}")
        assert "errors" not in answer and answer["data"]["field"] is not None, (probe.id(), answer)
    for probe in mutation_probes():
        answer = await ask(bed, f"mutation {{ field: {keyed(probe.field)} }}")
        assert "errors" not in answer and answer["data"]["field"] is not None, (probe.id(), answer)
