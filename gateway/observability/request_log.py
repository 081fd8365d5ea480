"""Every HTTP request gets an id and one log line; GraphQL requests, their traces' root span.

Follow a request: `RequestLog.__call__` takes the caller's `X-Request-Id` when it is a sane one
(1 to 128 of letters, digits and `._:-`), else makes one, and keeps it in `current()` (a
`RequestRecord`) for the request's duration, so that deeper code fills in what only it knows (the
client, the GraphQL operation, its cost, the first error's code: gateway/graphql_http.py) and every
log line written meanwhile carries it (`RequestIdFilter`). The id goes back in the `X-Request-Id`
response header and in GraphQL errors' `extensions.requestId`. When the response is sent, one line:
method, path, status, duration, and what was filled in; never a key, a query's text or a variable.

Routine requests (health and readiness probes, scrapes, the sandbox's simulated vendors being
called by the gateway itself) are logged at DEBUG, everything else at INFO.

With tracing on, each request but the routine ones is also the SERVER span of a trace, child of
the caller's `traceparent` when it sent one.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.card_numbers import looks_like_card_number, may_hold_card, redact
from gateway.observability.tracing import Tracing

log = logging.getLogger("parkgate.request")

HEADER = b"x-request-id"
#: the request headers read here: the caller's id and its trace context
_READ = frozenset({HEADER, b"traceparent", b"tracestate"})
#: Request ids are unique, not secret (they are echoed and logged): a Mersenne Twister seeded from the
#: OS makes one in a third of the time of `secrets`, without a system call per request. Its own
#: instance (no seed set elsewhere reaches it), seeded anew in a forked child.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)
_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
#: paths whose requests are routine: their lines are DEBUG
ROUTINE_PREFIXES = ("/healthz", "/readyz", "/metrics", "/sim/", "/sandbox/")


@dataclass(slots=True)
class RequestRecord:
    """What the request's log line says; filled in as the request goes forward."""

    id: str
    method: str
    path: str
    client_id: str | None = None
    operation: str | None = None
    cost: int | None = None
    code: str | None = None  # the first error's code, if any
    #: a sampled trace records this request: deeper code makes spans (else it need not even look)
    sampled: bool = False


_current: ContextVar[RequestRecord | None] = ContextVar("parkgate_request", default=None)


def current() -> RequestRecord | None:
    """The request being served in this task, if any."""
    return _current.get()


def current_id() -> str | None:
    record = _current.get()
    return record.id if record is not None else None


def with_request_id(errors: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    """`errors`, each with the request's id in `extensions.requestId` (new dicts: formatted errors may be shared)."""
    return [{**error, "extensions": {**error.get("extensions", {}), "requestId": request_id}} for error in errors]


def current_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`errors` with the id of the request being served, if any."""
    record = _current.get()
    return with_request_id(errors, record.id) if record is not None else errors


def request_id(offered: str | None) -> str:
    """The caller's id when it is a sane one, else a new one (32 hex digits). An id that reads as a
    card number is not sane: it would be echoed and logged (gateway/card_numbers.py)."""
    if offered is not None and _SANE_ID.fullmatch(offered) and not looks_like_card_number(offered):
        return offered
    return f"{_ids.getrandbits(128):032x}"


class RequestLog:
    """ASGI middleware: the request's id, its response header, its log line, its root span."""

    def __init__(self, app: ASGIApp, tracing: Tracing | None = None) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        offered = traceparent = tracestate = None
        for name, value in scope["headers"]:
            if name in _READ:  # one set lookup for each of the request's headers, not three comparisons
                if name == HEADER:
                    offered = value.decode("latin-1")
                elif name == b"traceparent":
                    traceparent = value.decode("latin-1")
                else:
                    tracestate = value.decode("latin-1")
        # A path may hold a card number (refused further in, gateway/card_screen.py): never logged or traced as is.
        path: str = scope["path"]
        if may_hold_card(path):
            path = redact(path)
        record = RequestRecord(request_id(offered), scope.get("method", "WS"), path)
        token = _current.set(record)
        status = 0
        started = time.perf_counter()
        header = (HEADER, record.id.encode("ascii"))

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        routine = path.startswith(ROUTINE_PREFIXES)
        try:
            tracing = self.tracing
            if (tracing is not None and kind == "http" and not routine
                    and (traceparent is not None or tracing.sampled_root())):
                with tracing.server_span(f"{record.method} {path}", traceparent, tracestate,
                                              {"http.request.method": record.method, "url.path": path}) as span:
                    record.sampled = span is not None
                    await self.app(scope, receive, sending)
                    if span is not None:
                        span.set_attribute("http.response.status_code", status)
            else:
                await self.app(scope, receive, sending)
        finally:
            _current.reset(token)
            level = logging.DEBUG if routine else logging.INFO
            if log.isEnabledFor(level):
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                log.log(level, "%s %s %s %.2f ms%s", record.method, path, status or "-", duration_ms, _summary(record),
                        extra={"request_id": record.id, "method": record.method, "path": path, "status": status or None,
                               "duration_ms": duration_ms, "client_id": record.client_id,
                               "operation": record.operation, "cost": record.cost, "error_code": record.code})


def _summary(record: RequestRecord) -> str:
    """The filled-in facts, for the text format's message (JSON has them as fields)."""
    parts = [f"id={record.id}"]
    if record.client_id is not None:
        parts.append(f"client={record.client_id}")
    if record.operation is not None:
        parts.append(f"op={record.operation}")
    if record.cost is not None:
        parts.append(f"cost={record.cost}")
    if record.code is not None:
        parts.append(f"code={record.code}")
    return " " + " ".join(parts)


class RequestIdFilter(logging.Filter):
    """Every log line written while a request is served carries its id (`request_id`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current_record = _current.get()
            record.request_id = current_record.id if current_record is not None else None
        return True
