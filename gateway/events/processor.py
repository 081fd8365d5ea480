"""What happens to an accepted webhook: inbox -> (expand) -> gateway ids -> cache refresh -> bus.

One background task per gateway takes items from the inbox in order; an item is acked once its
events are on the bus, and one the store failed for is taken again (at least once, never lost). For ids-only dialects
(the PMS) it first fetches the details through the adapter and dedupes what it learns. Each
vendor event becomes a DomainEvent in gateway ids (the vendor's facility id looked up in the
directory); the cache entries the event touches are refreshed first (a garage's occupancy read
again alone where its system allows: gateway/events/renewals.py; else marked stale), so a
subscriber that queries on the event reads fresh figures; then the event goes on the bus. A corrected event
(same vendor id, new content) is published with its revision; a corrected citation as
CITATION_UPDATED.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import replace
from datetime import UTC, datetime

from adapters.base import Adapter
from adapters.models import DomainEvent, EventType, VendorEvent
from gateway.directory import Directory
from gateway.errors import STORE_ERRORS
from gateway.events.inbox import Inbox, InboxItem, InboxOutcome
from gateway.events.renewals import OccupancyRenewals
from gateway.kernel.local_time import every_local_today
from gateway.runtime import Runtime
from gateway.systems import CITATIONS, OCCUPANCY, STAYS

log = logging.getLogger("parkgate.events.webhooks")

EXPAND_ATTEMPTS = 3
#: after the store failed, the inbox is read again this much later
STORE_RETRY_S = 0.5
VEHICLE_EVENTS = {EventType.VEHICLE_ENTERED, EventType.VEHICLE_EXITED, EventType.OCCUPANCY_CHANGED}
GUEST_EVENTS = {EventType.GUEST_BOOKED, EventType.GUEST_CHECKED_IN, EventType.GUEST_CHECKED_OUT}
CITATION_EVENTS = {EventType.CITATION_ISSUED, EventType.CITATION_UPDATED}


def facility_index(directory: Directory) -> dict[tuple[str, str], str]:
    """(system id, vendor facility id) -> gateway facility id."""
    return {(ref.system_id, ref.vendor_id): entry.id for entry in directory.entries for ref in entry.refs.values()}


def domain_event_id(system_id: str, vendor_event_id: str, revision: int) -> str:
    digest = hashlib.sha256(f"{system_id}\x00{vendor_event_id}\x00{revision}".encode()).hexdigest()[:24]
    return f"evt_{digest}"


class WebhookProcessor:
    def __init__(self, runtime: Runtime, inbox: Inbox) -> None:
        self.runtime = runtime
        self.inbox = inbox
        self.facilities = facility_index(runtime.directory)
        self.published = 0
        self.renewals = OccupancyRenewals(runtime.systems)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.renewals.aclose()

    async def _run(self) -> None:
        while True:
            try:
                items = await self.inbox.take()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the inbox backend is down: wait and retry
                log.warning("cannot read the webhook inbox (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(1.0)
                continue
            for item in items:
                try:
                    await self.process(item)
                    await self.inbox.ack(item)
                except asyncio.CancelledError:
                    raise
                except STORE_ERRORS as exc:  # the bus (Redis) is away: an outage, not a bug; no traceback
                    log.warning("webhook event %s from %s not processed yet: the store cannot be reached (%s)",
                                item.event.vendor_event_id, item.system_id, exc)
                    # Nothing acked is lost: this item and the rest of the batch are taken again
                    # (Redis keeps them pending) once the store answers — a failover, a restart.
                    self.inbox.redeliver()
                    await asyncio.sleep(STORE_RETRY_S)
                    break
                except Exception:  # one bad item never stops the rest (Redis keeps it pending)
                    log.exception("webhook event %s from %s not processed", item.event.vendor_event_id, item.system_id)

    async def process(self, item: InboxItem) -> None:
        adapter = self.runtime.systems.adapters[item.system_id]
        events = [item.event]
        if adapter.webhook_ids_only:
            events = await self._expand(adapter, events)
        for event in events:
            await self._publish(item, event)

    async def _expand(self, adapter: Adapter, events: list[VendorEvent]) -> list[VendorEvent]:
        for attempt in range(EXPAND_ATTEMPTS):
            try:
                expanded = await adapter.expand_webhook(events)
                break
            except Exception:
                if attempt == EXPAND_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5 * 2**attempt)
        fresh = []
        for event in expanded:
            outcome, revision = await self.inbox.claim(adapter.system_id, event)
            if outcome is not InboxOutcome.DUPLICATE:
                fresh.append(replace(event, revision=revision))
        return fresh

    def facility_of(self, system_id: str, event: VendorEvent) -> str | None:
        """The gateway facility whose place (zone, enterprise) in that system the event names, if any."""
        return self.facilities.get((system_id, event.vendor_facility_id or ""))

    async def _publish(self, item: InboxItem, event: VendorEvent) -> None:
        kind = event.type
        if kind is EventType.CITATION_ISSUED and event.revision > 1:
            kind = EventType.CITATION_UPDATED
        facility_id = self.facility_of(item.system_id, event)
        await self._refresh_cache(item.system_id, kind, event.vendor_facility_id)
        await self.runtime.bus.publish(DomainEvent(
            id=domain_event_id(item.system_id, event.vendor_event_id, event.revision),
            type=kind,
            system_id=item.system_id,
            facility_id=facility_id,
            occurred_at=event.occurred_at,
            received_at=item.received_at,
            vendor_event_id=event.vendor_event_id,
            payload=dict(event.payload),
            zone_id=event.zone_id,
            revision=event.revision,
        ))
        self.published += 1

    async def _refresh_cache(self, system_id: str, kind: EventType, vendor_facility_id: str | None) -> None:
        """Bring the entries this event changes up to date before anyone hears of it: a garage's
        occupancy read again alone where its system allows (gateway/events/renewals.py), else the
        entries marked stale, so that the next read asks the vendor."""
        upstream = self.runtime.systems.upstream
        if upstream is None:
            return
        window = every_local_today(datetime.now(UTC))  # the window the resolvers ask for (gateway/kernel/local_time.py)
        try:
            if kind in VEHICLE_EVENTS:
                if vendor_facility_id:
                    await self.renewals.renew(system_id, vendor_facility_id)
                else:
                    await upstream.invalidate(system_id, OCCUPANCY)
            elif kind in GUEST_EVENTS:
                await upstream.invalidate(system_id, STAYS, window)
            elif kind in CITATION_EVENTS:
                await upstream.invalidate(system_id, CITATIONS, window[:1])
        except Exception as exc:  # noqa: BLE001 - a cache outage must not hold events back; TTLs still apply
            log.warning("could not invalidate %s entries of %s (%s: %s)", kind, system_id, type(exc).__name__, exc)
