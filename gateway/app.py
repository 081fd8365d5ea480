"""The ASGI application: routes of a gateway, built from a `Runtime` and the schema it serves.

    /graphql   GraphQL over HTTP (POST, GET) and GraphiQL for browsers
    /oauth/token               OAuth2 client credentials: short-lived JWT access tokens
    /.well-known/jwks.json     the public keys that verify them
    /healthz   the process is alive
    /readyz    the gateway can serve: every configured system, its state and circuit breaker
    /metrics   Prometheus figures (gateway/observability/metrics_http.py: who may read them);
    /metrics.json   the same per system as JSON (upstream calls, cache, inbound webhooks)
    /board, /admin             the occupancy board and the admin console, browser pages (gateway/pages/)

The event path (gateway/events/path.py, built here) adds its routes (webhooks, subscriptions)
and runs with the app's lifespan; the finance path adds its exports. On every
route, work that needs the gateway's own store (Redis) while it cannot be reached ends in one
place, `store_unreachable`: 503 GATEWAY_UNAVAILABLE with Retry-After, never a 500.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import overload

import strawberry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.websockets import WebSocket, WebSocketState

from gateway.auth.oauth import jwks_endpoint, token_endpoint
from gateway.auth.scopes import Scope
from gateway.card_screen import CardNumberURLs
from gateway.errors import RETRY_AFTER_S, STORE_ERRORS, STORE_UNAVAILABLE, unavailable
from gateway.events.path import EventPath
from gateway.execution import Executor
from gateway.finance.http import finance_routes
from gateway.graphql_first import GraphQLFirst
from gateway.graphql_http import GraphQLEndpoint
from gateway.metering import Meter
from gateway.observability.metrics_http import PrivateListener, metrics_routes
from gateway.observability.request_log import RequestLog
from gateway.pages.routes import page_routes
from gateway.persisted_queries import PersistedQueries
from gateway.response_cache import ResponseCache
from gateway.runtime import Runtime
from gateway.systems import WEBHOOK_OUTCOMES, WEBHOOK_UNMAPPED, SystemHealth

log = logging.getLogger("parkgate.app")

#: WebSocket close code 1013, "Try Again Later" (RFC 6455 registry): clients reconnect later
TRY_AGAIN_LATER = 1013


# Starlette calls one exception handler for both kinds of connection: a response for a request, none
# for a WebSocket (which is closed instead). The overloads say so, which its handler types allow.
@overload
async def store_unreachable(conn: Request, exc: Exception) -> Response: ...
@overload
async def store_unreachable(conn: WebSocket, exc: Exception) -> None: ...
async def store_unreachable(conn: HTTPConnection, exc: Exception) -> Response | None:
    """Any route's work that needed the gateway's store while it cannot be reached: 503
    GATEWAY_UNAVAILABLE with Retry-After (a WebSocket is closed with 1013, try again later).
    One log line without a traceback: an outage is not a bug, and the connection stays open."""
    log.warning("%s: the store cannot be reached (%s: %s); answered GATEWAY_UNAVAILABLE",
                conn.url.path, type(exc).__name__, exc)
    if isinstance(conn, WebSocket):
        if conn.application_state is not WebSocketState.DISCONNECTED:
            await conn.close(TRY_AGAIN_LATER, STORE_UNAVAILABLE)
        return None
    return JSONResponse({"errors": [unavailable()]}, status_code=503,
                        headers={"retry-after": str(RETRY_AFTER_S), "cache-control": "no-store"})


def webhook_counts(health: SystemHealth) -> dict[str, int]:
    return {outcome: health.webhooks[outcome] for outcome in WEBHOOK_OUTCOMES}


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def metrics_json(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    """Countable figures per system (calls, retries, failures, latency, breaker; cache hits, misses,
    stale serves, coalesced waits; inbound webhook events by outcome), for monitoring to scrape."""

    async def handler(request: Request) -> Response:
        upstream = runtime.systems.upstream
        cache = upstream.metrics_dict() if upstream is not None else {}
        health = runtime.systems.health
        return JSONResponse({
            "systems": {system_id: {"http": adapter.http.metrics, "cache": cache.get(system_id, {}),
                                    **({"webhooks": webhook_counts(health[system_id])} if adapter.webhook_credential else {})}
                        for system_id, adapter in runtime.systems.adapters.items()},
            "quotas": runtime.quotas.status,
        })

    return handler


def readyz(runtime: Runtime) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Ready unless the gateway's own store is unreachable; degraded while quotas run locally."""

    async def handler(request: Request) -> JSONResponse:
        adapters = runtime.systems.adapters
        systems = {
            system_id: {"status": health.status.value, "circuit": adapters[system_id].http.breaker_state.value,
                        "last_error": health.last_error,
                        # events a vendor sends for places the configuration does not map: a sign it has drifted
                        **({"webhooks_unmapped": health.webhooks[WEBHOOK_UNMAPPED]} if adapters[system_id].webhook_credential else {})}
            for system_id, health in runtime.systems.health.items()
        }
        try:
            await runtime.store.ping()
            store = "ok"
        except Exception:  # noqa: BLE001 - any driver error means the same: unreachable
            store = "unreachable"
        quotas = await runtime.quotas.ping()
        # Serving on: the store is down but recent clients are still recognised and quotas run
        # locally (on_redis_error: open). Not ready: quotas must fail closed and cannot.
        status = "unavailable" if quotas == "unavailable" else (
            "degraded" if store != "ok" or quotas == "local-fallback" else "ready")
        body = {"status": status, "store": store, "quotas": quotas,
                "quota_policy": runtime.config.quotas.on_redis_error, "systems": systems}
        return JSONResponse(body, status_code=503 if status == "unavailable" else 200)

    return handler


async def bootstrap_admin(runtime: Runtime) -> None:
    """A gateway whose in-memory store is empty has no way in: make one admin, print its key once.

    With the Redis store, the first admin comes from `parkgate clients create` instead.
    """
    if runtime.config.store.backend != "memory" or not runtime.config.auth.enabled or await runtime.store.clients():
        return
    issued = await runtime.admin.create_client(
        "bootstrap", name="admin", environment=runtime.environment, scopes=[Scope.ADMIN.value, Scope.FACILITIES_READ.value],
        notes="created at start because the in-memory store was empty",
    )
    print(f"bootstrap admin client {issued.client.id}: key {issued.key} (shown once; create others with it)", flush=True)


def create_app(
    runtime: Runtime,
    schema: strawberry.Schema,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
) -> Starlette:
    """The app over `runtime`, serving `schema` (the composition roots pass resolvers/schema.py's)."""
    executor = Executor(schema, introspection=runtime.config.server.introspection, limits=runtime.config.limits)
    events = EventPath.build(runtime, schema)
    observability = runtime.observability
    meter = Meter(runtime.quotas, runtime.plans, runtime.usage_log, observability.metrics)
    endpoint = GraphQLEndpoint(runtime, executor, meter,
                               ResponseCache(runtime.cache, observability.metrics),
                               PersistedQueries(runtime.cache))
    metrics_settings = runtime.config.observability.metrics
    private_metrics = (PrivateListener(observability.metrics, metrics_settings.host, metrics_settings.port)
                       if metrics_settings.access == "port" and metrics_settings.enabled else None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for start in on_startup:
            await start()
        await runtime.upgrade_store()
        await bootstrap_admin(runtime)
        await events.start()
        runtime.usage_log.start()
        if private_metrics is not None:
            await private_metrics.start()
        # What exists once started (schema, configuration, the sandbox's world) lives as long as the
        # process: moved out of the collector's sight, full collections walk only what came after.
        # A request allocates thousands of objects (a parsed document, a validation), so the young
        # generation is collected every 10,000 allocations rather than 700: fewer short-lived objects
        # are promoted to be walked by full collections (bench/document_bench.py: pauses over 50 ms
        # under a flood of large documents went from 49 to 3 a minute).
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)
        yield
        if private_metrics is not None:
            await private_metrics.stop()
        await events.stop()
        await runtime.aclose()

    routes: list[BaseRoute] = [
        Route("/graphql", endpoint),  # the endpoint answers other methods with a coded 405
        token_endpoint(runtime.tokens, runtime.store, runtime.authenticator.pepper, runtime.environment),
        jwks_endpoint(runtime.tokens),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz(runtime), methods=["GET"]),
        *metrics_routes(runtime, metrics_json(runtime)),  # who may read them: gateway/observability/metrics_http.py
        *events.routes(),  # webhooks in, subscriptions out (gateway/events/path.py)
        *finance_routes(runtime, meter),  # accounting and municipal exports (gateway/finance/http.py)
        *(page_routes() if runtime.config.server.pages else []),  # /board, /admin (gateway/pages/)
        *extra_routes,
    ]
    # Every URL is screened for card numbers before any route sees it (gateway/card_screen.py).
    # Outermost, every request gets its id, its log line and (tracing on) its root span.
    # /graphql goes to its endpoint before Starlette's router, behind the same middleware and
    # handlers (gateway/graphql_first.py); its route above serves /graphql under a root path.
    app = GraphQLFirst(endpoint, routes=routes, lifespan=lifespan,
                       middleware=[Middleware(RequestLog, tracing=observability.tracing), Middleware(CardNumberURLs)],
                       exception_handlers={error: store_unreachable for error in STORE_ERRORS})
    app.state.runtime = runtime
    app.state.graphql = endpoint
    app.state.events = events
    app.state.private_metrics = private_metrics  # its port, once started (0 in the configuration: a free one)
    return app
