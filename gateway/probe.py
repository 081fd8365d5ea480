"""`parkgate probe`: does a configured vendor system speak the standard it claims?

For an operator onboarding a real system: point it at one system of a configuration,

    parkgate probe --config parkgate.yaml --system parcs-central [--json]

and it makes the reads the gateway makes of that kind of system (a PARCS: facilities, occupancy,
rates, a quote, reservations, permits, validations, the last day's transactions; a guidance
system: occupancy; an enforcement platform: zones, the last day's citations; a PMS: properties,
the stays around today) through the dialect's own adapter, so with its own authentication and
paging. Every HTTP exchange on the way is recorded (`Recorder`, an httpx transport) and judged by
the dialect's standard (`Dialect.conformance`: adapters/conformance.py), and the probe prints, per
call, what conforms, what does not (where in the message, and how) and how long it took. A
proprietary dialect claims no standard: its calls are timed and their answers read, nothing more.

Exit status: 0 when everything answered and conformed, 1 when something did not, 2 when the
configuration or the system named cannot be used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from adapters.base import Adapter, EnforcementAdapter, GuidanceAdapter, HospitalityAdapter, ParcsAdapter, SystemSpec
from adapters.conformance import Finding
from adapters.errors import UpstreamError
from adapters.http import VendorHTTP
from adapters.models import QuoteRequest
from adapters.registry import DIALECTS, Dialect
from gateway.config import GatewayConfig

__all__ = ["Call", "ProbeReport", "Recorder", "probe_system"]


@dataclass
class Exchange:
    """One HTTP request and its answer, as they crossed the wire."""

    request: httpx.Request
    response: httpx.Response
    elapsed_ms: float
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Call:
    """One read the gateway makes (an adapter method), with the exchanges it took."""

    name: str
    elapsed_ms: float = 0.0
    error: str | None = None  # the read failed: how
    records: int | None = None  # records read, where the read returns a batch
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def conforms(self) -> bool:
        return self.error is None and not any(e.findings for e in self.exchanges)


@dataclass
class ProbeReport:
    system_id: str
    dialect: str
    standard: str | None  # "APDS v4 (API 1.0)", or None for a vendor's own API
    calls: list[Call]

    @property
    def conforms(self) -> bool:
        return all(call.conforms for call in self.calls)

    def as_json(self) -> dict[str, Any]:
        return {
            "system": self.system_id, "dialect": self.dialect, "standard": self.standard, "conforms": self.conforms,
            "calls": [{
                "call": c.name, "ms": round(c.elapsed_ms, 1), "error": c.error, "records": c.records,
                "conforms": c.conforms,
                "exchanges": [{"method": e.request.method, "path": e.request.url.path, "status": e.response.status_code,
                               "ms": round(e.elapsed_ms, 1), "findings": [str(f) for f in e.findings]}
                              for e in c.exchanges],
            } for c in self.calls],
        }

    def lines(self) -> list[str]:
        out = [f"{self.system_id} ({self.dialect}): "
               + (f"checked against {self.standard}" if self.standard else "a vendor's own API: calls timed, no standard to check")]
        for call in self.calls:
            verdict = "ok" if call.conforms else ("FAILED" if call.error else "DOES NOT CONFORM")
            size = f", {call.records} records" if call.records is not None else ""
            out.append(f"  {verdict:<16} {call.name:<13} {call.elapsed_ms:7.1f} ms{size}")
            if call.error:
                out.append(f"      {call.error}")
            for exchange in call.exchanges:
                out.append(f"      {exchange.request.method} {exchange.request.url.path} -> {exchange.response.status_code} "
                           f"({exchange.elapsed_ms:.1f} ms)")
                out += [f"        {finding}" for finding in exchange.findings]
        out.append("conforms" if self.conforms else "does NOT conform (details above)")
        return out


class Recorder(httpx.AsyncBaseTransport):
    """An httpx transport that keeps every exchange it carries, timed, for the call in progress."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.current: Call | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if self.current is not None:
            self.current.exchanges.append(Exchange(request, response, (time.perf_counter() - started) * 1000))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


Read = Callable[[], Awaitable[Any]]


def reads_of(adapter: Adapter, now: datetime) -> list[tuple[str, Read]]:
    """What the gateway reads of this kind of system, as calls without arguments to choose."""
    day = timedelta(days=1)
    if isinstance(adapter, ParcsAdapter):
        parcs = adapter

        async def quote() -> Any:
            facilities = await parcs.facilities()
            if not facilities.items:
                return []
            start = (now + day).replace(hour=9, minute=0, second=0, microsecond=0)
            return await parcs.quotes([QuoteRequest(facilities.items[0].vendor_id, start, start + timedelta(hours=3))])

        return [("facilities", parcs.facilities), ("occupancy", parcs.occupancy), ("rates", parcs.rates),
                ("quote", quote), ("reservations", parcs.reservations), ("permits", parcs.permits),
                ("validations", parcs.validations), ("transactions", lambda: parcs.transactions(now - day, now))]
    if isinstance(adapter, GuidanceAdapter):
        return [("occupancy", adapter.occupancy)]
    if isinstance(adapter, EnforcementAdapter):
        enforcement = adapter
        return [("zones", enforcement.zones), ("citations", lambda: enforcement.citations(now - day))]
    if isinstance(adapter, HospitalityAdapter):
        hospitality = adapter
        return [("properties", hospitality.properties), ("stays", lambda: hospitality.stays(now - day, now + day))]
    return []


def adapter_for(dialect: Dialect, spec: SystemSpec, recorder: Recorder) -> Adapter:
    """The dialect's adapter on an HTTP hop that records, without retries (a retry would hide a fault)."""
    http = VendorHTTP(spec.id, spec.base_url, timeout_s=spec.timeout_s, connect_timeout_s=spec.connect_timeout_s,
                      transport=recorder, retries=0, max_concurrency=4)
    return dialect.adapter(spec, http)


async def probe_system(config: GatewayConfig, system_id: str) -> ProbeReport:
    """Read a configured system as the gateway would, and judge every exchange by its standard."""
    spec = next((s for s in config.specs() if s.id == system_id), None)
    if spec is None:
        raise KeyError(f"no system {system_id!r} in the configuration (it has: {', '.join(sorted(config.systems))})")
    dialect = DIALECTS[spec.dialect]
    recorder = Recorder(httpx.AsyncHTTPTransport())
    adapter = adapter_for(dialect, spec, recorder)
    calls: list[Call] = []
    try:
        for name, read in reads_of(adapter, datetime.now(UTC)):
            call = Call(name)
            recorder.current = call
            started = time.perf_counter()
            try:
                result = await read()
                items = getattr(result, "items", result)
                call.records = len(items) if isinstance(items, list) else None
                errors = getattr(result, "errors", None)
                if errors:
                    call.error = f"{len(errors)} records could not be read, e.g. {errors[0]}"
            except UpstreamError as exc:
                call.error = f"{exc.code}: {exc.detail}"
            except Exception as exc:  # noqa: BLE001 - a probe reports whatever a read raised, and goes on
                call.error = f"{type(exc).__name__}: {exc}"
            call.elapsed_ms = (time.perf_counter() - started) * 1000
            recorder.current = None
            calls.append(call)
    finally:
        await adapter.aclose()
    if dialect.conformance is not None:
        for call in calls:
            for exchange in call.exchanges:
                exchange.findings = dialect.conformance(spec.base_url, exchange.request, exchange.response)
    standard = f"{dialect.standard.name} {dialect.standard.version}" if dialect.standard else None
    return ProbeReport(system_id, spec.dialect, standard, calls)


def run_probe(config: GatewayConfig, system_id: str) -> ProbeReport:
    return asyncio.run(probe_system(config, system_id))
