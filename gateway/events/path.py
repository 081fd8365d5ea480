"""The event path of one app, as one object: `create_app` builds it, mounts its `routes()`, and
runs `start()` and `stop()` with the app's lifespan. Nothing joins it by being imported.

Follow an event forward:
    vendor webhook   → `ingress`: POST /webhooks/{system_id} verifies it, dedupes it and durably
                       accepts it into `ingress.inbox` (gateway/events/ingress.py, inbox.py)
                     → `ingress.processor`: inbox → gateway ids → cache refresh → bus (processor.py)
                       (a vendor that delivers to subscribers, APDS, is asked to at start:
                       `vendor_subscriptions`, vendor_subscriptions.py)
    poll-only system → `polling`: a `Poller` per system reads and diffs snapshots → bus (poller.py)
    the bus (`runtime.bus`: memory, or Redis Streams so every replica sees every event) → each of
                       `subscriptions`      WebSocket and SSE at /graphql and /graphql/stream, executed
                                            once per identical subscription (subscriptions_http.py → hub.py)
                       `outbound`           partners' signed webhooks, retried until they land (outbound.py)
                       `guest_validations`  a hotel check-in validates the guest's car (guest_validations.py)
                       `occupancy_recorder` facilities' figures kept for `occupancyHistory` (occupancy_recorder.py)

Consumers start before producers, so that none misses what the producers publish first;
producers stop first.
"""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.routing import BaseRoute

from gateway.events.guest_validations import GuestValidations
from gateway.events.ingress import WebhookIngress
from gateway.events.occupancy_recorder import OccupancyRecorder
from gateway.events.outbound import OutboundWebhooks
from gateway.events.poller import Polling
from gateway.events.subscriptions_http import SubscriptionServer
from gateway.events.vendor_subscriptions import VendorSubscriptions
from gateway.runtime import Runtime


@dataclass
class EventPath:
    runtime: Runtime
    #: in: vendor webhooks, their inbox and the processor that publishes them
    ingress: WebhookIngress
    #: in: the systems that send no webhooks
    polling: Polling
    #: in: asks the vendors that deliver to subscribers (APDS) for what the ingress receives
    vendor_subscriptions: VendorSubscriptions
    #: out: GraphQL subscriptions (its `hub` runs each shared subscription)
    subscriptions: SubscriptionServer
    #: out: partners' webhooks; the runtime's service (resolvers register endpoints through it), whose worker runs here
    outbound: OutboundWebhooks
    #: out: parking validations for hotel guests who check in with a car
    guest_validations: GuestValidations
    #: out: each facility's figures over time, for `occupancyHistory`
    occupancy_recorder: OccupancyRecorder

    @classmethod
    def build(cls, runtime: Runtime, schema: strawberry.Schema) -> EventPath:
        return cls(
            runtime=runtime,
            ingress=WebhookIngress.build(runtime),
            polling=Polling(runtime),
            vendor_subscriptions=VendorSubscriptions.build(runtime),
            subscriptions=SubscriptionServer(runtime, schema),
            outbound=runtime.outbound,
            guest_validations=GuestValidations(runtime),
            occupancy_recorder=OccupancyRecorder(runtime),
        )

    def routes(self) -> list[BaseRoute]:
        return [*self.subscriptions.routes(), *self.ingress.routes()]

    async def start(self) -> None:
        await self.runtime.bus.start()
        self.guest_validations.start()
        self.occupancy_recorder.start()
        await self.outbound.start()
        await self.ingress.start()
        self.vendor_subscriptions.start()
        await self.polling.start()

    async def stop(self) -> None:
        await self.polling.stop()
        await self.vendor_subscriptions.stop()
        await self.ingress.stop()
        await self.subscriptions.aclose()
        await self.outbound.stop()
        await self.guest_validations.stop()
        await self.occupancy_recorder.stop()
        await self.runtime.bus.aclose()
