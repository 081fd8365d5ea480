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

import gateway.events.poller  # noqa: E402,F401  (polling registers its start/stop)

import gateway.events.outbound  # noqa: E402,F401  (outbound webhooks: registers its worker above)

from gateway.events import subscriptions_http  # noqa: E402,F401 - WebSocket and SSE subscriptions

import gateway.events.ingress  # noqa: E402,F401  (inbound webhooks: /webhooks/{system_id} and its processor)

import gateway.events.guest_validations  # noqa: E402,F401  (hotel check-ins validate the guest's car)
