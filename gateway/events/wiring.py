"""Where the event path plugs into the app: its routes and its background work.

Each part of the event path contributes here, so `gateway/app.py` needs one import:
    inbound webhooks   /webhooks/{system_id}             (gateway/events/ingress.py)
    polling            one poller per poll-only system   (gateway/events/poller.py)
    subscriptions      WebSocket and SSE endpoints       (resolvers/subscriptions.py, gateway/events/subscriptions_http.py)
    outbound webhooks  delivery worker                   (gateway/events/outbound.py)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute

from gateway.runtime import Runtime

#: parts of the event path register here: a routes factory and a start/stop pair each
ROUTE_FACTORIES: list[Callable[[Runtime], list[BaseRoute]]] = []
STARTERS: list[Callable[[Runtime], Awaitable[None]]] = []
STOPPERS: list[Callable[[Runtime], Awaitable[None]]] = []


def event_routes(runtime: Runtime) -> list[BaseRoute]:
    return [route for factory in ROUTE_FACTORIES for route in factory(runtime)]


async def start_event_path(runtime: Runtime) -> None:
    await runtime.bus.start()
    for start in STARTERS:
        await start(runtime)


async def stop_event_path(runtime: Runtime) -> None:
    for stop in reversed(STOPPERS):
        await stop(runtime)
    await runtime.bus.aclose()
