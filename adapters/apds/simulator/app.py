"""The APDS simulator's app: an APDS v4 platform (the patched document in adapters/apds/spec/)
over the simulated world, its paths below `ROOT`.

    GET  /places (/places/{id})        the hierarchy: a campus per city, places, levels; occupancy
    GET  /rights/specs                 what each place offers: walk-in, reservation, permit, validation
    GET  /rates                        their rate tables
    POST /quotes                       a QuoteRightRequest answered with options (or a reason)
    POST /webhooks, GET|PUT|DELETE /webhooks/{id}   event subscriptions (deliveries: webhooks.py)
    /rights/assigned…, /sessions…      the back office's records (office_routes.py)

It runs the four German garages (`VENDOR_IDS`, state.py). Every request reads the world afresh,
so counts move as the day goes on. Tests and the sandbox reach its knobs through `sim.state`
(`ApdsState`), and what it delivered through `sim.webhooks.sent`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.apds.operations_wire import status_body
from adapters.apds.simulator import catalog, office_routes
from adapters.apds.simulator.catalog import tariff_of
from adapters.apds.simulator.plumbing import body_of, error, guard, listing, ok, paged
from adapters.apds.simulator.plumbing import now as sim_now
from adapters.apds.simulator.state import ApdsState, Subscription
from adapters.apds.simulator.webhooks import ApdsWebhooks
from adapters.apds.wire import (
    CAMPUS,
    LEVEL,
    PLACE,
    RightKind,
    WireError,
    amount_body,
    format_time,
    items,
    obj,
    opt_time,
    parse_time,
    text,
    versioned,
)
from adapters.models import Money
from adapters.operation_models import RefusalReason
from adapters.simulated.back_office import BackOffice, GarageTerms, OfficeRefusal, office_of
from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app
from adapters.simulated.world import World

ROOT = "/apds/v1"  # path-based versioning, as the APDS README has it; the document's API version is 1.0
QUOTE_TTL = timedelta(minutes=15)
TOPICS = frozenset({"PlaceCreated", "PlaceUpdated", "PlaceDeleted", "AssignedRightCreated", "AssignedRightUpdated",
                    "AssignedRightDeleted", "SessionCreated", "SessionUpdated", "SessionDeleted"})
#: the office's refusal of a window -> the QuoteRightResponse reason (ResponseReasonEnum)
QUOTE_REASONS = {RefusalReason.FULLY_BOOKED: "noAvailability", RefusalReason.CLOSED:
                 "rightSpecificationNotAvailableAtRequestedTimes", RefusalReason.INVALID_WINDOW: "other"}


@dataclass
class ApdsSimulator(Simulator):
    state: ApdsState
    office: BackOffice
    webhooks: ApdsWebhooks


def create_simulator(world: World, system_id: str, credentials: Mapping[str, str]) -> ApdsSimulator:
    """An APDS platform that accepts `X-MCC-Access-Token: <credentials["token"]>`."""
    if not credentials.get("token"):
        raise KeyError(f"the apds simulator {system_id!r} needs credential 'token'")
    office = office_of(world)
    state = ApdsState(world, credentials["token"], closed=office.closed)  # one set: closed for bookings too
    for key, _ in state.places():
        spec = world.garages[key].spec
        office.register(GarageTerms(key, "EUR", Decimal("0.19"), reservable=max(5, spec.capacity // 10),
                                    price=tariff_of(key).price, time_zone=spec.time_zone, hotel=spec.profile == "hotel"))

    def route(path: str, handler: Any, *methods: str) -> Route:
        return Route(ROOT + path, guard(state, handler), methods=list(methods))

    routes = [
        route("/places", _places, "GET"),
        route("/places/{id}", _place, "GET"),
        route("/rights/specs", _specs, "GET"),
        route("/rates", _rates, "GET"),
        route("/quotes", _quote, "POST"),
        route("/webhooks", _subscribe, "POST"),
        route("/webhooks/{id}", _subscription, "GET", "PUT", "DELETE"),
        *office_routes.routes(state, ROOT),
    ]
    control = SimulatorControl(system_id)
    return ApdsSimulator(system_id, simulator_app(control, routes), control, world, state, office, ApdsWebhooks(state))


# --- places, specifications, rates -----------------------------------------------------------------


async def _places(state: ApdsState, request: Request) -> Response:
    expand = set(listing(request, "expand"))
    types = set(listing(request, "type"))
    if types - {CAMPUS, PLACE, LEVEL, "identifiedArea", "space"}:
        raise WireError(f"unknown element type in {sorted(types)}")

    def build() -> list[Any]:
        elements = catalog.elements(state, office_of(state.world), bool({"all", "occupancy"} & expand), sim_now())
        return state.listed("places", [e for e in elements if not types or e.get("type") in types])

    return state.views.page(request, "places", build)


async def _place(state: ApdsState, request: Request) -> Response:
    element_id = request.path_params["id"]
    expand = set(listing(request, "expand"))
    key = state.garage_of(element_id)
    if key is not None:  # a place: rendered alone, as the list renders it (not the whole hierarchy to find it)
        return JSONResponse(state.overridden("places", catalog.place(
            state, office_of(state.world), key, element_id, bool({"all", "occupancy"} & expand), sim_now())))
    for element in catalog.elements(state, office_of(state.world), bool({"all", "occupancy"} & expand), sim_now()):
        if element.get("id") == element_id:
            return JSONResponse(element)
    return error(404, f"no place hierarchy element {element_id!r}")


async def _specs(state: ApdsState, request: Request) -> Response:
    places = set(listing(request, "place"))

    def build() -> list[Any]:
        specs = [s for s in catalog.specifications(state, office_of(state.world), sim_now())
                 if not places or s["hierarchyElements"][0]["id"] in places]
        return state.listed("specs", specs)

    return state.views.page(request, "specs", build)


async def _rates(state: ApdsState, request: Request) -> Response:
    places = frozenset(listing(request, "place"))
    return state.views.page(request, "rates", lambda: state.listed("rates", catalog.rate_tables(state, places)))


# --- quotes ------------------------------------------------------------------------------------


async def _quote(state: ApdsState, request: Request) -> Response:
    """One QuoteRightRequest for a reservation right: priced by the tariff, or a reason."""
    body = await body_of(request)
    request_id = text(body, "id")
    starts = parse_time(body.get("periodStart"), "periodStart")
    ends = opt_time(body, "periodEnd")
    requested = parse_time(body.get("requestTime"), "requestTime")
    referenced = [obj(r, "referencedRightSpecification") for r in items(body, "referencedRightSpecifications")]
    now = sim_now()
    answer: dict[str, Any] = {
        "id": f"{request_id}-response", "version": 1, "start": format_time(starts),
        "end": format_time(ends or starts), "requestTime": format_time(requested),
        "responseTime": format_time(now), "quoteRequestId": versioned(request_id, int(body.get("version", 1))),
    }
    found = catalog.spec_by_id(state, text(obj(referenced[0].get("rightSpecificationId"), "rightSpecificationId"), "id")) \
        if referenced else None
    if found is None or found[1].kind is not RightKind.RESERVATION:
        answer["reason"] = "noMatchingSpecification"
    elif ends is None:
        answer["reason"] = "other"
    else:
        key, spec = found
        try:
            price = office_of(state.world).quote(key, starts, ends)
        except OfficeRefusal as refusal:
            answer["reason"] = QUOTE_REASONS.get(refusal.reason, "other")
        else:
            answer["options"] = [{
                "id": f"{request_id}-option-1", "version": 1, "elementId": versioned(spec.place_id),
                "exact": True,
                "quoteExpiration": {"expiresDateTime": format_time(now + QUOTE_TTL), "firstComeFirstServed": False},
                "identifiers": [{"rateTableId": versioned(spec.rate_tables[0]),
                                 "rightSpecificationId": versioned(spec.id, spec.version)}],
                "financialQuote": {"taxIncluded": True, "value": amount_body(Money(price, tariff_of(key).currency))},
            }]
    return paged(request, [answer])


# --- webhook subscriptions ---------------------------------------------------------------------------


def _subscription_body(raw: dict[str, Any]) -> dict[str, Any]:
    endpoint = text(raw, "endpoint")
    if not endpoint.startswith(("http://", "https://")):
        raise WireError("endpoint must be an http(s) URL")
    topics = items(raw, "topics")
    if not topics or any(t not in TOPICS for t in topics):
        raise WireError(f"topics must be some of {sorted(TOPICS)}")
    body: dict[str, Any] = {"endpoint": endpoint, "topics": list(dict.fromkeys(topics))}
    elements = raw.get("hierarchyElements")
    if elements is not None:
        body["hierarchyElements"] = [{"className": text(obj(e), "className"), "id": text(obj(e), "id")}
                                     for e in items(raw, "hierarchyElements")]
    if raw.get("includeChildrenEvents") is not None:
        if not isinstance(raw["includeChildrenEvents"], bool):
            raise WireError("includeChildrenEvents must be a boolean")
        body["includeChildrenEvents"] = raw["includeChildrenEvents"]
    return body


async def _subscribe(state: ApdsState, request: Request) -> Response:
    body = _subscription_body(await body_of(request))
    subscription = Subscription(str(uuid.uuid4()), body, sim_now())
    state.subscriptions[subscription.id] = subscription
    return JSONResponse({"id": subscription.id, **status_body(200)})


async def _subscription(state: ApdsState, request: Request) -> Response:
    subscription = state.subscriptions.get(request.path_params["id"])
    if subscription is None:
        return error(404, "no such event subscription")
    if request.method == "GET":
        return JSONResponse({"id": subscription.id, "lastModified": format_time(subscription.last_modified),
                             **subscription.body})
    if request.method == "PUT":
        subscription.body = _subscription_body(await body_of(request))
        subscription.last_modified = sim_now()
        return ok()
    del state.subscriptions[subscription.id]
    return ok()
