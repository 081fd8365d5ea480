"""The scope catalog: what a client may read or do. Fields declare the scopes they need.

A scope is `<area>:<read|write>`; `admin` manages clients and nothing else. Grant the least a
client needs: a reporting client gets only `:read` scopes and so can write nothing.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    FACILITIES_READ = "facilities:read"
    OCCUPANCY_READ = "occupancy:read"
    RATES_READ = "rates:read"
    RESERVATIONS_READ = "reservations:read"
    RESERVATIONS_WRITE = "reservations:write"
    PAYMENTS_WRITE = "payments:write"
    SESSIONS_READ = "sessions:read"
    PERMITS_READ = "permits:read"
    PERMITS_WRITE = "permits:write"
    ENFORCEMENT_READ = "enforcement:read"
    ENFORCEMENT_WRITE = "enforcement:write"
    HOSPITALITY_READ = "hospitality:read"
    HOSPITALITY_WRITE = "hospitality:write"
    FINANCE_READ = "finance:read"
    PII_READ = "pii:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    ADMIN = "admin"


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.FACILITIES_READ: "List and look up facilities: names, addresses, locations, levels, sources.",
    Scope.OCCUPANCY_READ: "Read occupancy: counted, sensed and served figures.",
    Scope.RATES_READ: "Read tariffs and ask for quotes.",
    Scope.RESERVATIONS_READ: "Look up and list reservations.",
    Scope.RESERVATIONS_WRITE: "Create, modify and cancel reservations.",
    Scope.PAYMENTS_WRITE: "Pay for sessions and reservations with processor tokens.",
    Scope.SESSIONS_READ: "Look up a plate's parking sessions: entry time, amount due, payments.",
    Scope.PERMITS_READ: "Look up and list permits.",
    Scope.PERMITS_WRITE: "Issue, update and revoke permits.",
    Scope.ENFORCEMENT_READ: "Read enforcement zones, citations and plate checks (the verdict and the rights that matched).",
    Scope.ENFORCEMENT_WRITE: "Issue and void citations.",
    Scope.HOSPITALITY_READ: "Read hotel guest counts.",
    Scope.HOSPITALITY_WRITE: "Validate hotel guests' parking (and list the validations).",
    Scope.FINANCE_READ: "Read transactions and accounting exports.",
    Scope.PII_READ: "See personal data unmasked: licence plates and guest names.",
    Scope.WEBHOOKS_READ: "List the client's own outbound webhook endpoints and their delivery log.",
    Scope.WEBHOOKS_WRITE: "Register and disable the client's own outbound webhook endpoints (implies reading them).",
    Scope.ADMIN: "Manage clients, keys and quotas, and read the audit log.",
}

ALL_SCOPES: frozenset[str] = frozenset(scope.value for scope in Scope)


def parse_scopes(values: object) -> frozenset[str]:
    """A set of known scopes; ValueError naming the first unknown one, TypeError for anything but
    names (a list, a set, or one space-separated string)."""
    if isinstance(values, str):
        values = values.split()
    if not isinstance(values, list | tuple | set | frozenset):
        raise TypeError("scopes must be a list of scope names")
    unknown = [v for v in values if v not in ALL_SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(sorted(ALL_SCOPES))}")
    return frozenset(values)


def event_scope(event_type: str) -> Scope:
    """The scope that reading an event of this type needs, on any path (subscriptions, partner
    webhooks): the same as reading the data it carries."""
    if event_type == "OCCUPANCY_CHANGED":
        return Scope.OCCUPANCY_READ
    if event_type.startswith("RESERVATION_"):
        return Scope.RESERVATIONS_READ
    if event_type.startswith("GUEST_"):
        return Scope.HOSPITALITY_READ
    return Scope.ENFORCEMENT_READ  # vehicles seen at the gates and citations
