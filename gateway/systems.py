"""The configured vendor systems at run time: one adapter each, and how each is doing.

Everything the gateway asks of a vendor goes through `Systems.fetch`, which is where the
health a client sees in `sources` is recorded (and where the cache and the circuit breaker
sit once they exist).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from adapters.base import Adapter
from adapters.errors import UpstreamError
from adapters.registry import DIALECTS
from gateway.config import GatewayConfig

T = TypeVar("T")


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

    @property
    def status(self) -> SourceStatus:
        if self.last_failure_at is None and self.last_success_at is None:
            return SourceStatus.UNKNOWN
        if self.last_failure_at is not None and (self.last_success_at is None or self.last_failure_at > self.last_success_at):
            return SourceStatus.DOWN
        return SourceStatus.UP


class Systems:
    def __init__(self, config: GatewayConfig, adapters: dict[str, Adapter]) -> None:
        self.config = config
        self.adapters = adapters
        self.health = {system_id: SystemHealth() for system_id in adapters}

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Systems:
        adapters = {spec.id: DIALECTS[spec.dialect].adapter(spec) for spec in config.specs()}
        return cls(config, adapters)

    def adapter(self, system_id: str) -> Adapter:
        return self.adapters[system_id]

    async def fetch(self, system_id: str, resource: str, *args: Any) -> Any:
        """Call `adapter.<resource>(*args)` on one system, recording its health."""
        method: Callable[..., Awaitable[Any]] = getattr(self.adapters[system_id], resource)
        return await self.track(system_id, method(*args))

    async def track(self, system_id: str, call: Awaitable[T]) -> T:
        health = self.health[system_id]
        started = time.perf_counter()
        try:
            result = await call
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
