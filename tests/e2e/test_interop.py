"""Real third-party subscription clients against the sandbox's own /graphql and /graphql/stream.

    gql (Python)                 graphql-transport-ws   ws://…/graphql
    graphql-ws (npm)             graphql-transport-ws   ws://…/graphql
    subscriptions-transport-ws   legacy graphql-ws      ws://…/graphql
    graphql-sse (npm)            GraphQL over SSE, distinct connections mode   http://…/graphql/stream

The npm clients run in tests/e2e/interop/client.js (dependencies pinned in its package.json and
package-lock.json, installed into tests/e2e/interop/node_modules once per session). Each prints
"ready" once connected, then the first payload it receives as one line of JSON. A client may be
connected before its subscription is registered, so the test publishes the same event every
0.2 s until the payload arrives. Each library is also shown the end of a revoked client's
subscription, to check that it hands its application the coded reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from adapters.models import DomainEvent, EventType
from tests.support.bed import Bed
from tests.support.npm import installed
from tests.support.servers import repeating

INTEROP = Path(__file__).parent / "interop"
OCCUPANCY = ("subscription($f: String!) { occupancyChanged(facilityId: $f) "
             "{ facilityId zoneId occupied free capacity } }")
FACILITY = "berlin-hbf"
DEADLINE_S = 20.0


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """tests/e2e/interop/node_modules, installed once per session."""
    return installed(INTEROP, "interop tests with npm clients", timeout_s=180)


def occupancy(occupied: int) -> DomainEvent:
    now = datetime.now(UTC)
    return DomainEvent(id=uuid.uuid4().hex, type=EventType.OCCUPANCY_CHANGED, system_id="test", facility_id=FACILITY,
                       occurred_at=now, received_at=now, vendor_event_id=uuid.uuid4().hex,
                       payload={"occupied": occupied, "free": 100 - occupied, "capacity": 100}, zone_id="L1")


def publishing(bed: Bed, occupied: int) -> contextlib.AbstractAsyncContextManager[None]:
    """Publish the same occupancy figure every 0.2 s while the block runs."""
    return repeating(lambda: bed.sandbox.runtime.bus.publish(occupancy(occupied)), 0.2)


def assert_update(payload: dict[str, Any], occupied: int) -> None:
    assert "errors" not in payload, payload
    assert payload["data"]["occupancyChanged"] == {"facilityId": FACILITY, "zoneId": "L1", "occupied": occupied,
                                                   "free": 100 - occupied, "capacity": 100}


async def test_gql_python_client_over_graphql_transport_ws(bed: Bed) -> None:
    occupied = random.randint(1, 99)
    transport = WebsocketsTransport(url=bed.url.replace("http", "ws") + "/graphql",
                                    init_payload={"Authorization": f"Bearer {bed.key('dashboard')}"})
    async with Client(transport=transport) as session:
        assert transport.subprotocol == "graphql-transport-ws"

        async def first() -> dict[str, Any]:
            request = gql(OCCUPANCY)
            request.variable_values = {"f": FACILITY}
            async for result in session.subscribe(request):
                return result
            raise AssertionError("the subscription completed without a payload")

        async with publishing(bed, occupied):
            data = await asyncio.wait_for(first(), DEADLINE_S)
    assert_update({"data": data}, occupied)


NPM_CLIENTS = ["graphql-ws", "subscriptions-transport-ws", "graphql-sse"]


@contextlib.asynccontextmanager
async def npm_client(bed: Bed, node_clients: Path, kind: str, key: str, *mode: str) -> AsyncIterator[Any]:
    """tests/e2e/interop/client.js subscribed to OCCUPANCY with `key`; yields (the next line it prints, its exit)."""
    url = bed.url + "/graphql/stream" if kind == "graphql-sse" else bed.url.replace("http", "ws") + "/graphql"
    process = await asyncio.create_subprocess_exec(
        "node", str(node_clients / "client.js"), kind, url, key, OCCUPANCY, json.dumps({"f": FACILITY}), *mode,
        cwd=node_clients, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None

    async def line() -> str:
        text = (await process.stdout.readline()).decode().strip()  # type: ignore[union-attr]
        if not text:
            await process.wait()
            errors = (await process.stderr.read()).decode()  # type: ignore[union-attr]
            raise AssertionError(f"{kind} exited ({process.returncode}) before answering: {errors}")
        return text

    try:
        assert await asyncio.wait_for(line(), DEADLINE_S) == "ready"
        yield line, process.wait
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("kind", NPM_CLIENTS)
async def test_npm_client(bed: Bed, node_clients: Path, kind: str) -> None:
    occupied = random.randint(1, 99)
    async with npm_client(bed, node_clients, kind, bed.key("dashboard")) as (line, exited):
        async with publishing(bed, occupied):
            payload = json.loads(await asyncio.wait_for(line(), DEADLINE_S))
        assert_update(payload, occupied)
        assert await asyncio.wait_for(exited(), 10) == 0


@pytest.mark.parametrize("kind", NPM_CLIENTS)
async def test_npm_client_is_told_its_client_was_revoked(bed: Bed, node_clients: Path, kind: str) -> None:
    """What each library hands its application when a revoked client's subscription ends: the coded
    GraphQL error (graphql-sse as a last payload, then complete)."""
    created = (await bed.graphql("""mutation($name: String!) { createClient(input: {name: $name, environment: TEST,
        scopes: ["occupancy:read"]}) { key client { id } } }""", {"name": f"interop-{uuid.uuid4().hex[:8]}"}))
    key, client_id = created["data"]["createClient"]["key"], created["data"]["createClient"]["client"]["id"]
    async with npm_client(bed, node_clients, kind, key, "until-end") as (line, exited):
        async with publishing(bed, random.randint(1, 99)):
            assert "next" in json.loads(await asyncio.wait_for(line(), DEADLINE_S))
            revoked = await bed.graphql('mutation($id: ID!) { revokeClient(id: $id) { status } }', {"id": client_id})
            assert revoked["data"]["revokeClient"]["status"] == "REVOKED"
            seen = []
            while not {"error", "complete"} & set(seen[-1] if seen else {}):
                seen.append(json.loads(await asyncio.wait_for(line(), DEADLINE_S)))
        assert await asyncio.wait_for(exited(), 10) == 0
    last = seen[-1].get("error") or seen[-2]["next"]["errors"]  # graphql-sse: the errors arrive as a payload
    assert last[0]["extensions"]["code"] == "UNAUTHENTICATED" and "revoked" in last[0]["message"], seen
