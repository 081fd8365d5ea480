"""A dashboard subscribed to `occupancyChanged` hears a car at every sandbox facility within a second,
whichever system counts there: an APDS PARCS delivering webhooks, or systems without webhooks that
the sandbox polls (ParkLine, the bay sensors, a DATEX II publisher)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from gateway.sandbox import build_sandbox
from tests.support.servers import bound_socket, serve
from tests.support.streams import open_stream

SUBSCRIPTION = "subscription($f: String!) { occupancyChanged(facilityId: $f) { facilityId occupied } }"
#: what the issue asks, plus scheduling on a shared two-core machine
BOUND_S = 1.0
SLACK_S = 0.5


@pytest_asyncio.fixture(loop_scope="session")
async def polling_sandbox() -> AsyncIterator[tuple[str, object]]:
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, polling=True)
    async with serve(app, sock):
        yield url, sandbox


async def test_every_facility_hears_a_simulated_entry_within_a_second(polling_sandbox: tuple[str, object]) -> None:
    url, sandbox = polling_sandbox
    key = sandbox.clients["dashboard"]["key"]  # type: ignore[attr-defined]
    parcs_of = {facility: next(s for s in entry.systems if s.startswith("parcs"))  # type: ignore[attr-defined]
                for facility, entry in sandbox.config.facilities.items()}  # type: ignore[attr-defined]
    await asyncio.sleep(1.5)  # the pollers' baselines

    async def hears(facility: str, parcs: str, index: int) -> float:
        async with open_stream(url, "sse", key, SUBSCRIPTION, {"f": facility}) as stream:
            await asyncio.sleep(0.3)  # subscribed before the car comes
            async with httpx.AsyncClient() as http:
                started = time.monotonic()
                response = await http.post(f"{url}/sandbox/systems/{parcs}/simulate",
                                           json={"event": "entry", "facility_id": facility, "plate": f"B-LV {index}00"})
                assert response.status_code == 202, response.text
            while True:
                payload = await stream.data(timeout=BOUND_S + SLACK_S)
                if payload["data"]["occupancyChanged"]["facilityId"] == facility:
                    return time.monotonic() - started

    waits = await asyncio.gather(*(hears(f, p, i) for i, (f, p) in enumerate(sorted(parcs_of.items()))))
    assert max(waits) < BOUND_S + SLACK_S, dict(zip(sorted(parcs_of), waits, strict=True))
