"""Small GraphQL types shared by every domain area: money, places, paging, enums."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from decimal import Decimal
from typing import TypeAlias, TypeVar, overload

import strawberry

from adapters import models
from gateway.errors import bad_input

T = TypeVar("T")

# The GraphQL enums are the domain's own: strawberry.enum marks the class itself (and returns it),
# so each name here is a plain alias of the domain enum, a type mypy can read, and the call beside
# it gives the GraphQL description.
FacilityKind: TypeAlias = models.FacilityKind
strawberry.enum(FacilityKind, description="What a facility node is: a whole facility, a level, or a zone.")
OccupancyStatus: TypeAlias = models.OccupancyStatus
strawberry.enum(
    OccupancyStatus,
    description="Availability as a sign would show it (APDS/DATEX II style): OPEN, CLOSED, SPACES_AVAILABLE, ALMOST_FULL (90 % or more), FULL, UNKNOWN.",
)
OccupancyMethod: TypeAlias = models.OccupancyMethod
strawberry.enum(
    OccupancyMethod, description="How a figure was obtained: COUNTED at the gates by a PARCS, or SENSED per bay by a guidance system."
)
Trend: TypeAlias = models.Trend
strawberry.enum(Trend, description="Whether the facility is filling, emptying or steady, where a system reports it.")
SystemKind: TypeAlias = models.SystemKind
strawberry.enum(SystemKind, description="The kind of vendor system behind a source.")
RateKind: TypeAlias = models.RateKind
strawberry.enum(
    RateKind,
    description="FLAT: one amount for the period; TIERED: an amount for stays up to a length; INCREMENTING: an amount per started period.",
)


@strawberry.type(description="An amount of money. The amount is a decimal string (never a float) in the currency's major unit.")
class Money:
    amount: str = strawberry.field(description="Decimal amount in the major unit, e.g. \"7.50\".")
    currency: str = strawberry.field(description="ISO 4217 currency code, e.g. EUR.")

    @overload
    @classmethod
    def of(cls, money: models.Money) -> Money: ...

    @overload
    @classmethod
    def of(cls, money: None) -> None: ...

    @overload
    @classmethod
    def of(cls, money: models.Money | None) -> Money | None: ...

    @classmethod
    def of(cls, money: models.Money | None) -> Money | None:
        if money is None:
            return None
        return cls(amount=format(money.amount.quantize(Decimal("0.01")), "f"), currency=money.currency)


@strawberry.type(description="A WGS 84 position.")
class GeoPoint:
    latitude: float = strawberry.field(description="Latitude in decimal degrees.")
    longitude: float = strawberry.field(description="Longitude in decimal degrees.")


@strawberry.type(description="A postal address.")
class Address:
    street: str | None = strawberry.field(description="Street and number.")
    postal_code: str | None = strawberry.field(description="Postal code.")
    city: str | None = strawberry.field(description="City.")
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2 country code.")


@strawberry.type(description="Relay-style paging information for a connection.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when more items follow `endCursor`.")
    has_previous_page: bool = strawberry.field(description="True when items precede `startCursor`.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge, null when there are none.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge; pass it as `after` for the next page.")


MAX_PAGE_SIZE = 100


def encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> str:
    """The value inside a cursor we issued; BAD_USER_INPUT for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    prefix, _, value = raw.partition(":")
    if prefix != kind or not value:
        raise bad_input("`after` is not a cursor this connection issued.", argument="after")
    return value


def check_page_size(first: int) -> None:
    if first < 0 or first > MAX_PAGE_SIZE:
        raise bad_input(f"`first` must be between 0 and {MAX_PAGE_SIZE}.", argument="first")


def offset_page(kind: str, items: Sequence[T], first: int, after: str | None) -> tuple[list[tuple[str, T]], PageInfo]:
    """One page of an already filtered and sorted list, by position: (cursor, item) pairs and the paging.

    For lists a vendor gives whole (reservations, citations, transactions): a cursor is the
    position after its item, opaque to clients and checked when it comes back.
    """
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise bad_input(f"`first` must be between 1 and {MAX_PAGE_SIZE}.", argument="first")
    offset = 0
    if after is not None:
        raw = decode_cursor(kind, after)
        if not raw.isdigit() or len(raw) > 9:
            raise bad_input("`after` is not a cursor this connection issued.", argument="after")
        offset = int(raw)
    page = items[offset:offset + first]
    edges = [(encode_cursor(kind, str(offset + i + 1)), item) for i, item in enumerate(page)]
    info = PageInfo(has_next_page=offset + first < len(items), has_previous_page=offset > 0,
                    start_cursor=edges[0][0] if edges else None, end_cursor=edges[-1][0] if edges else None)
    return edges, info
