"""OpenTelemetry traces: a span per GraphQL operation, its resolver groups and vendor calls, and the
W3C `traceparent` honoured in and passed on.

    inbound    `server_span(name, headers)`: the caller's `traceparent` (if any) is the parent
    inside     `child(name)`: a span only when the current one is sampled (recording), else nothing,
               so an unsampled request pays for one span decision, not one per resolver or call
    outbound   `inject(headers)`: the current span's `traceparent` onto a vendor call or a partner
               webhook, sampled or not, so the systems behind can join the caller's trace

Each gateway has a TracerProvider of its own (never the process-wide one: two gateways in one
process trace apart). Sampling is parent-based: a caller's sampled `traceparent` is followed, a new
trace is sampled at `sample_ratio`. Both decisions are taken here before any span is made
(`server_span`), because making a span costs more than most cached answers: an unsampled request
makes none. It still passes a trace on: the caller's context, when it sent one, is made current,
so vendors and partners see its `traceparent` (unsampled); a request that came without one and was
not sampled passes nothing on. Spans are exported over OTLP/HTTP in batches when an endpoint is
configured (or named by the standard OTEL_EXPORTER_OTLP_* variables); without one, the trace context
still flows to vendors and partners.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.config import TracingConfig

OTLP_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROPAGATOR = TraceContextTextMapPropagator()
_NOTHING = nullcontext()


class Tracing:
    def __init__(self, provider: TracerProvider, sample_ratio: float = 1.0) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("parkgate")
        self.sample_ratio = sample_ratio

    @classmethod
    def from_config(cls, config: TracingConfig) -> Tracing:
        # Whether a new trace is sampled is decided here, before any span is made (`sampled_root`):
        # the SDK records every root it is handed and follows parents.
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: config.service_name}),
                                  sampler=ParentBased(ALWAYS_ON))
        if config.otlp_endpoint or any(os.environ.get(name) for name in OTLP_ENV):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.otlp_endpoint)))
        return cls(provider, config.sample_ratio)

    def sampled_root(self) -> bool:
        """Whether a request that came without a `traceparent` starts a sampled trace."""
        return random.random() < self.sample_ratio

    @contextmanager
    def server_span(self, name: str, traceparent: str | None, tracestate: str | None = None,
                    attributes: Mapping[str, Any] | None = None, *,
                    kind: SpanKind = SpanKind.SERVER) -> Iterator[Span | None]:
        """The span of one inbound request, child of the caller's `traceparent` when it sent one, if
        sampled; else no span (None), the caller's context current so that it is passed on."""
        if traceparent is None:  # a new trace: the caller decided with `sampled_root` (without this context)
            parent = None
        else:
            carrier = {"traceparent": traceparent} if tracestate is None else {"traceparent": traceparent,
                                                                               "tracestate": tracestate}
            parent = _PROPAGATOR.extract(carrier)
            if not trace.get_current_span(parent).get_span_context().trace_flags.sampled:
                token = otel_context.attach(parent)
                try:
                    yield None
                finally:
                    otel_context.detach(token)
                return
        with self.tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
            yield span

    def child(self, name: str, attributes: Mapping[str, Any] | None = None, *,
              kind: SpanKind = SpanKind.INTERNAL) -> Any:
        """A span under the current one when that is sampled; else a context that does nothing (and gives None)."""
        if not trace.get_current_span().is_recording():
            return _NOTHING
        return self.tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    def background(self, name: str, traceparent: str | None, attributes: Mapping[str, Any] | None = None, *,
                   kind: SpanKind = SpanKind.INTERNAL) -> Any:
        """A span for work done later on behalf of a request (`traceparent` kept from it), or a new trace
        when none was kept (sampled at the ratio); a context giving None when not sampled."""
        if traceparent:
            return self.server_span(name, traceparent, None, attributes, kind=kind)
        if not self.sampled_root():
            return _NOTHING
        return self.tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    @staticmethod
    def inject(headers: MutableMapping[str, str]) -> None:
        """The current span's context as `traceparent` (and `tracestate`) on an outgoing request."""
        _PROPAGATOR.inject(headers)

    @staticmethod
    def current_traceparent() -> str | None:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get("traceparent")

    def shutdown(self) -> None:
        self.provider.shutdown()
