"""Reads that go to a vendor live (a plate's rights, its sessions, citations, a hotel's validations)
share the operation's deadline with the cached reads (gateway/deadline.py): a system slower than
`limits.operation_timeout_s`, yet within its own per-call timeout, costs those fields
UPSTREAM_TIMEOUT at the bound, and the rest of the document answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gateway.auth.scopes import Scope
from tests.resolvers.test_partial_answers import Probe, query_probes
from tests.support.bed import Bed
from tests.support.own_bed import own_bed

#: the operation's bound, and each slow system's delay: past the bound, well within the per-call timeout
BOUND_S, SLOW_MS, CALL_TIMEOUT_S = 1.0, 3000, 10.0
LIVE = ("parkingSessions", "plateStatus", "parkingValidations", "citations")
SLOW_SYSTEMS = ("parcs-central", "enforcement")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def slow() -> AsyncIterator[tuple[Bed, str]]:
    async with own_bed(timeout_s=CALL_TIMEOUT_S, limits={"operation_timeout_s": BOUND_S}) as bed:
        _, key = await bed.new_client([s.value for s in Scope if s is not Scope.ADMIN])
        for system_id in SLOW_SYSTEMS:
            await bed.fault(system_id, "slow", SLOW_MS)
        yield bed, key


#: a record read live by its id (one the simulator does not hold: the read is what times out); the
#: mutations that read a record before changing it (permits, reservations, citations) read it so too
BY_ID = [Probe("reservation", 'reservation(id: "berlin-hbf:R-NONE") { id }', "parcs-central")]
PROBES = [p for p in query_probes() if p.name in LIVE and p.system in SLOW_SYSTEMS] + BY_ID


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.id())
async def test_a_live_read_past_the_operations_deadline_is_upstream_timeout(slow: tuple[Bed, str], probe: Probe) -> None:
    bed, key = slow
    response = await bed.http.post(f"{bed.url}/graphql", headers={"authorization": f"Bearer {key}"},
                                   json={"query": f'{{ live: {probe.field} here: facility(id: "berlin-hbf") {{ name }} }}'})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["data"] == {"live": None, "here": {"name": answer["data"]["here"]["name"]}}, answer
    [error] = answer["errors"]
    assert error["path"] == ["live"]
    assert (error["extensions"]["code"], error["extensions"]["system"]) == ("UPSTREAM_TIMEOUT", probe.system)
    # the operation's bound fired, not the system's own per-call timeout
    assert "limits.operation_timeout_s" in error["message"], error


def test_every_live_read_is_probed() -> None:
    assert {p.name for p in PROBES} == {*LIVE, "reservation"}
