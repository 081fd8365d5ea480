"""/graphql taken before Starlette's router: the busiest path skips the routing it does not need.

Starlette sends every request through ServerErrorMiddleware, the app's middleware, then
ExceptionMiddleware (a `Request` and two closures per request) and the router (each route's
regular expression, a child scope). On a response-cache hit that was a seventh of the gateway's
time in process (27.6 → 24.5 µs), and over HTTP the cached edge went from 0.73x to 0.74–0.77x bare
Starlette without it (bench/cache_bench.py, issue 14).

`GraphQLFirst` is the same app with one more way in. An HTTP request for exactly `/graphql` (no root
path) goes through the same stack built around the endpoint itself: ServerErrorMiddleware (and
Starlette's body limit, when the app sets one) → the app's middleware (request log, card-number
URL screen) → the app's exception handlers, looked up by the exception's class as
ExceptionMiddleware looks them up (an unreachable store answers 503, not 500) → `GraphQLEndpoint`. Everything else (every other path,
WebSockets, the lifespan) goes through Starlette's whole stack as before, and so does
`/graphql/`, which Starlette redirects.
"""

from __future__ import annotations

import inspect
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

PATH = "/graphql"


class GraphQLFirst(Starlette):
    """Starlette, with `/graphql` answered by `graphql` behind the same middleware and handlers."""

    def __init__(self, graphql: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphql = graphql

    def build_middleware_stack(self) -> ASGIApp:
        everything = super().build_middleware_stack()
        error_handler = None
        handlers: dict[Any, Any] = {}
        for key, value in self.exception_handlers.items():  # split as Starlette splits them
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        middleware = [Middleware(ServerErrorMiddleware, handler=error_handler, debug=self.debug)]
        max_body_size: int | None = getattr(self, "max_body_size", None)
        if max_body_size is not None:  # Starlette's own body limit, where it has one
            from starlette.middleware.body_limit import RequestBodyLimitMiddleware

            middleware.append(Middleware(RequestBodyLimitMiddleware, max_body_size=max_body_size))
        middleware += self.user_middleware
        graphql: ASGIApp = _Handled(self.graphql, handlers)
        for cls, args, kwargs in reversed(middleware):
            graphql = cls(graphql, *args, **kwargs)
        return _ByPath(graphql, everything)


class _ByPath:
    __slots__ = ("everything", "graphql")

    def __init__(self, graphql: ASGIApp, everything: ASGIApp) -> None:
        self.graphql = graphql
        self.everything = everything

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and not scope.get("root_path"):
            await self.graphql(scope, receive, send)
        else:
            await self.everything(scope, receive, send)


class _Handled:
    """The app's exception handlers around the endpoint. The endpoint sends nothing until its answer
    is whole (`GraphQLEndpoint.__call__`), so a handled exception never finds a response started."""

    __slots__ = ("app", "handlers")

    def __init__(self, app: ASGIApp, handlers: dict[Any, Any]) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            handler = next((self.handlers[cls] for cls in type(exc).__mro__ if cls in self.handlers), None)
            if handler is None:
                raise  # to ServerErrorMiddleware: a 500, logged with its traceback
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):  # the app's handlers are coroutines (gateway/app.py)
                response = await response
            if response is not None:
                await response(scope, receive, send)
