"""The admin API's history of use: `Client.usageHistory` minute by minute and `throttleEvents` (429s),
noted by the meter on the request path; in memory and in Redis alike."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from gateway.redis_connect import connect
from gateway.usage_log import UsageLog
from tests.support.bed import Bed

HISTORY = """query($id: ID!) { client(id: $id) { usageHistory(minutes: 5) { at requests cost } }
  throttleEvents(first: 100, clientId: $id) { at clientId refusedBy retryAfterSeconds } }"""


async def test_a_throttled_client_shows_in_its_history_and_in_the_throttle_events(bed: Bed) -> None:
    client_id, key = await bed.new_client(["facilities:read"], overrides={"requests": 2})
    async with httpx.AsyncClient() as http:
        statuses = [(await http.post(f"{bed.url}/graphql", json={"query": "{ facilities { totalCount } }"},
                                     headers={"authorization": f"Bearer {key}"})).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    answer = await bed.graphql(HISTORY, {"id": client_id})
    assert "errors" not in answer, answer
    minutes = answer["data"]["client"]["usageHistory"]
    assert len(minutes) == 5 and minutes == sorted(minutes, key=lambda m: m["at"])
    assert sum(m["requests"] for m in minutes) == 2 and sum(m["cost"] for m in minutes) > 0
    [event] = answer["data"]["throttleEvents"]
    assert event["clientId"] == client_id and event["refusedBy"] == "requests" and event["retryAfterSeconds"] >= 1


async def test_only_admins_read_them_and_bad_ranges_are_refused(bed: Bed) -> None:
    denied = await bed.graphql("{ throttleEvents { clientId } }", client="dashboard")
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = await bed.graphql("{ clients { usageHistory(minutes: 0) { at } } }")
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.fixture(params=["memory", "redis"])
async def usage_log(request: pytest.FixtureRequest) -> Any:
    redis = connect(request.getfixturevalue("redis_url"), timeout_s=2.0) if request.param == "redis" else None
    made = UsageLog(redis, f"usage-{uuid.uuid4().hex[:8]}:", max_throttles=3)
    yield made
    await made.aclose()


async def test_the_log_adds_up_charges_and_refunds_and_keeps_the_latest_throttles(usage_log: UsageLog) -> None:
    usage_log.note("a", requests=1, cost=50)
    usage_log.note("a", requests=0, cost=-30)  # the refund of an over-estimate
    usage_log.note("b", requests=1, cost=7)
    for i in range(5):
        usage_log.throttled("a" if i % 2 else "b", "cost", i + 1)
    [minute] = await usage_log.minutes("a", 1)
    assert (minute.requests, minute.cost) == (1, 20)
    assert [m.requests for m in await usage_log.minutes("nobody", 3)] == [0, 0, 0]
    assert [t.retry_after_s for t in await usage_log.throttles(10)] == [5, 4, 3]
    assert [t.retry_after_s for t in await usage_log.throttles(10, "a")] == [4]
