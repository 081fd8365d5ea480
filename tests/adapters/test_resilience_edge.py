"""A slow system in the sandbox: timeouts fire, the breaker opens and fails fast, then closes after `ok`."""

from __future__ import annotations

import asyncio

from tests.support.bed import TEST_BREAKER_RESET_S, Bed

QUERY = '{ facility(id: "berlin-hbf") { occupancy { served counted { occupied } sensed { occupied } } } }'


async def circuit(bed: Bed, system_id: str) -> tuple[str, str]:
    sources = (await bed.graphql("{ sources { id status circuit } }"))["data"]["sources"]
    found = next(s for s in sources if s["id"] == system_id)
    return found["status"], found["circuit"]


async def test_slow_system_times_out_opens_the_breaker_and_recovers(bed: Bed) -> None:
    await bed.fault("guidance", "slow", delay_ms=1500)  # beyond the 1 s vendor timeout of the test sandbox
    failures = bed.sandbox.runtime.systems.adapters["guidance"].http.breaker.failure_threshold
    for _ in range(failures):
        await bed.clear_cache()  # each query really asks the vendor
        result = await bed.graphql(QUERY)
        assert [e["extensions"]["code"] for e in result["errors"]] == ["UPSTREAM_TIMEOUT"]
        assert result["data"]["facility"]["occupancy"]["counted"]["occupied"] is not None
    assert await circuit(bed, "guidance") == ("DOWN", "OPEN")
    ready = (await bed.http.get(f"{bed.url}/readyz")).json()
    assert ready["systems"]["guidance"]["circuit"] == "OPEN"
    calls = (await bed.stats("guidance"))["total"]

    await bed.clear_cache()
    fast = await bed.graphql(QUERY)  # fails fast: the vendor is not called
    [error] = fast["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE" and "circuit open" in error["message"]
    assert (await bed.stats("guidance"))["total"] == calls

    await bed.fault("guidance", "ok")
    await asyncio.sleep(TEST_BREAKER_RESET_S + 0.1)  # half-open: the next call is the probe
    await bed.clear_cache()
    healed = await bed.graphql(QUERY)
    assert "errors" not in healed and healed["data"]["facility"]["occupancy"]["sensed"]["occupied"] is not None
    assert await circuit(bed, "guidance") == ("UP", "CLOSED")
    metrics = (await bed.http.get(f"{bed.url}/metrics.json")).json()["systems"]["guidance"]
    assert metrics["http"]["breaker"]["opens"] >= 1 and metrics["http"]["breaker"]["rejected"] >= 1
    assert metrics["cache"]["misses"] >= 1
