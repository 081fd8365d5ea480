"""A car came or went at one garage: that garage's occupancy read again alone and put in the cached
list (gateway/systems.py `Systems.renew`), where its system allows; else the list marked stale.

The webhook processor handles events one at a time, so a renewal must not hold the queue: each runs
as a task of its own and the event waits for it at most `WAIT_S` before it is published anyway (a
PARCS that answers in a few ms is renewed before anyone hears of the event; a slow one is renewed
a moment after). A system whose last renewal overran that wait is not waited for until one keeps
within it again, so a slow vendor costs the event queue nothing. Events at one garage while its
renewal runs share it, and it reads once more when it is done, so the reading kept is one taken
after the last of them. A renewal that fails, or cannot be made, marks the list stale: the next
read asks the vendor for it whole, as before renewals existed.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.systems import OCCUPANCY, Systems

log = logging.getLogger("parkgate.events.webhooks")

#: how long an event waits for its garage's renewal before it is published anyway
WAIT_S = 0.25


class OccupancyRenewals:
    def __init__(self, systems: Systems) -> None:
        self.systems = systems
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        #: garages an event arrived at while their renewal ran: read once more after it
        self._again: set[tuple[str, str]] = set()
        #: systems whose last renewal overran WAIT_S: events there are not held for the next
        self._slow: set[str] = set()

    async def renew(self, system_id: str, vendor_facility_id: str) -> None:
        """Renew that garage's reading, waiting for it briefly; where its system cannot be asked for
        one garage, mark the list stale now, before the event is published, as before renewals."""
        if not self.systems.renewable(system_id, OCCUPANCY):
            await self._invalidate(system_id)
            return
        key = (system_id, vendor_facility_id)
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._run(key))
            self._running[key] = task
            task.add_done_callback(lambda done: self._running.pop(key, None) if self._running.get(key) is done else None)
        else:
            self._again.add(key)
        if system_id in self._slow:
            return
        done, _ = await asyncio.wait({task}, timeout=WAIT_S)
        if not done:
            self._slow.add(system_id)

    async def aclose(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, key: tuple[str, str]) -> None:
        system_id, vendor_facility_id = key
        while True:
            self._again.discard(key)
            started = asyncio.get_running_loop().time()
            renewed = False
            try:
                renewed = await self.systems.renew(system_id, OCCUPANCY, vendor_facility_id)
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, the list is marked stale below
                log.warning("could not renew the occupancy of %s at %s (%s: %s)", system_id, vendor_facility_id,
                            type(exc).__name__, exc)
            if asyncio.get_running_loop().time() - started <= WAIT_S:
                self._slow.discard(system_id)
            if not renewed:
                await self._invalidate(system_id)
            if key not in self._again:
                return

    async def _invalidate(self, system_id: str) -> None:
        upstream = self.systems.upstream
        if upstream is None:
            return
        try:
            await upstream.invalidate(system_id, OCCUPANCY)
        except Exception as exc:  # noqa: BLE001 - a cache outage must not stop renewals; TTLs still apply
            log.warning("could not invalidate the occupancy of %s (%s: %s)", system_id, type(exc).__name__, exc)
