"""The Mews-style PMS adapter: hotels and the guest stays that may bring a car.

Options (`SystemSpec.options`):
- `page_size` — `Limitation.Count` for paged lists, 1..1000 (default 1000, the API's maximum).
- `enterprise_ids` — restrict stays to these hotels; without it the vendor answers for every
  enterprise the (portfolio) access token covers.
- `client` — the `Client` name sent with every call (default `parkgate 0.1`).

Credentials: `client_token` and `access_token`, both sent in every request body (never in a
URL or header, so nothing logs them by accident).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.base import HospitalityAdapter, SystemSpec
from adapters.errors import UpstreamError
from adapters.http import VendorHTTP
from adapters.mews import webhooks
from adapters.mews.wire import API, CUSTOMERS, ENTERPRISES, MAX_COUNT, RESERVATIONS, format_utc, parse_utc
from adapters.models import Batch, EventType, GuestStay, GuestStayState, HotelProperty, RecordError, VendorEvent

CLIENT = "parkgate 0.1"
_NEVER = datetime.min.replace(tzinfo=UTC)  # stays without UpdatedUtc sort last

STATES = {
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

    async def properties(self) -> Batch[HotelProperty]:
        batch: Batch[HotelProperty] = Batch()
        for index, record in _unique(await self._all(ENTERPRISES, {}, "Enterprises")):
            try:
                batch.items.append(_property(record))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                batch.errors.append(RecordError(self.system_id, _ref(record, index), _why(exc)))
        return batch

    async def stays(self, since: datetime, until: datetime) -> Batch[GuestStay]:
        """Stays colliding with [since, until), newest update first (as the vendor sends them).

        Reservations first (every page), then their customers for names and car
        registrations: one call per 1000 distinct accounts, not one per stay.
        """
        body: dict[str, Any] = {"CollidingUtc": {"StartUtc": format_utc(since), "EndUtc": format_utc(until)}}
        if self._enterprise_ids is not None:
            body["EnterpriseIds"] = self._enterprise_ids
        reservations = _unique(await self._all(RESERVATIONS, body, "Reservations"))

        batch: Batch[GuestStay] = Batch()
        account_ids = [r["AccountId"] for _, r in reservations if isinstance(r, dict) and isinstance(r.get("AccountId"), str)]
        customers = await self._customers(list(dict.fromkeys(account_ids)), batch)
        for index, record in reservations:
            try:
                batch.items.append(_stay(record, customers))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                batch.errors.append(RecordError(self.system_id, _ref(record, index), _why(exc)))
        # the vendor's order, made a promise: a record that moved while we paged is back in place
        batch.items.sort(key=lambda stay: stay.updated_at or _NEVER, reverse=True)
        return batch

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, query_params: Mapping[str, str],
                       now: datetime) -> list[VendorEvent]:
        """The `webhook_token` credential in the URL; ids only (adapters/mews/webhooks.py)."""
        return webhooks.verify(self.spec.credentials.get("webhook_token"), query_params, raw_body)

    async def expand_webhook(self, events: Sequence[VendorEvent]) -> list[VendorEvent]:
        """Fetch the reservations (and their customers) a webhook named; one event per stay, typed
        by its state and keyed by (reservation, state) so the same change reported twice is one
        event. Cancelled stays give none (no gateway event means that yet)."""
        ids = list(dict.fromkeys(str(e.payload["reservation_id"]) for e in events))
        if not ids:
            return []
        batch: Batch[GuestStay] = Batch()
        reservations = _unique(await self._all(RESERVATIONS, {"ReservationIds": ids[:MAX_COUNT]}, "Reservations"))
        account_ids = [r["AccountId"] for _, r in reservations if isinstance(r, dict) and isinstance(r.get("AccountId"), str)]
        customers = await self._customers(list(dict.fromkeys(account_ids)), batch)
        expanded = []
        for index, record in reservations:
            try:
                stay = _stay(record, customers)
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

    async def _customers(self, ids: Sequence[str], batch: Batch[GuestStay]) -> dict[str, tuple[str | None, str | None]]:
        """Account id -> (guest name, car registration); a bad customer is an error, its stay stands."""
        found: dict[str, tuple[str | None, str | None]] = {}
        for offset in range(0, len(ids), MAX_COUNT):
            chunk = ids[offset : offset + MAX_COUNT]
            wanted = set(chunk)
            # Count = the chunk's size, so a chunk is one call unless the vendor pages shorter
            async with aclosing(self._pages(CUSTOMERS, {"CustomerIds": chunk}, "Customers", len(chunk))) as pages:
                async for page in pages:
                    for record in page:
                        customer_id = record.get("Id") if isinstance(record, dict) else None
                        try:
                            found[_str(record, "Id")] = _customer(record)
                        except (KeyError, TypeError, ValueError, AttributeError) as exc:
                            ref = f"customer {customer_id}" if isinstance(customer_id, str) else "customer ?"
                            batch.errors.append(RecordError(self.system_id, ref, _why(exc)))
                        if isinstance(customer_id, str):
                            wanted.discard(customer_id)
                    if not wanted:
                        break
        return found

    async def _all(self, operation: str, body: Mapping[str, Any], key: str) -> list[Any]:
        items: list[Any] = []
        async for page in self._pages(operation, body, key, self._count):
            items.extend(page)
        return items

    async def _pages(self, operation: str, body: Mapping[str, Any], key: str, count: int) -> AsyncGenerator[list[Any], None]:
        """Pages of a list; a page shorter than `count` is the last, as the API documents."""
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
        response = await self.http.request(
            "POST", f"{API}/{operation}", json={**self._envelope, **body}, idempotent=True
        )
        data = self.http.json(response)
        if not isinstance(data, dict):
            raise UpstreamError(self.system_id, f"{operation} answered with something other than an object")
        return data


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
    time_zone = _opt_str(record, "TimeZoneIdentifier")
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {time_zone!r}") from None
    return HotelProperty(vendor_id=_str(record, "Id"), name=_str(record, "Name"), time_zone=time_zone)


def _stay(record: Any, customers: Mapping[str, tuple[str | None, str | None]]) -> GuestStay:
    state = record["State"]
    if state not in STATES:
        raise ValueError(f"unknown reservation state {state!r}")
    account_id = _opt_str(record, "AccountId")
    guest_name, car = customers.get(account_id or "", (None, None))
    return GuestStay(
        vendor_id=_str(record, "Id"),
        property_id=_str(record, "EnterpriseId"),
        state=STATES[state],
        guest_name=guest_name,
        arrives_at=_opt_utc(record, "ScheduledStartUtc"),
        departs_at=_opt_utc(record, "ScheduledEndUtc"),
        car_registration=car,
        updated_at=_opt_utc(record, "UpdatedUtc"),
    )


def _customer(record: Any) -> tuple[str | None, str | None]:
    names = [n for n in (_opt_str(record, "FirstName"), _opt_str(record, "LastName")) if n]
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
