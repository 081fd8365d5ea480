"""The Mews Connector API adapter: hotels (enterprises) and the guest stays that may bring a car.

What it calls (adapters/mews/wire.py has the names):
- `enterprises/getAll` — the hotels the access token covers (a Portfolio Access Token covers
  several), with their IANA time zone and chain;
- `reservations/getAll/2023-06-06` — stays, per enterprise (`EnterpriseIds`: a 2023-06-06
  Reservation does not say which enterprise it belongs to, so the adapter asks for one at a time);
- `customers/getAll` with `Extent {"Customers": true}` — the owners' names and
  `CarRegistrationNumber`, the Customer field where Mews keeps a guest's car registration;
  `ChainIds` of the hotels go with it (required with a Portfolio Access Token, ignored otherwise).

Reservation states (every documented Service order state) onto GuestStay:
    Confirmed                      -> BOOKED       confirmed by guest and hotel, not yet arrived
    Inquired, Optional, Requested  -> TENTATIVE    confirmed by one side at most (an enquiry, a room
                                                   held for the guest, a wait-list request): not
                                                   counted as an arrival, no guest event
    Started -> CHECKED_IN,  Processed -> CHECKED_OUT,  Canceled -> CANCELLED
A reservation owned by a Company (`AccountType`) has no guest name or car here.

Options (`SystemSpec.options`):
- `page_size` — `Limitation.Count` for paged lists, 1..1000 (default 1000, the API's maximum).
- `enterprise_ids` — only these hotels; without it, every enterprise the access token covers.
- `client` — the `Client` name sent with every call (default `parkgate 0.1`).

Credentials: `client_token` and `access_token`, both sent in every request body (never in a
URL or header, so nothing logs them by accident); `webhook_token` (optional) for General
Webhooks (adapters/mews/webhooks.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from adapters.base import HospitalityAdapter, SystemSpec
from adapters.errors import UpstreamError, UpstreamRejected
from adapters.http import VendorHTTP
from adapters.mews import webhooks
from adapters.mews.wire import (
    API,
    CUSTOMER_EXTENT,
    CUSTOMERS,
    ENTERPRISES,
    MAX_COUNT,
    RESERVATIONS,
    format_utc,
    parse_utc,
)
from adapters.models import Batch, EventType, GuestStay, GuestStayState, HotelProperty, RecordError, VendorEvent

CLIENT = "parkgate 0.1"
SCOPE_TTL_S = 600.0  # how long the hotels (and their chains) a stays call asks for are remembered

STATES = {
    "Inquired": GuestStayState.TENTATIVE,
    "Optional": GuestStayState.TENTATIVE,
    "Requested": GuestStayState.TENTATIVE,
    "Confirmed": GuestStayState.BOOKED,
    "Started": GuestStayState.CHECKED_IN,
    "Processed": GuestStayState.CHECKED_OUT,
    "Canceled": GuestStayState.CANCELLED,
}

EVENT_TYPES = {
    GuestStayState.BOOKED: EventType.GUEST_BOOKED,
    GuestStayState.CHECKED_IN: EventType.GUEST_CHECKED_IN,
    GuestStayState.CHECKED_OUT: EventType.GUEST_CHECKED_OUT,
}

#: account id -> (guest name, car registration)
Guests = dict[str, tuple[str | None, str | None]]


class MewsAdapter(HospitalityAdapter):
    dialect = "mews"
    required_credentials = ("client_token", "access_token")
    webhook_credential = "webhook_token"
    webhook_ids_only = True

    def __init__(self, spec: SystemSpec, http: VendorHTTP | None = None) -> None:
        super().__init__(spec, http)
        self._envelope = {
            "ClientToken": spec.credential("client_token"),
            "AccessToken": spec.credential("access_token"),
            "Client": str(spec.options.get("client", CLIENT)),
        }
        self._count = min(max(int(spec.options.get("page_size", MAX_COUNT)), 1), MAX_COUNT)
        ids = spec.options.get("enterprise_ids")
        self._enterprise_ids = [str(i) for i in ids] if ids else None
        #: (when fetched, enterprise id -> its chain id) of the hotels in scope
        self._scope: tuple[float, dict[str, str | None]] | None = None

    async def properties(self) -> Batch[HotelProperty]:
        batch: Batch[HotelProperty] = Batch()
        for index, record in _unique(await self._enterprises()):
            try:
                batch.items.append(_property(record))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                batch.errors.append(RecordError(self.system_id, _ref(record, index), _why(exc)))
        return batch

    async def stays(self, since: datetime, until: datetime) -> Batch[GuestStay]:
        """Stays colliding with [since, until], newest update first (as the vendor sends them).

        Per hotel, its reservations (every page); then their owners for names and car
        registrations: one call per 1000 distinct customers, not one per stay.
        """
        batch: Batch[GuestStay] = Batch()
        chains = await self._chains()
        interval = {"StartUtc": format_utc(since), "EndUtc": format_utc(until)}
        found: list[tuple[str, int, Any]] = []
        for enterprise_id in chains:
            body = {"EnterpriseIds": [enterprise_id], "CollidingUtc": interval}
            found += [(enterprise_id, index, r) for index, r in _unique(await self._all(RESERVATIONS, body, "Reservations"))]
        guests = await self._guests(found, batch)
        for enterprise_id, index, record in found:
            try:
                batch.items.append(_stay(record, enterprise_id, guests))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                batch.errors.append(RecordError(self.system_id, _ref(record, index), _why(exc)))
        # the vendor's order, made a promise across hotels and for a record that moved while we paged
        batch.items.sort(key=lambda stay: (stay.updated_at or _NEVER, stay.vendor_id), reverse=True)
        return batch

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, query_params: Mapping[str, str],
                       now: datetime) -> list[VendorEvent]:
        """General Webhooks: the `webhook_token` credential in the URL; ids only (adapters/mews/webhooks.py)."""
        return webhooks.verify(self.spec.credentials.get("webhook_token"), query_params, raw_body)

    async def expand_webhook(self, events: Sequence[VendorEvent]) -> list[VendorEvent]:
        """Fetch the reservations (and their owners) a webhook named; one event per stay, typed
        by its state and keyed by (reservation, state) so the same change reported twice is one
        event. Tentative and cancelled stays give none (no gateway event means that yet)."""
        by_enterprise: dict[str, dict[str, None]] = {}
        for event in events:
            by_enterprise.setdefault(event.vendor_facility_id or "", {})[str(event.payload["reservation_id"])] = None
        found: list[tuple[str, int, Any]] = []
        for enterprise_id, ids in by_enterprise.items():
            named = list(ids)[:MAX_COUNT]
            records = await self._named(RESERVATIONS, {"EnterpriseIds": [enterprise_id]}, "ReservationIds",
                                        named, "Reservations")
            found += [(enterprise_id, index, r) for index, r in _unique(records)]
        if not found:
            return []
        guests = await self._guests(found, Batch())
        expanded = []
        for enterprise_id, index, record in found:
            try:
                stay = _stay(record, enterprise_id, guests)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise UpstreamError(self.system_id, f"reservation {_ref(record, index)}: {_why(exc)}") from None
            kind = EVENT_TYPES.get(stay.state)
            if kind is None:
                continue
            expanded.append(VendorEvent(kind, f"{stay.vendor_id}:{stay.state.value}", stay.property_id, stay.updated_at, {
                "reservation_id": stay.vendor_id,
                "state": stay.state.value,
                "guest_name": stay.guest_name,
                "car_registration": stay.car_registration,
                "arrives_at": stay.arrives_at.isoformat() if stay.arrives_at else None,
                "departs_at": stay.departs_at.isoformat() if stay.departs_at else None,
            }))
        return expanded

    async def _enterprises(self) -> list[Any]:
        body = {} if self._enterprise_ids is None else {"EnterpriseIds": self._enterprise_ids}
        records = await self._all(ENTERPRISES, body, "Enterprises")
        self._scope = (time.monotonic(), {
            r["Id"]: r["ChainId"] if isinstance(r.get("ChainId"), str) else None
            for r in records if isinstance(r, dict) and isinstance(r.get("Id"), str)
        })
        return records

    async def _chains(self) -> dict[str, str | None]:
        """The hotels in scope and their chains, asked for again every SCOPE_TTL_S."""
        if self._scope is None or time.monotonic() - self._scope[0] > SCOPE_TTL_S:
            await self._enterprises()
        assert self._scope is not None
        return self._scope[1]

    async def _guests(self, reservations: Sequence[tuple[str, int, Any]], batch: Batch[GuestStay]) -> Guests:
        """The reservations' owners that are Customers (a Company has no car registration):
        customer id -> (guest name, car registration); a bad customer is an error, its stay stands."""
        owners = [r["AccountId"] for _, _, r in reservations
                  if isinstance(r, dict) and r.get("AccountType") == "Customer" and isinstance(r.get("AccountId"), str)]
        ids = list(dict.fromkeys(owners))
        chains = sorted({chain for chain in (await self._chains()).values() if chain}) if ids else []
        found: Guests = {}
        for offset in range(0, len(ids), MAX_COUNT):
            body = {"ChainIds": chains, "Extent": CUSTOMER_EXTENT}
            for record in await self._named(CUSTOMERS, body, "CustomerIds", ids[offset : offset + MAX_COUNT], "Customers"):
                customer_id = record.get("Id") if isinstance(record, dict) else None
                try:
                    found[_str(record, "Id")] = _customer(record)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    ref = f"customer {customer_id}" if isinstance(customer_id, str) else "customer ?"
                    batch.errors.append(RecordError(self.system_id, ref, _why(exc)))
        return found

    async def _named(self, operation: str, body: Mapping[str, Any], filter_name: str, ids: Sequence[str],
                     key: str) -> list[Any]:
        """The records with these ids (at most MAX_COUNT): Count = how many are named, so one call
        unless the vendor pages shorter, and no call for an empty page once every one has come."""
        wanted, items = set(ids), []
        async with aclosing(self._pages(operation, {**body, filter_name: list(ids)}, key, len(ids))) as pages:
            async for page in pages:
                items += page
                wanted -= {r.get("Id") for r in page if isinstance(r, dict)}
                if not wanted:
                    break
        return items

    async def _all(self, operation: str, body: Mapping[str, Any], key: str) -> list[Any]:
        items: list[Any] = []
        async for page in self._pages(operation, body, key, self._count):
            items.extend(page)
        return items

    async def _pages(self, operation: str, body: Mapping[str, Any], key: str, count: int) -> AsyncGenerator[list[Any], None]:
        """Pages of a list, until a page is shorter than `count` or `Cursor` is null (pagination.md)."""
        cursor: str | None = None
        while True:
            data = await self._call(operation, {**body, "Limitation": {"Count": count, "Cursor": cursor}})
            items = data.get(key)
            if not isinstance(items, list):
                raise UpstreamError(self.system_id, f"{operation} answered without a list of {key}")
            yield items
            next_cursor = data.get("Cursor")
            if len(items) < count or not isinstance(next_cursor, str):
                return
            if next_cursor == cursor:
                raise UpstreamError(self.system_id, f"{operation} returned the same cursor twice")
            cursor = next_cursor

    async def _call(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        # Every operation parkgate calls is a read (getAll): safe to retry.
        try:
            response = await self.http.request(
                "POST", f"{API}/{operation}", json={**self._envelope, **body}, idempotent=True
            )
        except UpstreamRejected as exc:  # say what Mews said (its `Message`), e.g. "Invalid CollidingUtc"
            message = _message(exc.body)
            if message is None:
                raise
            raise UpstreamRejected(self.system_id, f"{exc.detail}: {message}", exc.status, exc.body,
                                   retry_after_s=exc.retry_after_s) from None
        data = self.http.json(response)
        if not isinstance(data, dict):
            raise UpstreamError(self.system_id, f"{operation} answered with something other than an object")
        return data


_NEVER = datetime.min.replace(tzinfo=UTC)  # stays without UpdatedUtc sort last


def _message(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    message = data.get("Message") if isinstance(data, dict) else None
    return message[:200] if isinstance(message, str) and message else None


def _unique(records: list[Any]) -> list[tuple[int, Any]]:
    """Records with their positions, one copy of each id.

    Newest first means a record updated while we page moves to the front and may come again
    on a later page (or a cursor shifted by it repeats one); keep the copy with the later
    UpdatedUtc.
    """
    chosen: dict[str, tuple[int, Any]] = {}
    anonymous: list[tuple[int, Any]] = []
    for index, record in enumerate(records):
        record_id = record.get("Id") if isinstance(record, dict) else None
        if not isinstance(record_id, str):
            anonymous.append((index, record))
        elif record_id not in chosen or _updated(record) > _updated(chosen[record_id][1]):
            chosen[record_id] = (index, record)
    return sorted([*chosen.values(), *anonymous], key=lambda pair: pair[0])


def _updated(record: Mapping[str, Any]) -> str:
    value = record.get("UpdatedUtc")
    return value if isinstance(value, str) else ""  # same format throughout: text order is time order


def _property(record: Any) -> HotelProperty:
    time_zone = _str(record, "TimeZoneIdentifier")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {time_zone!r}") from None
    return HotelProperty(vendor_id=_str(record, "Id"), name=_str(record, "Name"), time_zone=time_zone)


def _stay(record: Any, enterprise_id: str, guests: Guests) -> GuestStay:
    state = record["State"]
    if state not in STATES:
        raise ValueError(f"unknown reservation state {state!r}")
    account_id, account_type = _str(record, "AccountId"), _str(record, "AccountType")
    guest_name, car = guests.get(account_id, (None, None)) if account_type == "Customer" else (None, None)
    scheduled_start, scheduled_end = parse_utc(record["ScheduledStartUtc"]), parse_utc(record["ScheduledEndUtc"])
    return GuestStay(
        vendor_id=_str(record, "Id"),
        property_id=enterprise_id,
        state=STATES[state],
        guest_name=guest_name,
        # when the guest checked in (or out), that; else when the hotel expects it
        arrives_at=_opt_utc(record, "ActualStartUtc") or scheduled_start,
        departs_at=_opt_utc(record, "ActualEndUtc") or scheduled_end,
        car_registration=car,
        updated_at=parse_utc(record["UpdatedUtc"]),
    )


def _customer(record: Any) -> tuple[str | None, str | None]:
    names = [n for n in (_opt_str(record, "FirstName"), _str(record, "LastName")) if n]
    car = _opt_str(record, "CarRegistrationNumber")
    return (" ".join(names) or None), (car.strip() or None if car else None)


def _opt_utc(record: Mapping[str, Any], name: str) -> datetime | None:
    value = record.get(name)
    return None if value is None else parse_utc(value)


def _str(record: Mapping[str, Any], name: str) -> str:
    value = record[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is not a non-empty string: {value!r}")
    return value


def _opt_str(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string: {value!r}")
    return value


def _ref(record: Any, index: int) -> str:
    value = record.get("Id") if isinstance(record, dict) else None
    return value if isinstance(value, str) and value else f"#{index}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, (TypeError, AttributeError)):
        return f"unexpected shape: {exc}"
    return str(exc)
