"""How long an answer may be reused: `@cacheControl(maxAge:)` next to the fields (as Apollo does).

A field that declares no maxAge inherits from its parent; a root field that declares none
makes the answer uncacheable (admin data, `rateLimit`). The response cache keeps an answer for
the smallest maxAge of the fields it selected (computed by the cost walk, gateway/cost.py), and
GET answers say so in `Cache-Control`.
"""

from __future__ import annotations

import strawberry
from strawberry.schema_directive import Location

UNCACHEABLE = 0


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    description="How many seconds an answer including this field may be reused (the smallest maxAge of a query wins).",
)
class CacheControl:
    max_age: int = strawberry.field(description="Seconds; 0 means never reuse.")


def max_age(seconds: int) -> list[object]:
    return [CacheControl(max_age=seconds)]
