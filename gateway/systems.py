"""The configured vendor systems at run time: one adapter each, how each is doing, and what the
gateway reads from them.

Every adapter is handed out as the kind of system it is (adapters/base.py): `parcs(id)`,
`occupancy_source(id)`, `enforcement(id)`, `hospitality(id)`, so a call to a vendor is a plain
method call a reader and mypy can follow.

What the per-request loaders read is a `Resource` (the constants at the end: OCCUPANCY, RATES,
CITATIONS…): a typed call, `call(systems, system_id, *args)`, that asks the system's adapter of
the right kind, and a name that labels the answer's upstream cache keys, its TTL in the
configuration and its metrics (only a label: the call is what the resource carries).
`Systems.fetch` (or `fetch_entry`, which also says how old the answer is) goes through the
upstream cache when there is one (gateway/upstream.py), then `_call`, which runs the resource's
call. Health, which a client sees in `sources`, is recorded on real vendor calls only (`track`),
never on answers served from the cache.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar, TypeVarTuple

from adapters import models
from adapters.base import Adapter, EnforcementAdapter, HospitalityAdapter, OccupancySource, ParcsAdapter
from adapters.errors import UpstreamError, UpstreamRejected
from adapters.models import Batch
from adapters.operation_models import Permit, Reservation
from adapters.registry import DIALECTS
from gateway.cache import Cache
from gateway.config import GatewayConfig
from gateway.observability import Observability
from gateway.observability.hop import HopObservation
from gateway.upstream import Fetched, UpstreamCache
from gateway.upstream_store import RecordIndex, Slice, Want

T = TypeVar("T")
R = TypeVar("R")  # what a resource's call answers
Ts = TypeVarTuple("Ts")  # a resource's arguments


#: what becomes of an inbound webhook event (gateway/events/ingress.py): written to the inbox (new, or a
#: new revision of one seen before), a duplicate, or for a place the configuration does not map (dropped)
WEBHOOK_UNMAPPED = "unmapped"
WEBHOOK_OUTCOMES = ("accepted", "corrected", "duplicate", WEBHOOK_UNMAPPED)


class WrongKind(TypeError):
    """A system asked for what another kind of system answers (a configuration the loader should have refused)."""

    def __init__(self, adapter: Adapter, wanted: str) -> None:
        super().__init__(f"system {adapter.system_id!r} is a {adapter.kind} system ({adapter.dialect}), not {wanted}")


class SourceStatus(StrEnum):
    UP = "UP"  # the last call succeeded
    DOWN = "DOWN"  # the last call failed
    UNKNOWN = "UNKNOWN"  # not called yet


@dataclass
class SystemHealth:
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None
    last_latency_ms: float | None = None
    #: inbound webhook events of the system, by outcome (`WEBHOOK_OUTCOMES`)
    webhooks: Counter[str] = field(default_factory=Counter)

    @property
    def status(self) -> SourceStatus:
        if self.last_failure_at is None and self.last_success_at is None:
            return SourceStatus.UNKNOWN
        if self.last_failure_at is not None and (self.last_success_at is None or self.last_failure_at > self.last_success_at):
            return SourceStatus.DOWN
        return SourceStatus.UP


class Systems:
    def __init__(self, config: GatewayConfig, adapters: dict[str, Adapter], cache: Cache | None = None,
                 observability: Observability | None = None) -> None:
        self.config = config
        self.adapters = adapters
        self.health = {system_id: SystemHealth() for system_id in adapters}
        #: vendor answers through the cache; None: every read reaches the vendor
        self.upstream = None if cache is None else UpstreamCache.from_config(cache, config, self._call)
        #: resolver groups as spans (a fetch of one resource from one system), when tracing is on
        self.tracing = observability.tracing if observability is not None else None
        if observability is not None:
            for system_id, adapter in adapters.items():
                adapter.http.observe(HopObservation(system_id, config.systems[system_id].base_url,
                                                    observability.metrics, observability.tracing))
            if self.upstream is not None:
                self.upstream.export(observability.metrics.upstream_cache_figures)

    @classmethod
    def from_config(cls, config: GatewayConfig, cache: Cache | None = None,
                    observability: Observability | None = None) -> Systems:
        adapters = {spec.id: DIALECTS[spec.dialect].adapter(spec) for spec in config.specs()}
        return cls(config, adapters, cache, observability)

    def adapter(self, system_id: str) -> Adapter:
        return self.adapters[system_id]

    def parcs(self, system_id: str) -> ParcsAdapter:
        if isinstance(adapter := self.adapters[system_id], ParcsAdapter):
            return adapter
        raise WrongKind(adapter, "a PARCS")

    def occupancy_source(self, system_id: str) -> OccupancySource:
        if isinstance(adapter := self.adapters[system_id], OccupancySource):
            return adapter
        raise WrongKind(adapter, "a PARCS or a guidance system")

    def enforcement(self, system_id: str) -> EnforcementAdapter:
        if isinstance(adapter := self.adapters[system_id], EnforcementAdapter):
            return adapter
        raise WrongKind(adapter, "an enforcement platform")

    def hospitality(self, system_id: str) -> HospitalityAdapter:
        if isinstance(adapter := self.adapters[system_id], HospitalityAdapter):
            return adapter
        raise WrongKind(adapter, "a hotel PMS")

    async def fetch(self, system_id: str, resource: Resource[*Ts, R], *args: *Ts) -> R:
        """`resource.call(self, system_id, *args)`, through the cache when there is one.

        A stale answer (the vendor failing) comes back as a value like any other; use
        `fetch_entry` to know.
        """
        if self.tracing is not None:
            with self.tracing.child(f"fetch {resource.name}", {"parkgate.system": system_id}):
                return await self._fetch(system_id, resource, *args)
        return await self._fetch(system_id, resource, *args)

    async def _fetch(self, system_id: str, resource: Resource[*Ts, R], *args: *Ts) -> R:
        if self.upstream is None:
            return await self._call(system_id, resource, *args)
        return (await self.upstream.get(system_id, resource, args)).value

    async def fetch_entry(self, system_id: str, resource: Resource[*Ts, R], *args: *Ts) -> Fetched[R]:
        """Like `fetch`, with when the answer was fetched, whether it is stale, and the vendor's error if so."""
        if self.upstream is None:
            # through `fetch`, so that a `fetch` replaced on an instance or subclass (bench replay) still answers
            return Fetched(await self.fetch(system_id, resource, *args), datetime.now(UTC))
        if self.tracing is not None:
            with self.tracing.child(f"fetch {resource.name}", {"parkgate.system": system_id}):
                return await self.upstream.get(system_id, resource, args)
        return await self.upstream.get(system_id, resource, args)

    async def fetch_slice(self, system_id: str, resource: Records[T], want: Want) -> Fetched[Slice]:
        """The records of `resource` (a list without arguments) that `want` names by key, and its
        unreadable ones by reference: what a page of facilities needs, read from the cache without
        decoding the rest of the list (gateway/upstream_store.py).

        Where the system can be asked for some facilities' records only (`resource.by_facility`),
        it is asked for the page's, and that answer is cached on its own (the resource's name and
        TTL, the facilities as its arguments): a cold page then costs the vendor the page, not the
        operator's whole list. Only resources that no event invalidates take this path, so a page's
        answer is as fresh as the whole list's would be."""
        by_facility = resource.by_facility
        if by_facility is not None and by_facility.offered(self, system_id):
            return await self._slice(system_id, by_facility.resource, want, tuple(sorted(want.refs)))
        return await self._slice(system_id, resource, want)

    async def _slice(self, system_id: str, resource: Records[*Ts, T], want: Want, *args: *Ts) -> Fetched[Slice]:
        if self.upstream is None:
            fetched = await self.fetch_entry(system_id, resource, *args)
            sliced = RecordIndex.of(fetched.value, resource.key).slice(want)
            return Fetched(sliced, fetched.fetched_at, fetched.stale, fetched.error)
        if self.tracing is not None:  # a resolver group's fetch, as `fetch` is
            with self.tracing.child(f"fetch {resource.name}", {"parkgate.system": system_id}):
                return await self.upstream.get_slice(system_id, resource, resource.key, want, args)
        return await self.upstream.get_slice(system_id, resource, resource.key, want, args)

    async def renew(self, system_id: str, resource: Records[T], vendor_facility_id: str) -> bool:
        """An event says `resource`'s records at one facility changed: where the system can be asked
        for that facility's alone (`resource.renewed_by`), ask, and put them in the cached list
        (gateway/upstream.py `renew`). False where that was not done: the caller invalidates the list."""
        renewal = resource.renewed_by
        if self.upstream is None or renewal is None or not self.renewable(system_id, resource):
            return False
        return await self.upstream.renew(system_id, resource, resource.key, renewal.resource, ((vendor_facility_id,),))

    def renewable(self, system_id: str, resource: Records[T]) -> bool:
        """Whether `renew` can ask this system for one facility's records of `resource` (its dialect offers it)."""
        renewal = resource.renewed_by
        return renewal is not None and renewal.offered(self, system_id)

    async def _call(self, system_id: str, resource: Resource[*Ts, R], *args: *Ts) -> R:
        """The vendor call itself: the resource's call on this system, recording the system's health."""
        return await self.track(system_id, resource.call(self, system_id, *args))

    async def track(self, system_id: str, call: Awaitable[T]) -> T:
        health = self.health[system_id]
        started = time.perf_counter()
        try:
            result = await call
        except UpstreamRejected as exc:
            if exc.status != 429:
                # The system answered and said no (a duplicate, no space, a declined token): it is up.
                health.last_success_at = datetime.now(UTC)
                health.last_latency_ms = (time.perf_counter() - started) * 1000
            raise
        except UpstreamError as exc:
            health.last_failure_at = datetime.now(UTC)
            health.last_error = f"{exc.code}: {exc.detail}"
            raise
        health.last_success_at = datetime.now(UTC)
        health.last_latency_ms = (time.perf_counter() - started) * 1000
        return result

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()
        if self.upstream is not None:
            await self.upstream.aclose()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Resource(Generic[*Ts, R]):
    """One thing the gateway reads from vendor systems: `call(systems, system_id, *args)` asks the
    system's adapter (as its kind, e.g. `systems.parcs(system_id).rates()`).

    `name` labels the answers: upstream cache keys (`up:<system>:<name>:…`), TTLs (`cache.ttl_s`,
    a system's `cache_ttl_s`), metrics. It never selects the call.
    """

    name: str
    call: Callable[[Systems, str, *Ts], Awaitable[R]]

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Records(Resource[*Ts, Batch[T]]):
    """A resource that is a `Batch` of records, which the per-request loaders index by `key` (gateway/loaders.py)."""

    key: Callable[[T], Hashable]
    #: how to ask a system for some facilities' records only, where its dialect can be (`Systems.fetch_slice`)
    by_facility: ByFacility[T] | None = None
    #: how to ask for the records an event at one facility changed, to put them in the cached list (`Systems.renew`)
    renewed_by: ByFacility[T] | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ByFacility(Generic[T]):
    """A list read for some facilities only: `resource(vendor ids)`, when `offered` by the system's dialect."""

    resource: Records[tuple[str, ...], T]
    offered: Callable[[Systems, str], bool]


class _Identified(Protocol):
    @property
    def vendor_id(self) -> str: ...


def vendor_id_of(record: _Identified) -> str:
    return record.vendor_id


class _AtFacility(Protocol):
    @property
    def vendor_facility_id(self) -> str: ...


# What the gateway reads, one constant each: the name (a label), the call, and for lists the key
# their records are indexed by for a request.

FACILITIES: Records[models.FacilityRecord] = Records(
    "facilities", lambda systems, system_id: systems.parcs(system_id).facilities(), key=vendor_id_of)


def reading_key(reading: models.OccupancyReading) -> tuple[str, str | None]:
    return reading.vendor_facility_id, reading.zone_id


OCCUPANCY: Records[models.OccupancyReading] = Records(
    "occupancy", lambda systems, system_id: systems.occupancy_source(system_id).occupancy(), key=reading_key,
    # a car in or out changes one garage's reading: read that one, not every garage's (`Systems.renew`)
    renewed_by=ByFacility(Records("occupancy", lambda systems, system_id, vendor_ids:
                                  systems.occupancy_source(system_id).occupancy_at(vendor_ids), key=reading_key),
                          lambda systems, system_id: systems.occupancy_source(system_id).occupancy_by_facility))
def facility_of(record: _AtFacility) -> str:
    return record.vendor_facility_id


RATES: Records[models.RateTable] = Records(
    "rates", lambda systems, system_id: systems.parcs(system_id).rates(), key=facility_of,
    # no event changes a tariff: a page's tariffs may be cached apart from the whole list's
    by_facility=ByFacility(Records("rates", lambda systems, system_id, vendor_ids: systems.parcs(system_id).rates_at(vendor_ids),
                                   key=facility_of),
                           lambda systems, system_id: systems.parcs(system_id).rates_by_facility))
QUOTES: Resource[Sequence[models.QuoteRequest], list[models.Quote]] = Resource(
    "quotes", lambda systems, system_id, requests: systems.parcs(system_id).quotes(requests))
RESERVATIONS: Records[str | None, Reservation] = Records(
    "reservations", lambda systems, system_id, plate: systems.parcs(system_id).reservations(plate), key=vendor_id_of)
PERMITS: Records[str | None, Permit] = Records(
    "permits", lambda systems, system_id, plate: systems.parcs(system_id).permits(plate), key=vendor_id_of)
ZONES: Records[models.EnforcementZone] = Records(
    "zones", lambda systems, system_id: systems.enforcement(system_id).zones(), key=vendor_id_of)
CITATIONS: Records[datetime, models.Citation] = Records(
    "citations", lambda systems, system_id, since: systems.enforcement(system_id).citations(since),
    key=lambda citation: citation.number)
PROPERTIES: Records[models.HotelProperty] = Records(
    "properties", lambda systems, system_id: systems.hospitality(system_id).properties(), key=vendor_id_of)
STAYS: Records[datetime, datetime, models.GuestStay] = Records(
    "stays", lambda systems, system_id, since, until: systems.hospitality(system_id).stays(since, until),
    key=vendor_id_of)
