"""Accounting and citation exports end to end: the sandbox's PARCS and LPR simulators over real HTTP."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
import pytest_asyncio

from gateway.finance.accounts import FinanceConfig
from gateway.finance.citations_export import COLUMNS
from gateway.finance.formats import FORMATS
from tests.support.bed import Bed
from tests.support.finance import PARSERS, two_decimals

TODAY = datetime.now(UTC).date()
FROM, TO = TODAY - timedelta(days=3), TODAY - timedelta(days=1)


@pytest_asyncio.fixture(loop_scope="session")
async def exports(bed: Bed) -> str:
    """The base URL serving /exports: the sandbox itself."""
    return bed.url


finance = exports


TRANSACTIONS = """query($from: Date!, $to: Date!, $after: String) {
  transactions(from: $from, to: $to, first: 100, after: $after) {
    totalCount totals { currency count gross { amount } tax { amount } net { amount } }
    edges { node { amount { amount currency } tax { amount } } } pageInfo { hasNextPage endCursor } } }"""


def errors(response) -> tuple[str, str]:  # noqa: ANN001
    error = response.json()["errors"][0]
    return error["extensions"]["code"], error["message"]


async def test_every_format_has_the_same_totals(bed: Bed, finance: str) -> None:
    chart = FinanceConfig()  # the sandbox's chart: the defaults
    params = {"from": FROM.isoformat(), "to": TO.isoformat()}
    bodies = {}
    for fmt in FORMATS:
        response = await bed.http.get(f"{finance}/exports/journal", params={**params, "format": fmt},
                                      headers=bed.auth("finance-readonly"))
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        extension = {"iif": "iif", "json": "json"}.get(fmt, "csv")
        assert response.headers["content-disposition"] == \
            f'attachment; filename="parkgate-journal-{FROM.isoformat()}-{TO.isoformat()}.{extension}"'
        media = {"iif": "text/plain", "json": "application/json"}.get(fmt, "text/csv")
        assert response.headers["content-type"].startswith(media)
        bodies[fmt] = response.content
    document = orjson.loads(bodies["json"])
    currency_of = {j["number"]: j["currency"] for j in document["journals"]}
    stated = {t["currency"]: (two_decimals(t["gross"]), two_decimals(t["tax"]), two_decimals(t["net"]))
              for t in document["totals"]}
    assert stated, "the sandbox garages took money on each of the last days"
    assert {"EUR", "GBP"} <= set(stated)
    # every facility with a PARCS has a journal on every day (the seeded history has 18+ transactions a day)
    days = {date.fromisoformat(j["date"]) for j in document["journals"]}
    assert days == {FROM + timedelta(days=n) for n in range((TO - FROM).days + 1)}
    for fmt, body in bodies.items():
        assert PARSERS[fmt](body, currency_of, chart).result() == stated, fmt
    assert sum(t["count"] for t in document["totals"]) == sum(j["transactionCount"] for j in document["journals"])
    # ... and they are the totals the GraphQL `transactions` connection gives for the same range,
    # which also add up from its pages
    answer = await bed.graphql(TRANSACTIONS, params, client="finance-readonly")
    connection = answer["data"]["transactions"]
    graphql_totals = {t["currency"]: (two_decimals(t["gross"]["amount"]), two_decimals(t["tax"]["amount"]),
                                      two_decimals(t["net"]["amount"])) for t in connection["totals"]}
    assert graphql_totals == stated
    assert connection["totalCount"] == sum(t["count"] for t in document["totals"])
    summed: dict[str, Decimal] = {}
    while True:
        for edge in connection["edges"]:
            money = edge["node"]["amount"]
            summed[money["currency"]] = summed.get(money["currency"], Decimal(0)) + Decimal(money["amount"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        connection = (await bed.graphql(TRANSACTIONS, {**params, "after": connection["pageInfo"]["endCursor"]},
                                        client="finance-readonly"))["data"]["transactions"]
    assert {c: two_decimals(str(v)) for c, v in summed.items()} == {c: t[0] for c, t in stated.items()}


async def test_one_facility_only(bed: Bed, finance: str) -> None:
    response = await bed.http.get(f"{finance}/exports/journal", headers=bed.auth("finance-readonly"),
                                  params={"format": "csv", "from": TO.isoformat(), "to": TO.isoformat(),
                                          "facility": "london-kings-cross"})
    assert response.status_code == 200, response.text
    assert "-london-kings-cross.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows and {r["facility_id"] for r in rows} == {"london-kings-cross"} and {r["currency"] for r in rows} == {"GBP"}
    assert {r["date"] for r in rows} == {TO.isoformat()}


async def test_who_may_export(bed: Bed, exports: str) -> None:
    params = {"format": "csv", "from": FROM.isoformat(), "to": TO.isoformat()}
    response = await bed.http.get(f"{exports}/exports/journal", params=params)
    assert response.status_code == 401 and errors(response)[0] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await bed.http.get(f"{exports}/exports/journal", params=params, headers={"authorization": "Bearer pk_nope"})
    assert response.status_code == 401 and "error=" in response.headers["www-authenticate"]
    response = await bed.http.get(f"{exports}/exports/journal", params=params, headers=bed.auth("dashboard"))
    assert response.status_code == 403 and errors(response)[0] == "FORBIDDEN" and "finance:read" in errors(response)[1]
    response = await bed.http.get(f"{exports}/exports/citations", params=params, headers=bed.auth("finance-readonly"))
    assert response.status_code == 403 and errors(response) == ("FORBIDDEN", "This export needs the scope enforcement:read and pii:read.")


@pytest.mark.parametrize(("params", "says"), [
    ({"format": "csv", "from": "2026-11-02", "to": "2026-11-01"}, "before"),
    ({"format": "xlsx", "from": "2026-11-01", "to": "2026-11-02"}, "`format` must be one of iif, qbo, sap, yardi, csv, json"),
    ({"format": "csv", "from": "2026-01-01", "to": "2026-04-03"}, "93 days"),
    ({"format": "csv", "from": "2026-02-30", "to": "2026-03-01"}, "not a calendar date"),
    ({"format": "csv", "from": "01/11/2026", "to": "2026-11-02"}, "a date like"),
    ({"format": "csv", "from": "2026-11-01"}, "`to` is required"),
])
async def test_bad_parameters(bed: Bed, exports: str, params: dict[str, str], says: str) -> None:
    response = await bed.http.get(f"{exports}/exports/journal", params=params, headers=bed.auth("finance-readonly"))
    assert response.status_code == 400
    code, message = errors(response)
    assert code == "BAD_USER_INPUT" and says in message


async def test_citations_for_the_municipality(bed: Bed, exports: str) -> None:
    params = {"format": "csv", "from": (TODAY - timedelta(days=4)).isoformat(), "to": TODAY.isoformat()}
    response = await bed.http.get(f"{exports}/exports/citations", params=params, headers=bed.auth("enforcement-handheld"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith('.csv"') and "parkgate-citations-" in response.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(response.text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    rows = list(reader)
    assert rows, "the LPR simulator seeds citations over the last three days"
    allowed = set(bed.sandbox.clients["enforcement-handheld"]["facilities"])
    assert {r["facility_id"] for r in rows} <= allowed
    issued = [datetime.fromisoformat(r["issued_at_utc"]) for r in rows]
    assert issued == sorted(issued)
    for row in rows:
        local = datetime.fromisoformat(row["issued_at_local"])
        assert local == datetime.fromisoformat(row["issued_at_utc"]) and row["issue_date_local"] == local.date().isoformat()
        assert "*" not in row["plate"] and row["plate"]  # the full plate: the file is for adjudication
        if row["fine_amount"]:
            two_decimals(row["fine_amount"])


async def test_a_tenant_cannot_name_a_facility_outside_its_list(bed: Bed, exports: str) -> None:
    params = {"format": "csv", "from": TODAY.isoformat(), "to": TODAY.isoformat()}
    handheld = bed.auth("enforcement-handheld")
    hidden = await bed.http.get(f"{exports}/exports/citations", params={**params, "facility": "london-kings-cross"},
                                headers=handheld)
    unknown = await bed.http.get(f"{exports}/exports/citations", params={**params, "facility": "no-such-garage"},
                                 headers=handheld)
    assert hidden.status_code == unknown.status_code == 404
    assert errors(hidden)[0] == errors(unknown)[0] == "NOT_FOUND"
    assert errors(hidden)[1].replace("london-kings-cross", "X") == errors(unknown)[1].replace("no-such-garage", "X")
    own = await bed.http.get(f"{exports}/exports/citations", params={**params, "facility": "berlin-hbf"}, headers=handheld)
    assert own.status_code == 200
    assert {r["facility_id"] for r in csv.DictReader(io.StringIO(own.text))} <= {"berlin-hbf"}


async def test_a_failing_vendor_is_named(bed: Bed, finance: str) -> None:
    await bed.fault("parcs-central", "down")
    response = await bed.http.get(f"{finance}/exports/journal", headers=bed.auth("finance-readonly"),
                                  params={"format": "json", "from": TO.isoformat(), "to": TO.isoformat()})
    assert response.status_code == 503, response.text
    code, message = errors(response)
    assert code == "UPSTREAM_UNAVAILABLE" and "parcs-central" in message
    assert response.json()["errors"][0]["extensions"]["system"] == "parcs-central"
    # a facility of the other vendor is still exported
    response = await bed.http.get(f"{finance}/exports/journal", headers=bed.auth("finance-readonly"),
                                  params={"format": "json", "from": TO.isoformat(), "to": TO.isoformat(),
                                          "facility": "london-southbank"})
    assert response.status_code == 200, response.text


async def test_a_vendor_amount_in_fractions_of_a_cent_is_a_record_error(bed: Bed) -> None:
    """Rounded line by line it would unbalance a journal: it is left out and counted, never rounded."""
    from adapters.models import Batch, Money
    from adapters.operation_models import PaymentType, RevenueCategory, Transaction
    from gateway.finance.ledger import local_window, place

    entry = bed.sandbox.runtime.directory.by_id["berlin-hbf"]
    at = datetime(2026, 11, 2, 12, tzinfo=UTC)
    parcs = next(ref for kind, ref in entry.refs.items() if kind.value == "PARCS")
    good = Transaction("T1", parcs.vendor_id, at, Money(Decimal("3.00"), "EUR"), Money(Decimal("0.48"), "EUR"),
                       PaymentType.CARD, RevenueCategory.TRANSIENT, "ok")
    odd = Transaction("T2", parcs.vendor_id, at, Money(Decimal("1.005"), "EUR"), Money(Decimal("0.16"), "EUR"),
                      PaymentType.CARD, RevenueCategory.TRANSIENT, "sub-cent")
    windows = {entry.id: local_window(entry.config.time_zone, date(2026, 11, 2), date(2026, 11, 2))}
    placed, errors = place(parcs.system_id, Batch([good, odd]), [entry], windows)
    assert [e.transaction.vendor_id for e in placed] == ["T1"]
    assert [e.record_ref for e in errors] == ["T2"]
