"""What every resolver can reach: the request's loaders, the running gateway, and the time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeVar, TypeVarTuple

import strawberry
from graphql import GraphQLError

from adapters.errors import UpstreamError
from gateway.auth.authenticate import Principal
from gateway.config import GatewayConfig
from gateway.directory import Directory, FacilityEntry, SystemRef
from gateway.errors import ErrorCode, GatewayError, from_upstream
from gateway.kernel.eager import Started, eagerly
from gateway.loaders import Indexed, Loaders
from gateway.metering import MeterCharge
from gateway.runtime import Runtime
from gateway.systems import Records

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass
class RequestContext:
    runtime: Runtime
    loaders: Loaders
    principal: Principal
    #: what this operation was charged up front (the `rateLimit` field reads it); None when not metered
    charge: MeterCharge | None = None
    #: errors that accompany data rather than replace it (a stale answer served while its source fails)
    warnings: list[GraphQLError] = field(default_factory=list)
    #: some answer came from past its freshness: the whole response must not be reused
    used_stale: bool = False
    #: one clock reading per request, so every age in an answer is measured from the same instant
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _memo: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)

    @property
    def config(self) -> GatewayConfig:
        return self.runtime.config

    @property
    def directory(self) -> Directory:
        return self.runtime.directory

    async def load(self, system_id: str, resource: Records[*Ts, T], *args: *Ts, info: Any = None) -> Indexed[T]:
        """A resource of one system for this request, or the coded error of its source; when it is a
        stale answer served because the source failed, the field being resolved (`info`) gets an
        error beside its data."""
        return await self._loaded(self.loaders.resource(system_id, resource, *args), info)

    async def load_record(self, system_id: str, resource: Records[T], key: Hashable, info: Any = None) -> Indexed[T]:
        """Like `load`, for resolvers that want one record by its key: the result holds that record (if
        the system has it) and its unreadable record, read with the rest of the page's (`Loaders.record`)."""
        return await self._loaded(self.loaders.record(system_id, resource, key), info)

    async def _loaded(self, loading: Awaitable[Indexed[T]], info: Any) -> Indexed[T]:
        """What a loader answers, its source's failure as a coded error, a stale answer noted (and
        flagged on the field `info`, if given)."""
        try:
            indexed = await loading
        except UpstreamError as exc:
            raise from_upstream(exc) from None
        self.used_stale = self.used_stale or indexed.stale
        if info is not None:
            self.served_stale(indexed, info)
        return indexed

    async def record(self, ref: SystemRef, resource: Records[T], noun: str, info: Any = None) -> T:
        """The one record of `resource` that `ref` names, or UPSTREAM_ERROR saying why there is none."""
        indexed = await self.load_record(ref.system_id, resource, ref.vendor_id, info=info)
        found = indexed.items.get(ref.vendor_id)
        if found is None:
            bad = indexed.errors.get(ref.vendor_id)
            detail = f"sent an unreadable record: {bad.message}" if bad else f"does not know {noun} {ref.vendor_id!r}"
            raise GatewayError(ErrorCode.UPSTREAM_ERROR, f"Source {ref.system_id!r} {detail}.", system=ref.system_id)
        return found

    def served_stale(self, indexed: Indexed[Any], info: Any) -> None:
        """Data from a source's last good answer is being returned: say so at this field's path."""
        if indexed.stale and indexed.error is not None:
            error = from_upstream(indexed.error)
            age = int((self.now - indexed.fetched_at).total_seconds()) if indexed.fetched_at else None
            self.warnings.append(GraphQLError(
                f"{error.message}; serving its last good answer, fetched {age} s ago.",
                path=info.path.as_list(),
                extensions={**(error.extensions or {}), "stale": True, "ageSeconds": age},
            ))

    def visible_entries(self) -> list[FacilityEntry]:
        """The facilities this client may see: tenancy, decided once per request."""
        principal = self.principal
        if principal.facilities is None:
            return list(self.directory.entries)
        return [entry for entry in self.directory.entries if entry.id in principal.facilities]

    @classmethod
    def for_request(cls, runtime: Runtime, principal: Principal, charge: MeterCharge | None = None) -> RequestContext:
        return cls(runtime=runtime, loaders=Loaders(runtime.systems), principal=principal, charge=charge)

    def once(self, key: Any, compute: Callable[[], Coroutine[Any, Any, Any]]) -> asyncio.Future[Any]:
        """Compute a derived value at most once per request (e.g. a facility's merged occupancy).

        Computed eagerly (gateway/kernel/eager.py): over data in hand the value is there at once,
        with no task; only a computation that has to wait is left to one."""
        future = self._memo.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            try:
                value = eagerly(compute())
            except Exception as exc:  # noqa: BLE001 - the computation's own failure, for whoever awaits it
                future.set_exception(exc)
            else:
                if isinstance(value, Started):
                    future = asyncio.ensure_future(value)
                else:
                    future.set_result(value)
            self._memo[key] = future
        return future


Info: TypeAlias = strawberry.Info[RequestContext, None]
