"""What every resolver can reach: the request's loaders, the running gateway, and the time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

import strawberry

from gateway.auth.authenticate import Principal
from gateway.config import GatewayConfig
from gateway.directory import Directory, FacilityEntry
from gateway.loaders import Loaders
from gateway.metering import Charge
from gateway.runtime import Runtime


@dataclass
class RequestContext:
    runtime: Runtime
    loaders: Loaders
    principal: Principal
    #: what this operation was charged up front (the `rateLimit` field reads it); None when not metered
    charge: Charge | None = None
    #: one clock reading per request, so every age in an answer is measured from the same instant
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _memo: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)

    @property
    def config(self) -> GatewayConfig:
        return self.runtime.config

    @property
    def directory(self) -> Directory:
        return self.runtime.directory

    def visible_entries(self) -> list[FacilityEntry]:
        """The facilities this client may see: tenancy, decided once per request."""
        principal = self.principal
        if principal.facilities is None:
            return list(self.directory.entries)
        return [entry for entry in self.directory.entries if entry.id in principal.facilities]

    @classmethod
    def for_request(cls, runtime: Runtime, principal: Principal, charge: Charge | None = None) -> RequestContext:
        return cls(runtime=runtime, loaders=Loaders(runtime.systems), principal=principal, charge=charge)

    def once(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        """Compute a derived value at most once per request (e.g. a facility's merged occupancy)."""
        future = self._memo.get(key)
        if future is None:
            future = asyncio.ensure_future(compute())
            self._memo[key] = future
        return future


Info: TypeAlias = strawberry.Info[RequestContext, None]
