"""Idempotency keys on both backends (memory; a real throwaway Redis): a retry returns the first
result and runs nothing, another request under the same key is a CONFLICT, concurrent retries
wait for the first, and a failed first attempt leaves the key free."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from gateway.errors import ErrorCode, GatewayError
from gateway.idempotency import MemoryIdempotency, RedisIdempotency, fingerprint_of, reference_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="session")
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryIdempotency()
        return
    redis_url = request.getfixturevalue("redis_url")
    backend = RedisIdempotency.from_url(redis_url, prefix=f"t{uuid.uuid4().hex[:6]}:")
    yield backend
    await backend.aclose()


class Work:
    """A write that counts how often it really ran."""

    def __init__(self, result: Any = None, delay: float = 0.0, fail: bool = False) -> None:
        self.runs = 0
        self.result = result if result is not None else {"id": "R1", "price": "3.00"}
        self.delay, self.fail = delay, fail

    async def __call__(self) -> Any:
        self.runs += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, "the PARCS is down")
        return self.result


async def test_a_retry_returns_the_first_result_and_runs_nothing(store: Any) -> None:
    work = Work()
    first = await store.run("cl_1:createReservation", "k1", fingerprint_of({"plate": "B1"}), work)
    again = await store.run("cl_1:createReservation", "k1", fingerprint_of({"plate": "B1"}), work)
    assert first == again == work.result and work.runs == 1


async def test_the_same_key_for_another_request_is_a_conflict(store: Any) -> None:
    work = Work()
    await store.run("cl_1:createReservation", "k2", fingerprint_of({"plate": "B1"}), work)
    with pytest.raises(GatewayError) as refused:
        await store.run("cl_1:createReservation", "k2", fingerprint_of({"plate": "B2"}), work)
    assert refused.value.extensions["reason"] == "IDEMPOTENCY_KEY_REUSED" and work.runs == 1


async def test_keys_belong_to_a_client_and_an_operation(store: Any) -> None:
    work = Work()
    for scope in ("cl_1:createReservation", "cl_2:createReservation", "cl_1:issuePermit"):
        await store.run(scope, "same-key", fingerprint_of({}), work)
    assert work.runs == 3


async def test_concurrent_retries_wait_for_the_first(store: Any) -> None:
    work = Work(delay=0.2)
    results = await asyncio.gather(*(store.run("cl_1:payForSession", "k3", "fp", work) for _ in range(5)))
    assert work.runs == 1 and all(r == work.result for r in results)


async def test_a_failed_attempt_leaves_the_key_free(store: Any) -> None:
    failing = Work(fail=True)
    with pytest.raises(GatewayError):
        await store.run("cl_1:createReservation", "k4", "fp", failing)
    working = Work()
    assert await store.run("cl_1:createReservation", "k4", "fp", working) == working.result
    assert (failing.runs, working.runs) == (1, 1)


async def test_references_are_stable_and_private_to_client_and_operation() -> None:
    a = reference_for("cl_1", "createReservation", "k", "fp")
    assert a == reference_for("cl_1", "createReservation", "k", "fp")
    assert len({a, reference_for("cl_2", "createReservation", "k", "fp"), reference_for("cl_1", "issuePermit", "k", "fp"),
                reference_for("cl_1", "createReservation", "k", "other request")}) == 4
    assert a.startswith("pg-") and len(a) == 35  # a digest: the client's key itself never reaches a vendor
