"""The ASGI application: routes of a gateway, built from a `Runtime`.

    /graphql   GraphQL over HTTP (POST, GET) and GraphiQL for browsers
    /healthz   the process is alive
    /readyz    the gateway can serve: every configured system and its state
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from gateway.execution import Executor
from gateway.graphql_http import GraphQLEndpoint
from gateway.runtime import Runtime
from gateway.schema import schema


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def readyz(runtime: Runtime):  # noqa: ANN201 - a route handler
    async def handler(request: Request) -> JSONResponse:
        systems = {
            system_id: {"status": health.status.value, "last_error": health.last_error}
            for system_id, health in runtime.systems.health.items()
        }
        return JSONResponse({"status": "ready", "systems": systems})

    return handler


def create_app(runtime: Runtime, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    executor = Executor(schema, introspection=runtime.config.server.introspection)
    endpoint = GraphQLEndpoint(runtime, executor)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await runtime.aclose()

    routes: list[BaseRoute] = [
        Route("/graphql", endpoint),  # the endpoint answers other methods with a coded 405
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz(runtime), methods=["GET"]),
        *extra_routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app
