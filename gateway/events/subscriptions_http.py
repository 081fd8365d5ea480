"""Subscriptions on the wire: WebSocket at /graphql (graphql-transport-ws and the legacy graphql-ws,
chosen by Sec-WebSocket-Protocol) and SSE at /graphql/stream (GraphQL over SSE, distinct
connections mode). Authenticated at connection (the `connection_init` payload; headers for SSE),
executed through the shared `SubscriptionHub`, kept alive with pings for load balancers. When the
client store cannot be reached at connection, `StoreUnavailable` goes on to the app's handler
(gateway/app.py): SSE gets 503 with Retry-After, a WebSocket is closed with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import strawberry
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.auth.authenticate import UNRESTRICTED, AuthError, Principal, permission_signature
from gateway.errors import ErrorCode, RequestError, StoreUnavailable
from gateway.events.hub import Member, SubscriptionHub
from gateway.runtime import Runtime

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
KEEPALIVE_S = 15.0
INIT_TIMEOUT_S = 10.0


class Refused(Exception):
    pass


def _credentials(payload: Any) -> tuple[str | None, str | None]:
    """(authorization, api key) from a connection_init payload, keys matched case-insensitively."""
    if not isinstance(payload, dict):
        return None, None
    lowered = {str(k).lower().replace("-", "").replace("_", ""): v for k, v in payload.items()}
    headers = lowered.get("headers")
    if isinstance(headers, dict):  # some clients nest them: {"headers": {"Authorization": ...}}
        lowered = {**{str(k).lower().replace("-", "").replace("_", ""): v for k, v in headers.items()}, **lowered}
    auth, key = lowered.get("authorization"), lowered.get("apikey", lowered.get("xapikey"))
    return (auth if isinstance(auth, str) else None), (key if isinstance(key, str) else None)


class SubscriptionServer:
    """The subscription endpoints of one process. `keepalive_s` and `init_timeout_s` are parameters
    so a deployment (or a test) can shorten them."""

    def __init__(self, runtime: Runtime, schema: strawberry.Schema | None = None, *,
                 keepalive_s: float = KEEPALIVE_S, init_timeout_s: float = INIT_TIMEOUT_S) -> None:
        if schema is None:
            from gateway.schema import schema as product_schema  # the product schema, once it has `subscription=`
            schema = product_schema
        self.runtime = runtime
        self.hub = SubscriptionHub(runtime, schema)
        self.keepalive_s = keepalive_s
        self.init_timeout_s = init_timeout_s

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute("/graphql", self.websocket),
                Route("/graphql/stream", self.sse, methods=["GET", "POST"])]

    async def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        if not self.runtime.config.auth.enabled:
            return UNRESTRICTED
        return await self.runtime.authenticator.authenticate(authorization, api_key)

    # --- WebSocket ---------------------------------------------------------------------------
    async def still_allowed(self, principal: Principal, credentials: tuple[str | None, str | None]) -> str | None:
        """Why an open subscription must end (revoked, expired, or its permissions changed), or None."""
        try:
            now = await self.authenticate(*credentials)
        except AuthError as exc:
            return exc.message
        except StoreUnavailable:
            return None  # nobody can be re-checked, nor revoked, while the store is down
        if permission_signature(now) != permission_signature(principal):
            return "This client's scopes or facilities changed: subscribe again."
        return None

    async def websocket(self, ws: WebSocket) -> None:
        offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        protocol = TRANSPORT_WS if TRANSPORT_WS in offered else LEGACY_WS if LEGACY_WS in offered else None
        if protocol is None:
            await ws.close(4406, "Subprotocol not acceptable")
            return
        await ws.accept(subprotocol=protocol)
        await WsConnection(self, ws, protocol == LEGACY_WS).serve()

    # --- SSE -----------------------------------------------------------------------------------
    async def sse(self, request: Request) -> Response:
        headers = request.headers
        try:
            principal = await self.authenticate(headers.get("authorization"), headers.get("x-api-key"))
        except AuthError as exc:
            return _json({"errors": [{"message": exc.message, "extensions": {"code": ErrorCode.UNAUTHENTICATED.value}}]}, 401,
                         {"www-authenticate": exc.www_authenticate()})
        try:
            if request.method == "GET":
                payload: Any = dict(request.query_params)
                if "variables" in payload:
                    payload["variables"] = orjson.loads(payload["variables"])
            else:
                payload = orjson.loads(await request.body())
            op = self.hub.prepare(payload)
            member = await self.hub.join(op, principal)
        except orjson.JSONDecodeError:
            return _json({"errors": [{"message": "Not valid JSON.", "extensions": {"code": ErrorCode.BAD_REQUEST.value}}]}, 400)
        except RequestError as exc:
            return _json({"errors": exc.formatted()}, exc.status)
        credentials = (headers.get("authorization"), headers.get("x-api-key"))
        return EventStream(self._sse_events(member, principal, credentials), lambda: self.hub.leave(member, principal),
                           media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def _sse_events(self, member: Member, principal: Principal,
                          credentials: tuple[str | None, str | None]) -> AsyncIterator[str]:
        try:
            while True:
                try:
                    payload = await asyncio.wait_for(member.queue.get(), self.keepalive_s)
                except TimeoutError:
                    refusal = await self.still_allowed(principal, credentials)
                    if refusal is not None:
                        error = {"message": refusal, "extensions": {"code": ErrorCode.UNAUTHENTICATED.value}}
                        yield f"event: next\ndata: {orjson.dumps({'errors': [error]}).decode()}\n\n"
                        yield "event: complete\ndata:\n\n"
                        return
                    yield ":\n\n"  # a comment: keeps proxies and load balancers from closing an idle stream
                    continue
                if payload is None:
                    if member.errors:
                        yield f"event: next\ndata: {orjson.dumps({'errors': member.errors}).decode()}\n\n"
                    yield "event: complete\ndata:\n\n"
                    return
                yield f"event: next\ndata: {payload}\n\n"
        finally:
            self.hub.leave(member, principal)


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class WsConnection:
    """One WebSocket: connection_init → ack, then subscriptions by id until either side closes."""

    def __init__(self, server: SubscriptionServer, ws: WebSocket, legacy: bool) -> None:
        self.server = server
        self.hub = server.hub
        self.ws = ws
        self.legacy = legacy
        self.principal: Principal | None = None
        self.credentials: tuple[str | None, str | None] = (None, None)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.members: dict[str, Member] = {}
        self.lock = asyncio.Lock()

    async def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        async with self.lock:
            await self.ws.send_text(text)

    async def serve(self) -> None:
        keepalive: asyncio.Task[None] | None = None
        try:
            if not await self.init():
                return
            keepalive = asyncio.create_task(self.keepalive())
            while True:
                message = await self.receive()
                if message is None:
                    return
                await self.handle(message)
        except WebSocketDisconnect:
            pass
        finally:
            if keepalive is not None:
                keepalive.cancel()
            for op_id in list(self.tasks):
                self.stop(op_id)

    async def receive(self) -> dict[str, Any] | None:
        text = await self.ws.receive_text()
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.ws.close(4400, "Invalid message received")
            return None
        return message

    async def init(self) -> bool:
        try:
            message = await asyncio.wait_for(self.receive(), self.server.init_timeout_s)
        except TimeoutError:
            await self.ws.close(4408, "Connection initialisation timeout")
            return False
        if message is None:
            return False
        if message["type"] != "connection_init":
            await self.ws.close(4401 if not self.legacy else 4400, "Unauthorized")
            return False
        self.credentials = _credentials(message.get("payload"))
        try:
            self.principal = await self.server.authenticate(*self.credentials)
        except AuthError as exc:
            if self.legacy:
                await self.send({"type": "connection_error", "payload": {
                    "message": exc.message, "extensions": {"code": ErrorCode.UNAUTHENTICATED.value}}})
            await self.ws.close(4403, "Forbidden")
            return False
        await self.send({"type": "connection_ack"})
        if self.legacy:
            await self.send({"type": "ka"})
        return True

    async def keepalive(self) -> None:
        """Pings for idle connections; and each time, the credentials again: a client revoked (or a
        key expired) while connected is closed with the protocol's forbidden code within one interval."""
        ping = '{"type":"ka"}' if self.legacy else '{"type":"ping"}'
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.server.keepalive_s)
                assert self.principal is not None
                if await self.server.still_allowed(self.principal, self.credentials) is not None:
                    for op_id in list(self.tasks):
                        self.stop(op_id)
                    await self.ws.close(4403, "Forbidden")
                    return
                await self.send(ping)

    async def handle(self, message: dict[str, Any]) -> None:
        kind, op_id = message["type"], message.get("id")
        if kind == "ping":
            await self.send({"type": "pong", **({"payload": message["payload"]} if "payload" in message else {})})
        elif kind == "pong":
            pass
        elif kind == "connection_init":
            await self.ws.close(4429, "Too many initialisation requests")
            raise WebSocketDisconnect(4429)
        elif kind in ("subscribe", "start") and isinstance(op_id, str):
            if op_id in self.tasks:
                await self.ws.close(4409, f"Subscriber for {op_id} already exists")
                raise WebSocketDisconnect(4409)
            await self.subscribe(op_id, message.get("payload"))
        elif kind in ("complete", "stop") and isinstance(op_id, str):
            self.stop(op_id)
        elif kind == "connection_terminate":
            await self.ws.close(1000)
            raise WebSocketDisconnect(1000)
        else:
            await self.ws.close(4400, f"Unexpected message of type {kind}")
            raise WebSocketDisconnect(4400)

    async def subscribe(self, op_id: str, payload: Any) -> None:
        assert self.principal is not None
        try:
            op = self.hub.prepare(payload)
            member = await self.hub.join(op, self.principal)
        except RequestError as exc:
            errors = exc.formatted()
            if self.legacy:
                await self.send({"type": "error", "id": op_id, "payload": errors[0]})
            else:
                await self.send({"type": "error", "id": op_id, "payload": errors})
            return
        self.members[op_id] = member
        self.tasks[op_id] = asyncio.create_task(self.forward(op_id, member))

    async def forward(self, op_id: str, member: Member) -> None:
        """This subscription's payloads, framed around the shared serialized text."""
        head = f'{{"type":"{"data" if self.legacy else "next"}","id":{orjson.dumps(op_id).decode()},"payload":'
        try:
            async for payload in member:
                await self.send(head + payload + "}")
            if member.errors:
                await self.send({"type": "error", "id": op_id, "payload": member.errors[0] if self.legacy else member.errors})
            else:
                await self.send({"type": "complete", "id": op_id})
        except Exception:  # noqa: BLE001 - the socket went away: the connection's loop cleans up
            pass
        finally:
            self.tasks.pop(op_id, None)
            self.members.pop(op_id, None)
            if self.principal is not None:
                self.hub.leave(member, self.principal)

    def stop(self, op_id: str) -> None:
        task = self.tasks.pop(op_id, None)
        member = self.members.pop(op_id, None)
        if member is not None and self.principal is not None:
            self.hub.leave(member, self.principal)
        if task is not None:
            task.cancel()


class EventStream(StreamingResponse):
    """An SSE response that gives its subscription back however the response ends — also when
    the client goes away before the first byte, when the body generator never starts."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()  # idempotent: leaving twice is leaving once


def subscription_routes(runtime: Runtime) -> list[BaseRoute]:
    server = SubscriptionServer(runtime)
    runtime.subscription_server = server  # type: ignore[attr-defined]  # closed with the event path
    return server.routes()


async def stop_subscriptions(runtime: Runtime) -> None:
    server = getattr(runtime, "subscription_server", None)
    if server is not None:
        await server.hub.aclose()


from gateway.events.wiring import ROUTE_FACTORIES, STOPPERS  # noqa: E402 - registered on import (see wiring.py)

ROUTE_FACTORIES.append(subscription_routes)
STOPPERS.append(stop_subscriptions)
