"""Subscriptions on the wire: WebSocket at /graphql (graphql-transport-ws and the legacy graphql-ws,
chosen by Sec-WebSocket-Protocol) and SSE at /graphql/stream (GraphQL over SSE, distinct
connections mode). Authenticated at connection (the `connection_init` payload; headers for SSE),
executed through the shared `SubscriptionHub`, kept alive with pings for load balancers. When the
client store cannot be reached at connection, `StoreUnavailable` goes on to the app's handler
(gateway/app.py): SSE gets 503 with Retry-After, a WebSocket is closed with 1013 (try again later).

Authorized for as long as they stay open: every stream's credentials are checked again every
`recheck_s`, busy or idle, and at once when its client changes (gateway/events/credential_watch.py).
A stream they no longer allow ends with a coded reason — WebSocket: an `error` for each operation
(UNAUTHENTICATED, or FORBIDDEN when the client's scopes or facilities changed), then close 4403;
SSE: a last `next` event carrying that error, then `complete` — which a client tells apart from a
restart (WebSocket close 1012, or an SSE stream cut without `complete`).
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

from gateway.auth.authenticate import UNRESTRICTED, AuthError, Principal
from gateway.errors import ErrorCode, RequestError
from gateway.events.credential_watch import CredentialWatch, StreamRefusal, Watch
from gateway.events.hub import Member, SubscriptionHub
from gateway.observability.request_log import current_errors
from gateway.runtime import Runtime

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
KEEPALIVE_S = 15.0
INIT_TIMEOUT_S = 10.0
#: how often an open stream's credentials are checked again without being told its client changed
RECHECK_S = 5.0


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
    """The subscription endpoints of one process. `keepalive_s`, `init_timeout_s` and `recheck_s`
    are parameters so a deployment (or a test) can change them."""

    def __init__(self, runtime: Runtime, schema: strawberry.Schema, *,
                 keepalive_s: float = KEEPALIVE_S, init_timeout_s: float = INIT_TIMEOUT_S,
                 recheck_s: float = RECHECK_S) -> None:
        self.runtime = runtime
        self.hub = SubscriptionHub(runtime, schema)
        self.keepalive_s = keepalive_s
        self.init_timeout_s = init_timeout_s
        self.credential_watch = CredentialWatch(runtime.authenticator, runtime.client_changes, recheck_s)

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute("/graphql", self.websocket),
                Route("/graphql/stream", self.sse, methods=["GET", "POST"])]

    async def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        if not self.runtime.config.auth.enabled:
            return UNRESTRICTED
        return await self.runtime.authenticator.authenticate(authorization, api_key)

    async def aclose(self) -> None:
        await self.credential_watch.aclose()
        await self.hub.aclose()

    # --- WebSocket ---------------------------------------------------------------------------
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
        credentials = (request.headers.get("authorization"), request.headers.get("x-api-key"))
        try:
            principal = await self.authenticate(*credentials)
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
        watch = self.credential_watch.watch(principal, credentials, lambda refusal: member.end([refusal.error()]))

        def done() -> None:  # idempotent: however the response ends, once or twice
            self.credential_watch.unwatch(watch)
            self.hub.leave(member, principal)

        return EventStream(self._sse_events(member, done), done,
                           media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def _sse_events(self, member: Member, done: Callable[[], None]) -> AsyncIterator[str]:
        """The member's payloads as `next` events; its end (a refusal's error included) as `complete`."""
        try:
            while True:
                try:
                    payload = await asyncio.wait_for(member.queue.get(), self.keepalive_s)
                except TimeoutError:
                    yield ":\n\n"  # a comment: keeps proxies and load balancers from closing an idle stream
                    continue
                if payload is None:
                    if member.errors:
                        yield f"event: next\ndata: {orjson.dumps({'errors': member.errors}).decode()}\n\n"
                    yield "event: complete\ndata:\n\n"
                    return
                yield f"event: next\ndata: {payload}\n\n"
        finally:
            done()


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    if body.get("errors"):
        body = {**body, "errors": current_errors(body["errors"])}
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
        self.watch: Watch | None = None
        self.ending: asyncio.Task[None] | None = None  # held so that the task runs to its end
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
            if self.watch is not None:
                self.server.credential_watch.unwatch(self.watch)
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
        self.watch = self.server.credential_watch.watch(self.principal, self.credentials, self.refused)
        await self.send({"type": "connection_ack"})
        if self.legacy:
            await self.send({"type": "ka"})
        return True

    def refused(self, refusal: StreamRefusal) -> None:
        self.ending = asyncio.get_running_loop().create_task(self.end(refusal))

    async def end(self, refusal: StreamRefusal) -> None:
        """The credentials no longer allow this connection: each open operation gets the coded reason
        as its `error`, then the socket closes with 4403, as a refused `connection_init` does."""
        with contextlib.suppress(Exception):  # the socket may be gone already
            for op_id in list(self.tasks):
                self.stop(op_id)
                await self.send_error(op_id, [refusal.error()])
            await self.ws.close(4403, "Forbidden")

    async def keepalive(self) -> None:
        """Pings, so that proxies and load balancers keep an idle connection open."""
        ping = '{"type":"ka"}' if self.legacy else '{"type":"ping"}'
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.server.keepalive_s)
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
            await self.send_error(op_id, exc.formatted())
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
                await self.send_error(op_id, member.errors)
            else:
                await self.send({"type": "complete", "id": op_id})
        except (WebSocketDisconnect, RuntimeError):
            pass  # the socket went away (RuntimeError: it was closed already): the connection's loop cleans up
        finally:
            self.tasks.pop(op_id, None)
            self.members.pop(op_id, None)
            if self.principal is not None:
                self.hub.leave(member, self.principal)

    async def send_error(self, op_id: str, errors: list[dict[str, Any]]) -> None:
        """The operation's end with errors (the legacy protocol carries one error, not a list)."""
        errors = current_errors(errors)  # the connection's request id (gateway/observability/request_log.py)
        await self.send({"type": "error", "id": op_id, "payload": errors[0] if self.legacy else errors})

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
