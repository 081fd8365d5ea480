"""Polling: vendor systems that send no webhooks are read on a timer and the snapshots diffed.

Which systems: every PARCS whose dialect has no webhooks (parkline) and every GUIDANCE system.
Each cycle of one system's `Poller`:

    lease     with Redis, only the holder of <prefix>poll:lease:<system> polls (SET NX PX, renewed
              each cycle by its holder only); another replica takes over once it lapses
    read      adapter.occupancy() straight from the vendor, stored into the upstream cache
    diff      per (vendor facility, zone) against the previous snapshot, kept in Redis with the
              lease (a replica taking over carries on from where the dead one stopped):
              OCCUPANCY_CHANGED when occupied/free moved; from PARCS gate counters one
              VEHICLE_ENTERED / VEHICLE_EXITED per car (no plate: a counter knows none), at most
              BURST_CAP per poll, the last of them carrying the rest as `count`
    bookings  (PARCS only) adapter.reservations(), statuses diffed against the previous poll's,
              kept in the same snapshot: a reservation seen BOOKED (or first seen, made after the
              baseline) that the car has since arrived for is one RESERVATION_ARRIVED. A vendor
              that cannot list reservations costs those events only, never the occupancy ones
    publish   as DomainEvents in gateway ids on `runtime.bus`; ids derive from (system, facility,
              zone, counter values / the transition, or the reservation), so the same happening
              always has the same id

The first snapshot of a system is a baseline: nothing is published for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from adapters.base import ParcsAdapter
from adapters.errors import UpstreamError
from adapters.models import DomainEvent, EventType, OccupancyReading, SystemKind
from adapters.operation_models import Reservation, ReservationStatus
from adapters.registry import DIALECTS
from gateway.config import GatewayConfig
from gateway.events.redis_bus import replica_id_of
from gateway.redis_connect import REDIS_FAILURES, RedisClient, connect
from gateway.runtime import Runtime
from gateway.systems import OCCUPANCY

#: what ends a poll cycle to be tried again at the next: the vendor or Redis failing
CYCLE_FAILURES: tuple[type[Exception], ...] = (UpstreamError, *REDIS_FAILURES)

log = logging.getLogger("parkgate.events.poller")

#: vehicle events published per counter and poll; the last one carries the rest as `count`
BURST_CAP = 50
#: a snapshot no replica has written for this long is dropped (its system is gone from the config)
SNAPSHOT_TTL_S = 7 * 86_400
#: the snapshot entry holding reservation statuses (occupancy entries are "<facility>|<zone>")
RESERVATIONS_KEY = "reservations"
#: a reservation the vendor stopped listing is remembered until this long after its window
RESERVATION_MEMORY = timedelta(days=8)
#: statuses that mean the car came (it may have come and gone between two polls)
ARRIVED_STATUSES = (ReservationStatus.ARRIVED, ReservationStatus.COMPLETED)

#: extend the lease only while this replica still holds it
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
#: give the lease up only if it is still ours
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def polled_systems(config: GatewayConfig) -> list[str]:
    """Systems that must be polled: PARCS without webhooks, and every guidance system."""
    chosen = []
    for system_id, system in config.systems.items():
        dialect = DIALECTS[system.dialect]
        if dialect.kind is SystemKind.GUIDANCE or (
            dialect.kind is SystemKind.PARCS and dialect.adapter.webhook_credential is None
        ):
            chosen.append(system_id)
    return chosen


def polling_enabled(config: GatewayConfig) -> bool:
    """On unless the configuration turns it off (the test bed does, to count vendor calls exactly)."""
    return config.events.polling is not False


@dataclass
class FacilityIndex:
    """One system's vendor ids -> gateway ids (facility, and level as `<facility>:<level>`)."""

    facilities: dict[str, str] = field(default_factory=dict)
    levels: dict[tuple[str, str], str] = field(default_factory=dict)  # (vendor facility, vendor zone) -> level id

    @classmethod
    def of(cls, config: GatewayConfig, system_id: str) -> FacilityIndex:
        index = cls()
        for facility_id, facility in config.facilities.items():
            vendor_id = facility.systems.get(system_id)
            if vendor_id is None:
                continue
            index.facilities[vendor_id] = facility_id
            for level_id, level in facility.levels.items():
                zone = level.systems.get(system_id)
                if zone is not None:
                    index.levels[(vendor_id, zone)] = f"{facility_id}:{level_id}"
        return index


def _snapshot_key(reading: OccupancyReading) -> str:
    return f"{reading.vendor_facility_id}|{reading.zone_id or ''}"


def _figures(reading: OccupancyReading) -> dict[str, Any]:
    return {
        "occupied": reading.occupied,
        "free": reading.free,
        "capacity": reading.capacity,
        "entries": reading.entries,
        "exits": reading.exits,
        "observed_at": reading.observed_at.isoformat() if reading.observed_at else None,
    }


def _arrived_since(reservation: Reservation, before: dict[str, Any] | None, baseline_at: datetime) -> bool:
    """The car arrived since the last poll: seen BOOKED then, or first seen now though made after the baseline."""
    if reservation.status not in ARRIVED_STATUSES or reservation.arrived_at is None:
        return False
    if before is None:
        return reservation.created_at >= baseline_at
    return before["status"] == ReservationStatus.BOOKED.value


def _reservation_snapshot(baseline_at: str, seen: dict[str, dict[str, Any]], reservations: list[Reservation],
                          now: datetime) -> dict[str, Any]:
    """Statuses by vendor id. One the vendor stopped listing is kept until well after its window,
    so that it is not taken for a new one if it shows up again."""
    items = {vendor_id: entry for vendor_id, entry in seen.items()
             if datetime.fromisoformat(entry["ends_at"]) > now - RESERVATION_MEMORY}
    for reservation in reservations:
        items[reservation.vendor_id] = {"status": reservation.status.value, "ends_at": reservation.ends_at.isoformat()}
    return {"baseline_at": baseline_at, "items": items}


class Poller:
    """Polls one system every `interval_s`; with `redis`, only while holding its lease."""

    def __init__(self, runtime: Runtime, system_id: str, *, interval_s: float | None = None,
                 lease_s: float | None = None, redis: RedisClient | None = None,
                 prefix: str | None = None, replica_id: str | None = None) -> None:
        config = runtime.config
        self.runtime = runtime
        self.system_id = system_id
        self.interval_s = interval_s if interval_s is not None else config.events.poll_interval_s
        self.lease_s = lease_s if lease_s is not None else config.events.lease_s
        self.redis = redis
        prefix = prefix if prefix is not None else config.store.prefix
        self.lease_key = f"{prefix}poll:lease:{system_id}"
        self.snapshot_key = f"{prefix}poll:snapshot:{system_id}"
        #: unique per Poller, so two processes misconfigured with one replica id still exclude each other
        self.holder = f"{replica_id or replica_id_of(config)}/{uuid.uuid4().hex[:8]}"
        self.kind = DIALECTS[config.systems[system_id].dialect].kind
        self.index = FacilityIndex.of(config, system_id)
        self.holding = False
        self.polls = 0  # vendor reads made by this poller
        self._snapshot: dict[str, Any] | None = None  # in memory (no Redis)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"poller:{self.system_id}")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        # A library below may swallow one cancellation (seen with redis-py): cancel until it ends.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if not task.cancelled() and task.exception() is not None:
            log.warning("poller %s ended with %r", self.system_id, task.exception())

    async def release(self) -> None:
        """Stop and hand the lease over at once (a clean shutdown need not wait for it to lapse)."""
        await self.aclose()
        if self.redis is not None and self.holding:
            self.holding = False
            try:
                await self.redis.eval(RELEASE_SCRIPT, 1, self.lease_key, self.holder)
            except REDIS_FAILURES as exc:  # the lease lapses on its own
                log.warning("poller %s: releasing the lease failed (%s)", self.system_id, exc)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            try:
                await self.cycle()
            except CYCLE_FAILURES as exc:  # the vendor or Redis failed: try again next cycle
                log.warning("poller %s: cycle failed (%s: %s)", self.system_id, type(exc).__name__, exc)
            except Exception:  # a bug: its traceback, and polling goes on
                log.exception("poller %s: cycle failed", self.system_id)
            await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))

    # --- one cycle --------------------------------------------------------------------------

    async def cycle(self) -> list[DomainEvent]:
        """Take or renew the lease, poll, diff, publish; the events published (none without the lease)."""
        if not await self._hold_lease():
            return []
        source = self.runtime.systems.occupancy_source(self.system_id)
        batch = await self.runtime.systems.track(self.system_id, source.occupancy())
        self.polls += 1
        upstream = self.runtime.systems.upstream
        if upstream is not None:
            await upstream.put(self.system_id, OCCUPANCY, (), batch)
        previous = await self._load_snapshot()
        current: dict[str, Any] = {_snapshot_key(reading): _figures(reading) for reading in batch.items}
        events = [] if previous is None else self.diff(previous, batch.items)
        if self.kind is SystemKind.PARCS:
            bookings = await self._poll_reservations(self.runtime.systems.parcs(self.system_id),
                                                     (previous or {}).get(RESERVATIONS_KEY))
            if bookings is not None:
                arrivals, current[RESERVATIONS_KEY] = bookings
                events += arrivals
        if self.redis is not None and not await self._hold_lease():
            return []  # the lease lapsed while the vendor answered: the new holder publishes
        for event in events:
            await self.runtime.bus.publish(event)
        # Keep what vanished from this answer (a record the vendor skipped once) as it was.
        await self._save_snapshot({**(previous or {}), **current})
        return events

    async def _poll_reservations(self, parcs: ParcsAdapter, previous: dict[str, Any] | None
                                 ) -> tuple[list[DomainEvent], dict[str, Any]] | None:
        """Arrivals since the last poll and the new reservation snapshot; None when they cannot be read."""
        try:
            batch = await self.runtime.systems.track(self.system_id, parcs.reservations())
        except UpstreamError as exc:  # occupancy events go out regardless; try again next cycle
            log.warning("poller %s: reading reservations failed (%s: %s)", self.system_id, type(exc).__name__, exc)
            return None
        except Exception:  # a bug: its traceback; occupancy events still go out
            log.exception("poller %s: reading reservations failed", self.system_id)
            return None
        now = datetime.now(UTC)
        if not isinstance(previous, dict) or not isinstance(previous.get("items"), dict):
            return [], _reservation_snapshot(now.isoformat(), {}, batch.items, now)  # the first look: a baseline
        seen: dict[str, dict[str, Any]] = previous.get("items", {})
        baseline_at = datetime.fromisoformat(previous["baseline_at"])
        events = [self._arrival(r) for r in batch.items if _arrived_since(r, seen.get(r.vendor_id), baseline_at)]
        return events, _reservation_snapshot(previous["baseline_at"], seen, batch.items, now)

    def _arrival(self, reservation: Reservation) -> DomainEvent:
        vendor_event_id = f"poll:reservation:{reservation.vendor_id}:arrived"
        return DomainEvent(
            id=f"{self.system_id}:{vendor_event_id}",
            type=EventType.RESERVATION_ARRIVED,
            system_id=self.system_id,
            facility_id=self.index.facilities.get(reservation.vendor_facility_id),
            occurred_at=reservation.arrived_at,
            received_at=datetime.now(UTC),
            vendor_event_id=vendor_event_id,
            payload={"reservation_id": reservation.vendor_id, "plate": reservation.plate},
        )

    async def _hold_lease(self) -> bool:
        if self.redis is None:
            return True  # one process: no one to share with
        lease_ms = int(self.lease_s * 1000)
        if self.holding:
            if await self.redis.eval(RENEW_SCRIPT, 1, self.lease_key, self.holder, lease_ms):
                return True
            self.holding = False
            log.warning("poller %s: lost the lease", self.system_id)
        if await self.redis.set(self.lease_key, self.holder, nx=True, px=lease_ms):
            self.holding = True
            log.info("poller %s: took the lease (%s)", self.system_id, self.holder)
        return self.holding

    async def _load_snapshot(self) -> dict[str, Any] | None:
        if self.redis is None:
            return self._snapshot
        raw = await self.redis.get(self.snapshot_key)
        return None if raw is None else orjson.loads(raw)

    async def _save_snapshot(self, snapshot: dict[str, Any]) -> None:
        if self.redis is None:
            self._snapshot = snapshot
        else:
            await self.redis.set(self.snapshot_key, orjson.dumps(snapshot), ex=SNAPSHOT_TTL_S)

    # --- the diff ---------------------------------------------------------------------------

    def diff(self, previous: dict[str, Any], readings: list[OccupancyReading]) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for reading in readings:
            before = previous.get(_snapshot_key(reading))
            if before is None:
                continue  # first sight of this facility/zone: a baseline
            now = _figures(reading)
            if self.kind is SystemKind.PARCS:
                events += self._counter_events(reading, before, "entries", EventType.VEHICLE_ENTERED)
                events += self._counter_events(reading, before, "exits", EventType.VEHICLE_EXITED)
            if (before["occupied"], before["free"]) != (now["occupied"], now["free"]):
                transition = orjson.dumps([before["occupied"], before["free"], now["occupied"], now["free"],
                                           now["entries"], now["exits"], now["observed_at"]])
                digest = hashlib.sha256(transition).hexdigest()[:16]
                events.append(self._event(reading, EventType.OCCUPANCY_CHANGED, f"occupancy:{digest}", {
                    "occupied": reading.occupied,
                    "free": reading.free,
                    "capacity": reading.capacity,
                    "previous_occupied": before["occupied"],
                    "previous_free": before["free"],
                    "method": reading.method.value,
                }))
        return events

    def _counter_events(self, reading: OccupancyReading, before: dict[str, Any], counter: str,
                        type_: EventType) -> list[DomainEvent]:
        now, then = getattr(reading, counter), before.get(counter)
        if now is None or then is None or now == then:
            return []
        # A counter that went down was reset (a new day): everything it shows is new.
        first = then + 1 if now > then else 1
        delta = now - first + 1
        day = (reading.observed_at or reading.received_at).date().isoformat()
        events = []
        singles = delta if delta <= BURST_CAP else BURST_CAP - 1
        for value in range(first, first + singles):
            events.append(self._event(reading, type_, f"{counter}:{day}:{value}", {counter: value, "count": 1}))
        if singles < delta:
            rest_first = first + singles
            events.append(self._event(reading, type_, f"{counter}:{day}:{rest_first}-{now}",
                                      {counter: now, "count": now - rest_first + 1}))
        return events

    def _event(self, reading: OccupancyReading, type_: EventType, what: str, payload: dict[str, object]) -> DomainEvent:
        zone = reading.zone_id or "-"
        vendor_event_id = f"poll:{reading.vendor_facility_id}:{zone}:{what}"
        level = self.index.levels.get((reading.vendor_facility_id, reading.zone_id)) if reading.zone_id else None
        if reading.zone_id is not None:
            payload = {**payload, "vendor_zone_id": reading.zone_id}
        return DomainEvent(
            id=f"{self.system_id}:{vendor_event_id}",
            type=type_,
            system_id=self.system_id,
            facility_id=self.index.facilities.get(reading.vendor_facility_id),
            occurred_at=reading.observed_at,
            received_at=datetime.now(UTC),
            vendor_event_id=vendor_event_id,
            payload=payload,
            zone_id=level,
        )


class Polling:
    """One poller per poll-only system, for the life of the app (none when polling is turned off)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pollers: list[Poller] = []
        self.redis: RedisClient | None = None

    async def start(self) -> None:
        config = self.runtime.config
        if not polling_enabled(config):
            return
        systems = polled_systems(config)
        if not systems:
            return
        if config.store.backend == "redis":
            assert config.store.redis_url is not None  # StoreConfig refuses the redis backend without one
            self.redis = connect(config.store.redis_url, timeout_s=2.0, connect_timeout_s=2.0)
        self.pollers = [Poller(self.runtime, system_id, redis=self.redis) for system_id in systems]
        for poller in self.pollers:
            poller.start()

    async def stop(self) -> None:
        for poller in self.pollers:
            await poller.release()
        self.pollers = []
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
