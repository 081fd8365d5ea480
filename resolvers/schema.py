"""The public schema, assembled from the resolvers' domain areas.

The composition roots (`parkgate serve`, `parkgate sandbox`: gateway/cli.py, gateway/sandbox.py)
hand it to the app, `create_app(runtime, schema)`; nothing else in gateway/ imports resolvers/.
`schema.graphql` at the top of the repository is this schema printed (`parkgate schema`);
a test fails when the committed file is stale.
"""

from __future__ import annotations

import strawberry

from gateway.kernel.direct_resolvers import direct_resolvers
from gateway.kernel.eager import eager_resolvers
from gateway.kernel.permissions import enforce_scopes
from resolvers.admin import AdminMutations, AdminQueries
from resolvers.citations import CitationMutations, CitationQueries
from resolvers.facilities import FacilityQueries
from resolvers.finance import FinanceQueries
from resolvers.payments import PaymentMutations, PaymentQueries
from resolvers.permits import PermitMutations, PermitQueries
from resolvers.plate_check import PlateCheckQueries
from resolvers.quotas import QuotaQueries
from resolvers.reservations import ReservationMutations, ReservationQueries
from resolvers.subscriptions import Subscription
from resolvers.validations import ValidationMutations, ValidationQueries
from resolvers.webhooks import WebhookMutations, WebhookQueries


@strawberry.type(description="Read access to the operator's facilities and the systems behind them: occupancy, rates, "
                             "reservations, sessions, permits, plate checks, citations, validations, finance; and administration.")
class Query(FacilityQueries, ReservationQueries, PaymentQueries, PermitQueries, PlateCheckQueries, CitationQueries,
            ValidationQueries, FinanceQueries, QuotaQueries, AdminQueries, WebhookQueries):
    pass


@strawberry.type(description="Changes: reservations, payments, permits, citations and parking validations (each with an "
                             "idempotency key), admin operations on clients and keys, and outbound webhooks.")
class Mutation(ReservationMutations, PaymentMutations, PermitMutations, CitationMutations, ValidationMutations,
               AdminMutations, WebhookMutations):
    pass


def build_schema(*, enforce: bool = True) -> tuple[strawberry.Schema, dict[str, frozenset[str]]]:
    """The schema and the scopes each guarded field needs. `enforce=False` leaves the checks
    out entirely (benchmarks measure what they cost). Async resolvers start eagerly
    (gateway/kernel/eager.py): over data in hand they cost no task."""
    built = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription)
    direct_resolvers(built)
    required = enforce_scopes(built) if enforce else {}
    eager_resolvers(built)
    return built, required


schema, REQUIRED_SCOPES = build_schema()


def sdl() -> str:
    return schema.as_str() + "\n"
