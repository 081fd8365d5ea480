"""Sources: the vendor systems behind the gateway and how each is doing."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import strawberry

from adapters.breaker import BreakerState
from adapters.models import SystemKind as DomainSystemKind
from gateway.systems import SourceStatus as DomainSourceStatus
from gateway.systems import Systems
from resolvers.common import SystemKind

# Aliases of the domain enums, made GraphQL enums in place (see resolvers/common.py).
CircuitState: TypeAlias = BreakerState
strawberry.enum(
    CircuitState,
    description="The circuit breaker toward a system: CLOSED (calls go through), OPEN (failing fast after repeated "
                "failures), HALF_OPEN (one probe call decides).",
)
SourceStatus: TypeAlias = DomainSourceStatus
strawberry.enum(
    SourceStatus, description="UP when the last call to the system succeeded, DOWN when it failed, UNKNOWN before the first call."
)


@strawberry.type(description="A vendor system that feeds parkgate.")
class Source:
    id: strawberry.ID = strawberry.field(description="The system's id in the gateway configuration.")
    kind: SystemKind = strawberry.field(description="PARCS, GUIDANCE, ENFORCEMENT or HOSPITALITY.")
    dialect: str = strawberry.field(description="The wire dialect parkgate speaks with it.")
    status: SourceStatus = strawberry.field(description="How the system is doing, by parkgate's last call to it.")
    last_success_at: datetime | None = strawberry.field(description="When a call last succeeded.")
    last_failure_at: datetime | None = strawberry.field(description="When a call last failed.")
    last_error: str | None = strawberry.field(description="The last failure, coded (e.g. UPSTREAM_TIMEOUT: …).")
    circuit: CircuitState = strawberry.field(description="The circuit breaker toward the system.")
    external_id: str | None = strawberry.field(
        description="The facility's id in this system, when the source is listed under a facility."
    )


def source_of(systems: Systems, system_id: str, external_id: str | None = None) -> Source:
    spec = systems.adapters[system_id].spec
    health = systems.health[system_id]
    breaker = systems.adapters[system_id].http.breaker_state
    return Source(
        id=strawberry.ID(system_id),
        kind=DomainSystemKind(spec.kind),
        dialect=spec.dialect,
        status=DomainSourceStatus.DOWN if breaker is BreakerState.OPEN else health.status,
        circuit=breaker,
        last_success_at=health.last_success_at,
        last_failure_at=health.last_failure_at,
        last_error=health.last_error,
        external_id=external_id,
    )
