"""When Redis goes away under a running gateway: no 500s, the configured choice, recovery without restart."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml
from click.testing import Result
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from typer.testing import CliRunner

from gateway import cli, cli_clients
from gateway.app import create_app
from gateway.auth.keys import Environment
from gateway.auth.scopes import Scope
from gateway.auth.tokens import TokenService
from gateway.config import load_config
from gateway.runtime import Runtime
from resolvers.schema import REQUIRED_SCOPES, schema
from tests.support.bed import Bed
from tests.support.processes import OwnRedis, deployment_config, start_gateway, wait_ready
from tests.support.servers import serve as serve_here
from tests.support.vendors import apds_entry
from tests.support.waiting import wait_until


@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_redis_outage_and_recovery(bed: Bed, own_redis: OwnRedis, tmp_path: Path, policy: str) -> None:
    config, env = deployment_config(bed, own_redis.url, tmp_path)
    document = yaml.safe_load(config.read_text())
    document["quotas"] = {"on_redis_error": policy}
    config.write_text(yaml.safe_dump(document))
    created = subprocess.run([sys.executable, "-m", "gateway", "clients", "create", "--config", str(config),
                              "--name", "steady", "--scope", "facilities:read"], capture_output=True, text=True, env=env)
    assert created.returncode == 0, created.stderr
    key = yaml.safe_load(created.stdout)["key"]
    process, url = start_gateway(config, env)
    try:
        await wait_ready(url, process)
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=10) as http:
            query = {"query": "{ facilities { totalCount } }"}
            assert (await http.post(f"{url}/graphql", json=query)).status_code == 200
            assert (await http.get(f"{url}/readyz")).json()["status"] == "ready"

            own_redis.stop()
            statuses = [(await http.post(f"{url}/graphql", json=query)).status_code for _ in range(10)]
            ready = await http.get(f"{url}/readyz")
            if policy == "open":
                # A local limiter takes over; the client seen before the outage is still recognised.
                assert statuses == [200] * 10
                assert ready.status_code == 200 and ready.json()["status"] == "degraded"
                assert ready.json()["quotas"] == "local-fallback" and ready.json()["store"] == "unreachable"
            else:
                assert set(statuses) == {503}
                refused = await http.post(f"{url}/graphql", json=query)
                assert refused.json()["errors"][0]["extensions"]["code"] == "GATEWAY_UNAVAILABLE"
                assert refused.headers["retry-after"]
                assert ready.status_code == 503 and ready.json()["quotas"] == "unavailable"
            unknown = await http.post(f"{url}/graphql", json=query,
                                      headers={"authorization": "Bearer pk_test_aaaaaaaaaaaa_" + "B" * 40})
            assert unknown.status_code == 503  # nobody new is let in while the store is unreachable

            own_redis.start()

            async def ready() -> bool:
                return (await http.get(f"{url}/readyz")).json()["status"] == "ready"

            await wait_until(ready, timeout_s=15, every_s=0.25, message="the gateway did not recover without a restart")
            after = await http.post(f"{url}/graphql", json=query)
            assert after.status_code == 200, after.text
            for _ in range(5):  # served from Redis again, not from the stale cache
                await asyncio.sleep(0.2)
                assert (await http.post(f"{url}/graphql", json=query)).status_code == 200
            assert (await http.get(f"{url}/readyz")).json()["quotas"] == "redis"
    finally:
        process.terminate()
        process.wait(timeout=10)
        stderr = process.stderr.read() if process.stderr else ""
        assert "Traceback" not in stderr, stderr


# --- every route and every admin operation, while Redis is away and once it is back ---------

#: every admin operation: the fields that need scope `admin` (checked against the schema below),
#: and the webhook fields an admin may use for any client. In an order that works with Redis up:
#: reads, then writes, the revocation last. `$target` is a client, `$endpoint` its webhook endpoint.
ADMIN_OPERATIONS: dict[str, str] = {
    "Query.clients": "{ clients { id usage { requests } usageHistory(minutes: 2) { requests } } }",
    "Query.throttleEvents": "{ throttleEvents(first: 5) { at } }",
    "Query.client": "query($target: ID!) { client(id: $target) { id status } }",
    "Query.auditLog": "{ auditLog(first: 5) { action } }",
    "Query.plans": "{ plans { name } }",
    "Query.webhookEndpoints": "query($target: ID!) { webhookEndpoints(clientId: $target) { id } }",
    "Query.webhookDeliveries": "query($endpoint: ID!) { webhookDeliveries(endpointId: $endpoint) { id } }",
    "Mutation.createClient": 'mutation { createClient(input: {name: "made-after-the-outage", environment: TEST, '
                             'scopes: ["facilities:read"]}) { keyId } }',
    "Mutation.updateClient": 'mutation($target: ID!) { updateClient(id: $target, input: {notes: "drill"}) { id } }',
    "Mutation.rotateClientKey": "mutation($target: ID!) { rotateClientKey(id: $target, gracePeriodSeconds: 0) { keyId } }",
    "Mutation.registerWebhook": 'mutation($target: ID!) { registerWebhook(url: "http://127.0.0.1:9/hooks", '
                                'eventTypes: ["GUEST_CHECKED_IN"], clientId: $target) { endpoint { id } } }',
    "Mutation.disableWebhook": "mutation($endpoint: ID!) { disableWebhook(id: $endpoint) { status } }",
    "Mutation.revokeClient": "mutation($target: ID!) { revokeClient(id: $target) { status } }",
}
#: admin operations that read only the configuration: they answer while Redis is away
WITHOUT_REDIS = {"Query.plans"}

FACILITIES = {"query": "{ facilities { totalCount } }"}
OCCUPANCY_AT_HBF = 'subscription { occupancyChanged(facilityId: "berlin-hbf") { occupied } }'


@dataclass
class Answer:
    """What a route answered: its HTTP status (for a WebSocket: 101 once acknowledged, else the
    close code), headers and body."""

    status: int
    headers: Mapping[str, str]
    text: str

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        return cls(response.status_code, response.headers, response.text)

    def code(self) -> str | None:
        """The error code, in whichever of the gateway's three error shapes the body has."""
        body = json.loads(self.text)
        if isinstance(body.get("errors"), list):  # the catalog's shape (GraphQL, exports, SSE)
            return body["errors"][0]["extensions"]["code"]
        error = body.get("error")
        return error.get("code") if isinstance(error, dict) else error  # webhook ingress; RFC 6749


class Caller:
    """Calls each route of a gateway as its users do: plain HTTP calls share one keep-alive connection."""

    def __init__(self, url: str, http: httpx.AsyncClient, key: str, client_id: str, token: str, bed: Bed) -> None:
        self.url, self.http, self.key, self.client_id, self.access_token, self.bed = url, http, key, client_id, token, bed
        self.auth = {"authorization": f"Bearer {key}"}
        self.connections: set[Any] = set()  # every connection plain calls used (held: identities stay unique)

    async def send(self, method: str, path: str, **kwargs: Any) -> Answer:
        response = await self.http.request(method, f"{self.url}{path}", **kwargs)
        self.connections.add(response.extensions["network_stream"])
        return Answer.of(response)

    async def graphql_post(self) -> Answer:
        return await self.send("POST", "/graphql", json=FACILITIES, headers=self.auth)

    async def graphql_by_token(self) -> Answer:
        """With an access token whose signing key this gateway has never read."""
        return await self.send("POST", "/graphql", json=FACILITIES, headers={"authorization": f"Bearer {self.access_token}"})

    async def graphql_get(self) -> Answer:
        return await self.send("GET", "/graphql", params=FACILITIES, headers=self.auth)

    async def token(self) -> Answer:
        return await self.send("POST", "/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(self.client_id, self.key))

    async def jwks(self) -> Answer:
        return await self.send("GET", "/.well-known/jwks.json")

    async def healthz(self) -> Answer:
        return await self.send("GET", "/healthz")

    async def readyz(self) -> Answer:
        return await self.send("GET", "/readyz")

    async def metrics(self) -> Answer:
        return await self.send("GET", "/metrics")

    async def board(self) -> Answer:
        return await self.send("GET", "/board")

    async def console(self) -> Answer:
        return await self.send("GET", "/admin")

    async def page_script(self) -> Answer:
        return await self.send("GET", "/pages/static/board.js")

    async def metrics_json(self) -> Answer:
        return await self.send("GET", "/metrics.json")

    async def webhook(self) -> Answer:
        path, raw, headers = apds_entry(self.bed, "B-RO-1")
        return await self.send("POST", path, content=raw, headers=headers)

    async def journal(self) -> Answer:
        return await self._export("/exports/journal")

    async def citations(self) -> Answer:
        return await self._export("/exports/citations")

    async def _export(self, path: str) -> Answer:
        day = datetime.now(UTC).date().isoformat()
        return await self.send("GET", path, params={"format": "csv", "from": day, "to": day}, headers=self.auth)

    async def sse_get(self) -> Answer:
        return await self._sse("GET", params={"query": OCCUPANCY_AT_HBF})

    async def sse_post(self) -> Answer:
        return await self._sse("POST", json={"query": OCCUPANCY_AT_HBF})

    async def _sse(self, method: str, **kwargs: Any) -> Answer:
        """Opens the stream and leaves at once (on a connection of its own: an unfinished stream ends it)."""
        async with httpx.AsyncClient(timeout=10) as own, own.stream(
                method, f"{self.url}/graphql/stream", headers=self.auth, **kwargs) as response:
            if response.status_code != 200:
                await response.aread()
            return Answer(response.status_code, response.headers, response.text if response.status_code != 200 else "")

    async def websocket(self) -> Answer:
        async with websockets.connect(self.url.replace("http", "ws", 1) + "/graphql",
                                      subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}))
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            except websockets.ConnectionClosed as closed:
                return Answer(closed.rcvd.code if closed.rcvd else 1006, {}, closed.rcvd.reason if closed.rcvd else "")
            assert message["type"] == "connection_ack", message
            return Answer(101, {}, "")


@dataclass(frozen=True)
class Probe:
    """One route called the way its users call it, with the status it must answer while Redis is away
    (503 where Redis was needed; for a WebSocket, close code 1013 "try again later") and once it is back."""

    method: str  # or "WEBSOCKET"
    path: str  # as the router has it
    call: Callable[[Caller], Awaitable[Answer]]
    outage: int
    recovered: int


#: every route of a deployment (the test fails when a route has none), called with a key this
#: gateway has not seen before the outage: deciding who it is needs Redis
PROBES = (
    Probe("POST", "/graphql", Caller.graphql_post, 503, 200),
    Probe("POST", "/graphql", Caller.graphql_by_token, 503, 200),
    Probe("GET", "/graphql", Caller.graphql_get, 503, 200),
    Probe("WEBSOCKET", "/graphql", Caller.websocket, 1013, 101),
    Probe("GET", "/graphql/stream", Caller.sse_get, 503, 200),
    Probe("POST", "/graphql/stream", Caller.sse_post, 503, 200),
    Probe("POST", "/oauth/token", Caller.token, 503, 200),
    Probe("GET", "/.well-known/jwks.json", Caller.jwks, 503, 200),
    Probe("GET", "/healthz", Caller.healthz, 200, 200),
    Probe("GET", "/readyz", Caller.readyz, 200, 200),  # degraded, serving on: quotas fail open by default
    Probe("GET", "/metrics", Caller.metrics, 200, 200),
    Probe("GET", "/metrics.json", Caller.metrics_json, 200, 200),
    Probe("POST", "/webhooks/{system_id}", Caller.webhook, 503, 202),  # not accepted: the vendor retries
    Probe("GET", "/exports/journal", Caller.journal, 503, 200),
    Probe("GET", "/exports/citations", Caller.citations, 503, 200),
    Probe("GET", "/board", Caller.board, 200, 200),  # the pages need no store: they ask for a key themselves
    Probe("GET", "/admin", Caller.console, 200, 200),
    Probe("GET", "/pages/static/{path:path}", Caller.page_script, 200, 200),
)


def routes_of(app: Starlette) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            found.add(("WEBSOCKET", route.path))
        elif isinstance(route, Route):  # no methods: the endpoint takes GET and POST and answers others 405
            found |= {(method, route.path) for method in (route.methods or {"GET", "POST"}) - {"HEAD"}}
        else:
            raise AssertionError(f"{route!r}: a kind of route this test does not know how to call")
    return found


def check(answer: Answer, expected: int, what: str) -> None:
    assert answer.status != 500 and "INTERNAL" not in answer.text, f"{what}: {answer}"
    assert answer.status == expected, f"{what}: {answer}"
    if answer.status == 503:
        assert answer.headers.get("retry-after", "").isdigit(), f"{what}: no Retry-After: {answer}"
        assert answer.code() in ("GATEWAY_UNAVAILABLE", "temporarily_unavailable"), f"{what}: {answer}"
    if answer.status == 1013:
        assert answer.text, f"{what}: a close without a reason"


class Records(logging.Handler):
    """Every log record of the gateway and of uvicorn, whose logger does not propagate (attach it
    once the server has started: uvicorn's logging setup removes the handlers it finds)."""

    LOGGERS = ("", "uvicorn")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def __enter__(self) -> Records:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [self.format(r) for r in self.records if r.exc_info or "Traceback" in r.getMessage()]


async def admin_operations(http: httpx.AsyncClient, url: str, key: str, ids: dict[str, str]) -> dict[str, Answer]:
    answers = {}
    for coordinate, document in ADMIN_OPERATIONS.items():
        response = await http.post(f"{url}/graphql", json={"query": document, "variables": ids},
                                   headers={"authorization": f"Bearer {key}"})
        answers[coordinate] = Answer.of(response)
    return answers


async def test_redis_away_no_route_and_no_admin_operation_answers_500(bed: Bed, own_redis: OwnRedis, tmp_path: Path) -> None:
    """The issue's test: with Redis killed, every HTTP route and every admin operation answers 503
    with Retry-After where Redis was needed (never 500, never INTERNAL), nothing logs a traceback,
    the keep-alive connection stays up; with Redis back, the same calls succeed without a restart."""
    assert {c for c, scopes in REQUIRED_SCOPES.items() if Scope.ADMIN.value in scopes} <= ADMIN_OPERATIONS.keys()
    path, env = deployment_config(bed, own_redis.url, tmp_path)
    document = yaml.safe_load(path.read_text())
    document["events"]["polling"] = False  # no vendor traffic of its own during the test
    document["webhooks"] = {"allow_networks": ["127.0.0.0/8"], "https_only": False}
    path.write_text(yaml.safe_dump(document))
    runtime = Runtime.from_config(load_config(path, environ=env))
    app = create_app(runtime, schema)
    assert routes_of(app) == {(p.method, p.path) for p in PROBES}, "give every route of the app a Probe"

    async with serve_here(app) as url, httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=1)) as http:
        with Records() as records:
            admin = await runtime.admin.create_client("test", name="ops", environment=Environment.TEST,
                                                      scopes=[Scope.ADMIN.value, Scope.FACILITIES_READ.value])
            target = await runtime.admin.create_client("test", name="partner", environment=Environment.TEST,
                                                       scopes=[Scope.FACILITIES_READ.value, Scope.HOSPITALITY_READ.value])
            fresh = await runtime.admin.create_client("test", name="fresh", environment=Environment.TEST, scopes=[
                Scope.FACILITIES_READ.value, Scope.OCCUPANCY_READ.value, Scope.FINANCE_READ.value,
                Scope.ENFORCEMENT_READ.value, Scope.PII_READ.value])
            registered = await http.post(f"{url}/graphql", headers={"authorization": f"Bearer {admin.key}"}, json={
                "query": ADMIN_OPERATIONS["Mutation.registerWebhook"], "variables": {"target": target.client.id}})
            assert registered.status_code == 200 and "errors" not in registered.json(), registered.text
            ids = {"target": target.client.id, "endpoint": registered.json()["data"]["registerWebhook"]["endpoint"]["id"]}
            # issued by another replica (its own token service on the same store): verifying it needs the store
            token, _ = await TokenService(runtime.store).issue(fresh.client, fresh.client.scopes)
            caller = Caller(url, http, fresh.key, fresh.client.id, token, bed)

            own_redis.stop()
            for probe in PROBES:
                check(await probe.call(caller), probe.outage, f"{probe.method} {probe.path} while Redis is away")
            for coordinate, answer in (await admin_operations(http, url, admin.key, ids)).items():
                check(answer, 200 if coordinate in WITHOUT_REDIS else 503, f"{coordinate} while Redis is away")
            # what can be answered without the store is: a partial answer, 200
            response = await http.post(f"{url}/graphql", json={"query": "{ plans { name } clients { id } }"},
                                       headers={"authorization": f"Bearer {admin.key}"})
            partial = response.json()
            assert response.status_code == 200 and partial["data"]["plans"] and partial["data"]["clients"] is None, partial
            assert [e["extensions"]["code"] for e in partial["errors"]] == ["GATEWAY_UNAVAILABLE"], partial
            assert len(caller.connections) == 1, "a keep-alive connection was dropped while Redis was away"

            own_redis.start()

            async def ready() -> bool:
                return json.loads((await caller.readyz()).text)["status"] == "ready"

            await wait_until(ready, timeout_s=15, every_s=0.25, message="the gateway did not recover without a restart")
            for probe in PROBES:
                check(await probe.call(caller), probe.recovered, f"{probe.method} {probe.path} with Redis back")
            for coordinate, answer in (await admin_operations(http, url, admin.key, ids)).items():
                check(answer, 200, f"{coordinate} with Redis back")
                assert "errors" not in json.loads(answer.text), f"{coordinate} with Redis back: {answer.text}"
    assert not records.tracebacks(), "\n\n".join(records.tracebacks())


#: every command of the admin CLI that acts on the client store, with arguments that work once Redis
#: is up, in that order (the client is created first, revoked last)
CLI_CALLS: dict[str, list[str]] = {
    "clients create": ["--name", "cli-drill", "--scope", "facilities:read"],
    "clients list": [],
    "clients show": ["cli-drill"],
    "clients update": ["cli-drill", "--notes", "drill"],
    "clients usage": ["cli-drill"],
    "clients rotate": ["cli-drill", "--grace-seconds", "0"],
    "clients revoke": ["cli-drill"],
    "audit": ["--limit", "5"],
}
#: admin commands that read only the configuration
CLI_WITHOUT_REDIS: dict[str, list[str]] = {"plans": []}


async def test_redis_away_the_admin_cli_fails_in_one_line_and_works_once_it_is_back(own_redis: OwnRedis,
                                                                                   tmp_path: Path) -> None:
    commands = {f"clients {c.name}" for c in cli_clients.clients_app.registered_commands}
    commands |= {c.name or c.callback.__name__ for c in cli.app.registered_commands
                 if c.callback is not None and c.callback.__module__ == cli_clients.__name__}
    assert commands == CLI_CALLS.keys() | CLI_WITHOUT_REDIS.keys(), "give every admin command a call here"
    config = tmp_path / "parkgate.yaml"
    config.write_text(yaml.safe_dump({"environment": "test", "systems": {}, "facilities": {},
                                      "auth": {"key_pepper": "${PARKGATE_KEY_PEPPER}"},
                                      "store": {"backend": "redis", "redis_url": own_redis.url}}))
    runner = CliRunner()

    async def run(command: str, args: list[str]) -> Result:
        # in a thread: the command runs its own event loop (asyncio.run), which must not be this one
        return await asyncio.to_thread(runner.invoke, cli.app, [*command.split(), *args, "--config", str(config)],
                                       env={"PARKGATE_KEY_PEPPER": "cli-drill-pepper"})

    own_redis.stop()
    for command, args in CLI_CALLS.items():
        result = await run(command, args)
        assert result.exit_code == 3 and isinstance(result.exception, SystemExit), (command, result.output)
        assert result.stderr.startswith("error: cannot reach the client store: "), (command, result.stderr)
        assert result.stderr.count("\n") == 1 and not result.stdout, (command, result.output)
    for command, args in CLI_WITHOUT_REDIS.items():
        assert (await run(command, args)).exit_code == 0, command

    own_redis.start()
    for command, args in {**CLI_CALLS, **CLI_WITHOUT_REDIS}.items():
        result = await run(command, args)
        assert result.exit_code == 0, (command, result.output)
