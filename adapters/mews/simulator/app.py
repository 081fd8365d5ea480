"""The Mews simulator's app: the Connector API, as its reference pages show it, over `MewsState`.

What it answers, and how (the guidelines' pages: requests, responses, pagination, serialization):
- `POST /api/connector/v1/enterprises/getAll`, `…/reservations/getAll/2023-06-06`,
  `…/customers/getAll`, JSON in and out; the address must match exactly (a trailing slash or
  another case is 404), any other method 405;
- `ClientToken`, `AccessToken` and `Client` in every body (401 for a bad token); the sandbox's
  access token is a Portfolio Access Token covering both hotels, so `customers/getAll` needs
  `ChainIds`;
- the documented filters of each operation (ids, states, time intervals of at most three months,
  inclusive at both ends; `ScheduledStartUtc` not with `ActualStartUtc`, nor the two ends), at most
  1000 ids a filter; `customers/getAll` needs `Extent`;
- `Limitation {Count 1..1000, Cursor}`: newest first, the answer's `Cursor` the id of the last
  item given (null for an empty page); `Prefer: return=minimal` gets 204 for an empty page;
- errors as `{"Message", "RequestId"}` with 400 for an invalid request ("Invalid CollidingUtc"),
  every answer with a `Request-Id` header.
"""

from __future__ import annotations

import calendar
import hmac
import json
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.mews.simulator.state import (
    VENDOR_IDS,
    MewsState,
    SimCustomer,
    SimReservation,
    T,
    enterprise_for,
    newest_first,
)
from adapters.mews.wire import (
    API,
    CUSTOMERS,
    ENTERPRISES,
    MAX_COUNT,
    MAX_INTERVAL_MONTHS,
    RESERVATIONS,
    STATES,
    parse_utc,
)
from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app
from adapters.simulated.world import World

Handler = Callable[[dict[str, Any]], dict[str, Any]]
Interval = tuple[datetime, datetime]

#: how many ids each filter may name where the pages say fewer than 1000
SMALL_FILTERS = {"PartnerCompanyIds": 100, "TravelAgencyIds": 100, "ChannelNumbers": 100, "AvailabilityBlockIds": 100,
                 "CompanyIds": 1}
#: the customer filters of which `customers/getAll` needs at least one
CUSTOMER_FILTERS = ("CustomerIds", "CreatedUtc", "UpdatedUtc", "DeletedUtc", "CompanyIds", "Emails", "FirstNames",
                    "LastNames", "LoyaltyCodes")


class MewsApiError(Exception):
    """A request the simulated Connector API refuses: its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class MewsApi:
    """The Connector API's HTTP surface over a `MewsState`."""

    def __init__(self, state: MewsState, credentials: Mapping[str, str]) -> None:
        self.state = state
        self._client_token = _need(credentials, "client_token").encode()
        self._access_token = _need(credentials, "access_token").encode()

    def routes(self) -> list[Route]:
        return [
            Route(f"{API}/{ENTERPRISES}", self._endpoint(self.enterprises, "Enterprises"), methods=["POST"]),
            Route(f"{API}/{RESERVATIONS}", self._endpoint(self.reservations, "Reservations"), methods=["POST"]),
            Route(f"{API}/{CUSTOMERS}", self._endpoint(self.customers, "Customers"), methods=["POST"]),
            # the address must match exactly: no redirect for a trailing slash, 404 as documented
            Route("/{path:path}", self._not_found, methods=["POST"]),
        ]

    def _endpoint(self, handler: Handler, items: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            try:
                body = self._authorized(await request.body())
                self.state.advance()
                answer = handler(body)
            except MewsApiError as exc:
                return _error(exc.status, exc.message, request_id)
            if not answer[items] and "return=minimal" in request.headers.get("prefer", ""):
                return Response(status_code=204, headers={"Request-Id": request_id})
            return JSONResponse(answer, headers={"Request-Id": request_id})

        return endpoint

    async def _not_found(self, request: Request) -> Response:
        return _error(404, "Not found.", str(uuid.uuid4()))

    # --- the operations -------------------------------------------------------------------

    def enterprises(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = _ids(body, "EnterpriseIds")
        external = _ids(body, "ExternalIdentifiers")
        linked, updated = _interval(body, "LinkedUtc"), _interval(body, "UpdatedUtc")
        chosen = [
            e for e in self.state.enterprises.values()
            if (ids is None or e.id in ids) and external is None  # none has an external identifier
            and _within(e.created, linked) and _within(e.updated, updated)
        ]
        items, cursor = page(newest_first(chosen), body)
        return {"Enterprises": [e.to_wire() for e in items], "Cursor": cursor}

    def reservations(self, body: dict[str, Any]) -> dict[str, Any]:
        filters: dict[str, set[str] | None] = {
            name: None if (ids := _ids(body, name)) is None else set(ids)
            for name in ("EnterpriseIds", "ReservationIds", "ServiceIds", "ReservationGroupIds", "AccountIds",
                         "PartnerCompanyIds", "TravelAgencyIds", "Numbers", "ChannelNumbers", "AssignedResourceIds",
                         "AvailabilityBlockIds")
        }
        states = _ids(body, "States")
        if states is not None and not set(states) <= set(STATES):
            raise MewsApiError(400, "Invalid States.")
        times = {name: _interval(body, name) for name in ("CreatedUtc", "UpdatedUtc", "CollidingUtc", "ScheduledStartUtc",
                                                          "ScheduledEndUtc", "ActualStartUtc", "ActualEndUtc")}
        for scheduled, actual in (("ScheduledStartUtc", "ActualStartUtc"), ("ScheduledEndUtc", "ActualEndUtc")):
            if times[scheduled] and times[actual]:
                raise MewsApiError(400, f"Invalid {actual}: it cannot be used with {scheduled}.")

        def wanted(r: SimReservation) -> bool:
            values = {"EnterpriseIds": r.enterprise.id, "ReservationIds": r.id, "ServiceIds": r.enterprise.service_id,
                      "ReservationGroupIds": r.group_id, "AccountIds": r.account_id,
                      "PartnerCompanyIds": r.partner_company_id, "TravelAgencyIds": None, "Numbers": r.number,
                      "ChannelNumbers": r.channel_number, "AssignedResourceIds": r.resource_id,
                      "AvailabilityBlockIds": None}
            colliding = times["CollidingUtc"]
            return (
                all(ids is None or values[name] in ids for name, ids in filters.items())
                and (states is None or r.state in states)
                and _within(r.created, times["CreatedUtc"]) and _within(r.updated, times["UpdatedUtc"])
                and _within(r.start, times["ScheduledStartUtc"]) and _within(r.end, times["ScheduledEndUtc"])
                and _within(r.actual_start, times["ActualStartUtc"]) and _within(r.actual_end, times["ActualEndUtc"])
                and (colliding is None or (r.start <= colliding[1] and r.end >= colliding[0]))
            )

        items, cursor = page(newest_first([r for r in self.state.reservations.values() if wanted(r)]), body)
        return {"Reservations": [r.to_wire() for r in items], "Cursor": cursor}

    def customers(self, body: dict[str, Any]) -> dict[str, Any]:
        chains = _ids(body, "ChainIds")
        if len(self.state.enterprises) > 1 and not chains:  # a Portfolio Access Token
            raise MewsApiError(400, "Invalid ChainIds: required with a portfolio access token.")
        extent = body.get("Extent")
        if not isinstance(extent, dict) or not all(isinstance(v, bool) or v is None for v in extent.values()):
            raise MewsApiError(400, "Invalid Extent.")
        if not any(body.get(name) is not None for name in CUSTOMER_FILTERS):
            raise MewsApiError(400, "Invalid CustomerIds: required if no other filter is provided.")
        ids = _ids(body, "CustomerIds")
        lists = {name: _ids(body, name) for name in ("CompanyIds", "Emails", "FirstNames", "LastNames", "LoyaltyCodes")}
        states = _ids(body, "ActivityStates")
        created, updated, deleted = _interval(body, "CreatedUtc"), _interval(body, "UpdatedUtc"), _interval(body, "DeletedUtc")

        def wanted(c: SimCustomer) -> bool:
            return (
                (not chains or len(self.state.enterprises) == 1 or c.chain_id in chains)
                and (ids is None or c.id in ids)
                and (lists["FirstNames"] is None or c.first_name in lists["FirstNames"])
                and (lists["LastNames"] is None or c.last_name in lists["LastNames"])
                and all(lists[name] is None for name in ("CompanyIds", "Emails", "LoyaltyCodes"))  # none has one
                and (states is None or "Active" in states) and deleted is None  # none is deleted
                and _within(c.created, created) and _within(c.updated, updated)
            )

        items, cursor = page(newest_first([c for c in self.state.customers.values() if wanted(c)]), body)
        shown = [c.to_wire(addresses=extent.get("Addresses") is True) for c in items] if extent.get("Customers") else []
        return {"Customers": shown, "Documents": None, "Cursor": cursor}

    def _authorized(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise MewsApiError(400, "Invalid JSON.")
        if not hmac.compare_digest(_token(body, "ClientToken"), self._client_token):
            raise MewsApiError(401, "Invalid ClientToken.")
        if not hmac.compare_digest(_token(body, "AccessToken"), self._access_token):
            raise MewsApiError(401, "Invalid AccessToken.")
        if not isinstance(body.get("Client"), str) or not body["Client"].strip():
            raise MewsApiError(400, "Invalid Client.")
        return body


def page(items: list[T], body: Mapping[str, Any]) -> tuple[list[T], str | None]:
    """One page after the body's cursor (an item id); the new cursor is the page's last id."""
    limitation = body.get("Limitation")
    if not isinstance(limitation, dict):
        raise MewsApiError(400, "Invalid Limitation.")
    count, cursor = limitation.get("Count"), limitation.get("Cursor")
    if type(count) is not int or not 1 <= count <= MAX_COUNT:
        raise MewsApiError(400, f"Invalid Limitation: Count must be between 1 and {MAX_COUNT}.")
    start = 0
    if cursor is not None:
        ids = [item.id for item in items]
        if not isinstance(cursor, str) or cursor not in ids:
            raise MewsApiError(400, "Invalid Limitation: unknown Cursor.")
        start = ids.index(cursor) + 1
    chosen = items[start : start + count]
    return chosen, (chosen[-1].id if chosen else None)


def plus_months(at: datetime, months: int) -> datetime:
    """The same day and time `months` later (clamped to the month's end, 31 Jan -> 30 Apr)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def _interval(body: Mapping[str, Any], name: str) -> Interval | None:
    """A Time interval filter `{StartUtc, EndUtc}`: both ends, in order, at most three months apart."""
    value = body.get(name)
    if value is None:
        return None
    try:
        start, end = parse_utc(value.get("StartUtc")), parse_utc(value.get("EndUtc"))
    except (AttributeError, ValueError):
        raise MewsApiError(400, f"Invalid {name}: StartUtc and EndUtc must be UTC instants.") from None
    if end < start:
        raise MewsApiError(400, f"Invalid {name}: EndUtc is before StartUtc.")
    if end > plus_months(start, MAX_INTERVAL_MONTHS):
        raise MewsApiError(400, f"Invalid {name}: the interval exceeds {MAX_INTERVAL_MONTHS} months.")
    return start, end


def _within(at: datetime | None, interval: Interval | None) -> bool:
    """Inclusive at both ends; nothing (a stay not checked in) is in no interval."""
    return interval is None or (at is not None and interval[0] <= at <= interval[1])


def _ids(body: Mapping[str, Any], name: str) -> list[Any] | None:
    ids = body.get(name)
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise MewsApiError(400, f"Invalid {name}: a list of strings is required.")
    limit = SMALL_FILTERS.get(name, MAX_COUNT)
    if len(ids) > limit:
        raise MewsApiError(400, f"Invalid {name}: at most {limit} items.")
    return ids


def _error(status: int, message: str, request_id: str) -> JSONResponse:
    return JSONResponse({"Message": message, "RequestId": request_id}, status_code=status,
                        headers={"Request-Id": request_id})


def _token(body: Mapping[str, Any], name: str) -> bytes:
    value = body.get(name)
    return value.encode() if isinstance(value, str) else b""


def _need(credentials: Mapping[str, str], name: str) -> str:
    try:
        return credentials[name]
    except KeyError:
        raise KeyError(f"the Mews simulator needs credential {name!r}") from None


@dataclass
class MewsSimulator(Simulator):
    """A Mews simulator; `state` is where tests and control requests reach its data."""

    state: MewsState


def create_simulator(world: World, system_id: str, credentials: Mapping[str, str],
                     hotels: Sequence[str] | None = None) -> MewsSimulator:
    """The PMS of the world's hotels (`hotels`: garage keys, default every one it knows)."""
    now = datetime.now(UTC)
    ids = world.ids_of("mews", VENDOR_IDS)
    keys = [key for key in (hotels if hotels is not None else ids) if key in ids]
    # (the index staggers the hotels' opening dates; a generated world's hundreds stay within 900 days)
    enterprises = [enterprise_for(world.garages[key].spec, ids[key], index % 12, now) for index, key in enumerate(keys)]
    state = MewsState(enterprises, seed=zlib.crc32(system_id.encode()), now=now)
    control = SimulatorControl(system_id)
    api = MewsApi(state, credentials)
    return MewsSimulator(system_id, simulator_app(control, api.routes()), control, world, state)
