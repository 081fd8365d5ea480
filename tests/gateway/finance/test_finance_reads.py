"""Finance reads over the sandbox's PARCS simulators, real HTTP: a normal range sums as the simulated
back office's own ledger does, and a range whose read would take long (every right an APDS platform
changed since 2000) answers within the operation's deadline, as a partial answer that names the
slow system with UPSTREAM_TIMEOUT (gateway/deadline.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest_asyncio

from adapters.models import SystemKind
from adapters.simulated.back_office import office_of
from adapters.simulated.harness import FaultMode
from gateway.finance.ledger import local_window
from tests.support.bed import Bed
from tests.support.own_bed import own_bed

TODAY = datetime.now(UTC).date()
#: an APDS page walk takes at least pages / page_concurrency round trips of SLOW_MS: far over the bound
BOUND_S, SLOW_MS = 1.5, 300
FAR_PAST = {"from": "2000-01-01", "to": "2000-03-01"}
TOTALS = """query($from: Date!, $to: Date!) {
  transactions(from: $from, to: $to, first: 1) { totalCount totals { currency count gross { amount } tax { amount } } } }"""


@pytest_asyncio.fixture(loop_scope="session")
async def bounded() -> AsyncIterator[Bed]:
    """A sandbox whose operations give their vendor reads BOUND_S, and whose APDS platform is slow."""
    async with own_bed(timeout_s=5.0, limits={"operation_timeout_s": BOUND_S}) as bed:
        bed.sandbox.simulators["parcs-central"].control.set_fault(FaultMode.SLOW, SLOW_MS)
        yield bed


async def test_ledger_totals_agree_with_the_simulated_back_office(bed: Bed) -> None:
    first, last = TODAY - timedelta(days=3), TODAY - timedelta(days=1)
    answer = await bed.graphql(TOTALS, {"from": first.isoformat(), "to": last.isoformat()}, client="finance-readonly")
    assert "errors" not in answer, answer
    stated = {t["currency"]: (t["count"], Decimal(t["gross"]["amount"]), Decimal(t["tax"]["amount"]))
              for t in answer["data"]["transactions"]["totals"]}
    office = office_of(bed.sandbox.world)
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
    for entry in bed.sandbox.runtime.directory.entries:
        if entry.ref(SystemKind.PARCS) is None:
            continue
        for posted in office.transactions([entry.id], *local_window(entry.config.time_zone, first, last)):
            sums = expected[posted.currency]
            sums[0] += 1
            sums[1] += posted.amount
            sums[2] += posted.tax
    assert {"EUR", "GBP"} <= set(stated)
    assert stated == {currency: (int(n), gross, tax) for currency, (n, gross, tax) in expected.items()}


async def test_one_facilitys_ledger_asks_its_platform_for_that_place_only(bed: Bed) -> None:
    day = TODAY - timedelta(days=1)
    query = TOTALS.replace("first: 1)", 'first: 1, facilityId: "berlin-hbf")')
    answer = await bed.graphql(query, {"from": day.isoformat(), "to": day.isoformat()}, client="finance-readonly")
    entry = bed.sandbox.runtime.directory.by_id["berlin-hbf"]
    ref = entry.ref(SystemKind.PARCS)
    assert ref is not None and ref.system_id == "parcs-central"
    office = office_of(bed.sandbox.world).transactions(["berlin-hbf"], *local_window(entry.config.time_zone, day, day))
    [total] = answer["data"]["transactions"]["totals"]
    assert (total["count"], Decimal(total["gross"]["amount"])) == (len(office), sum(e.amount for e in office))
    sent = [urlsplit(seen.url) for seen in bed.sandbox.simulators["parcs-central"].control.recent]
    places = [parse_qs(url.query).get("place") for url in sent if url.path.endswith("/rights/assigned")]
    assert places and all(named == [ref.vendor_id] for named in places)


async def test_a_slow_read_costs_only_its_own_fields(bounded: Bed) -> None:
    query = """query($from: Date!, $to: Date!) {
      everywhere: transactions(from: $from, to: $to) { totalCount }
      london: transactions(from: $from, to: $to, facilityId: "london-kings-cross") { totalCount }
      facilities(first: 2) { totalCount } }"""
    answer = await bounded.graphql(query, FAR_PAST, client="finance-readonly")
    # the APDS platform's fields time out; the ParkLine one and the directory answer in full
    assert answer["data"]["everywhere"] is None
    assert answer["data"]["london"] == {"totalCount": 0}
    assert answer["data"]["facilities"]["totalCount"] >= 6
    [error] = answer["errors"]
    assert error["path"] == ["everywhere"]
    assert (error["extensions"]["code"], error["extensions"]["system"]) == ("UPSTREAM_TIMEOUT", "parcs-central")
    assert "limits.operation_timeout_s" in error["message"]


async def test_an_export_that_would_take_too_long_is_a_504(bounded: Bed) -> None:
    response = await bounded.http.get(f"{bounded.url}/exports/journal", params={**FAR_PAST, "format": "csv"},
                                      headers=bounded.auth("finance-readonly"))
    assert response.status_code == 504, response.text
    [error] = response.json()["errors"]
    assert (error["extensions"]["code"], error["extensions"]["system"]) == ("UPSTREAM_TIMEOUT", "parcs-central")
