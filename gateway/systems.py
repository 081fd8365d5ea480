"""The configured vendor systems at run time: one adapter each, and how each is doing.

Every adapter is handed out as the kind of system it is (adapters/base.py): `parcs(id)`,
`occupancy_source(id)`, `enforcement(id)`, `hospitality(id)`, so a call to a vendor is a plain
method call a reader and mypy can follow.

Everything the gateway asks of a vendor goes through `Systems.fetch` (or `fetch_entry`, which
also says how old the answer is): through the upstream cache when there is one
(gateway/upstream.py), then the adapter. Health, which a client sees in `sources`, is recorded
on real vendor calls only (`_call`), never on answers served from the cache.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from adapters.base import Adapter, EnforcementAdapter, HospitalityAdapter, OccupancySource, ParcsAdapter
from adapters.errors import UpstreamError, UpstreamRejected
from adapters.registry import DIALECTS
from gateway.cache import Cache
from gateway.config import GatewayConfig
from gateway.upstream import Fetched, UpstreamCache

T = TypeVar("T")


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
    def __init__(self, config: GatewayConfig, adapters: dict[str, Adapter], cache: Cache | None = None) -> None:
        self.config = config
        self.adapters = adapters
        self.health = {system_id: SystemHealth() for system_id in adapters}
        #: vendor answers through the cache; None: every read reaches the vendor
        self.upstream = None if cache is None else UpstreamCache.from_config(cache, config, self._call)

    @classmethod
    def from_config(cls, config: GatewayConfig, cache: Cache | None = None) -> Systems:
        adapters = {spec.id: DIALECTS[spec.dialect].adapter(spec) for spec in config.specs()}
        return cls(config, adapters, cache)

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

    async def fetch(self, system_id: str, resource: str, *args: Any) -> Any:
        """`adapter.<resource>(*args)` of one system, through the cache when there is one.

        A stale answer (the vendor failing) comes back as a value like any other; use
        `fetch_entry` to know.
        """
        if self.upstream is None:
            return await self._call(system_id, resource, *args)
        return (await self.upstream.get(system_id, resource, args)).value

    async def fetch_entry(self, system_id: str, resource: str, *args: Any) -> Fetched[Any]:
        """Like `fetch`, with when the answer was fetched, whether it is stale, and the vendor's error if so."""
        if self.upstream is None:
            # through `fetch`, so that a `fetch` replaced on an instance or subclass (bench replay) still answers
            return Fetched(await self.fetch(system_id, resource, *args), datetime.now(UTC))
        return await self.upstream.get(system_id, resource, args)

    async def _call(self, system_id: str, resource: str, *args: Any) -> Any:
        """The vendor call itself: `adapter.<resource>(*args)`, recording the system's health."""
        method: Callable[..., Awaitable[Any]] = getattr(self.adapters[system_id], resource)
        return await self.track(system_id, method(*args))

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
