"""Sandbox event injection: `POST /sandbox/systems/{id}/simulate`.

    {"event": "entry" | "exit" | "check_in" | "check_out" | "violation" | "plate_correction",
     "facility_id": "<gateway facility id>", "plate": "B-PG 123", "citation_number": "..." (corrections)}

The world changes first (a car enters or leaves every vendor's view of the garage, a guest
checks in, a handheld issues a citation), then the system emits the event exactly as the real
vendor would: the APDS PARCS delivers EventData to its subscribers (the session, then the
place's new occupancy), the LPR platform pushes a signed webhook, the PMS pushes ids only.
Poll-only systems (the second PARCS, the sensors) push nothing: the change is there for the
poller to notice, and the answer says so. 202 with the vendor's event id once queued for
delivery; 400 for a bad request, 404 for an unknown system, 409 when the system does not see
that facility or cannot emit that event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from adapters.apds.simulator.webhooks import ApdsWebhooks
from adapters.lpr.simulator.webhooks import LprWebhooks, citation_event
from adapters.mews.simulator.webhooks import MewsWebhooks, reservation_events
from adapters.models import SystemKind
from adapters.registry import DIALECTS
from adapters.simulated.back_office import office_of
from adapters.simulated.webhook_sender import WebhookSender

EVENTS = ("entry", "exit", "check_in", "check_out", "violation", "plate_correction")
#: which events a kind of system can emit
EVENTS_BY_KIND: dict[SystemKind, tuple[str, ...]] = {
    SystemKind.PARCS: ("entry", "exit"),
    SystemKind.GUIDANCE: ("entry", "exit"),
    SystemKind.ENFORCEMENT: ("violation", "plate_correction"),
    SystemKind.HOSPITALITY: ("check_in", "check_out"),
}
#: what one event does: (system id, facility id, the facility's id in that system, plate, the
#: system's webhook emitter or None, the request body) -> the answer's event fields
EventHandler = Callable[[str, str, str, Any, Any, dict[str, Any]], dict[str, Any]]
PLATE = re.compile(r"[A-Za-z0-9ÄÖÜäöü][A-Za-z0-9ÄÖÜäöü \-]{0,14}")
MAX_BODY = 4096


def build_emitters(base_url: str, dialects: dict[str, str], credentials: dict[str, Any]) -> dict[str, Any]:
    """The webhook side of each webhook-capable simulator, aimed at the gateway's /webhooks/{id}."""
    emitters: dict[str, Any] = {}
    for system_id, dialect in dialects.items():
        secret = DIALECTS[dialect].adapter.webhook_credential
        if secret is None or not credentials[system_id].get(secret):
            continue
        sender = WebhookSender(f"{base_url}/webhooks/{system_id}")
        # (an APDS platform delivers to whoever subscribed: the sandbox uses its simulator's own)
        kind = {"lpr": LprWebhooks, "mews": MewsWebhooks}.get(dialect)
        if kind is not None:
            emitters[system_id] = kind(sender, credentials[system_id][secret])
    return emitters


class InjectionRejected(Exception):
    """A simulate request the sandbox will not carry out: its status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class EventInjector:
    def __init__(self, sandbox: Any, dialects: dict[str, str]) -> None:
        self.sandbox = sandbox
        self.dialects = dialects
        #: citation number -> the event id it was announced under (corrections re-use it)
        self.citation_events: dict[str, str] = {}
        #: each of EVENTS and the method that carries it out
        self.handlers: dict[str, EventHandler] = {
            "entry": self._entry,
            "exit": self._exit,
            "check_in": self._check_in,
            "check_out": self._check_out,
            "violation": self._violation,
            "plate_correction": self._plate_correction,
        }

    def announce_api_citations(self) -> None:
        """Citations issued or voided through the API are pushed like handhelds' ones: a voided
        citation re-sent under its first event id (the gateway publishes it as CITATION_UPDATED)."""
        for system_id, dialect in self.dialects.items():
            emitter = self.sandbox.webhooks.get(system_id)
            if dialect != "lpr" or emitter is None:
                continue

            def announce(citation: Any, what: str, emitter: Any = emitter) -> None:
                event = citation_event(citation.zone.code, citation.to_wire(), self.citation_events.get(citation.number))
                self.citation_events.setdefault(citation.number, event["eventId"])
                emitter.emit(event)

            self.sandbox.simulators[system_id].state.listeners.append(announce)

    async def endpoint(self, request: Request) -> JSONResponse:
        try:
            return JSONResponse(await self._simulate(request), status_code=202)
        except InjectionRejected as exc:
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)

    async def _simulate(self, request: Request) -> dict[str, Any]:
        system_id = request.path_params["system_id"]
        if system_id not in self.sandbox.simulators:
            raise InjectionRejected(404, "NOT_FOUND", f"No system {system_id!r}; GET /sandbox/systems lists them.")
        body = await self._body(request)
        event, facility_id, plate = body.get("event"), body.get("facility_id"), body.get("plate")
        if event not in EVENTS:
            raise InjectionRejected(400, "BAD_USER_INPUT", f"`event` must be one of {', '.join(EVENTS)}.")
        if not isinstance(facility_id, str) or facility_id not in self.sandbox.world.garages:
            keys = list(self.sandbox.world.garages)  # a generated world has thousands: name a few
            named = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
            raise InjectionRejected(400, "BAD_USER_INPUT", f"`facility_id` must be a facility of the sandbox: {named}.")
        if plate is not None and (not isinstance(plate, str) or not PLATE.fullmatch(plate)):
            raise InjectionRejected(400, "BAD_USER_INPUT",
                                    "`plate` must be 1 to 15 letters, digits, spaces or hyphens.")
        if plate is None and event in ("entry", "check_in", "plate_correction"):
            raise InjectionRejected(400, "BAD_USER_INPUT", f"`plate` is required for {event}.")
        dialect = DIALECTS[self.dialects[system_id]]
        vendor_id = dialect.ids_in(self.sandbox.world).get(facility_id)
        if vendor_id is None:
            raise InjectionRejected(409, "CONFLICT", f"System {system_id!r} does not see facility {facility_id!r}.")
        if event not in EVENTS_BY_KIND[dialect.kind]:
            raise InjectionRejected(409, "CONFLICT",
                                    f"System {system_id!r} ({dialect.kind.value}) cannot emit {event!r}; "
                                    f"it emits {', '.join(EVENTS_BY_KIND[dialect.kind])}.")
        emitter = self.sandbox.webhooks.get(system_id)
        handler = self.handlers[event]
        answer: dict[str, Any] = {"system_id": system_id, "event": event, "facility_id": facility_id}
        answer |= handler(system_id, facility_id, vendor_id, plate, emitter, body)
        if emitter is None:
            answer["delivery"] = "poll"
            answer["message"] = f"{system_id!r} sends no webhooks: the world changed; its poller will notice."
        else:
            answer["delivery"] = "webhook"
        return answer

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise InjectionRejected(413, "PAYLOAD_TOO_LARGE", f"At most {MAX_BODY} bytes.")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InjectionRejected(400, "BAD_REQUEST", 'The body must be JSON like {"event": "entry", '
                                                        '"facility_id": "berlin-hbf", "plate": "B-PG 123"}.') from None
        if not isinstance(body, dict):
            raise InjectionRejected(400, "BAD_REQUEST", "The body must be a JSON object.")
        return body

    # --- one method per event: change the world, then emit as the vendor would ----------

    def _entry(self, system_id: str, facility_id: str, vendor_id: str, plate: str, emitter: Any,
               body: dict[str, Any]) -> dict[str, Any]:
        if not self.sandbox.world.enter(facility_id, plate):
            raise InjectionRejected(409, "CONFLICT", f"{facility_id} is full: the barrier stays down.")
        answer: dict[str, Any] = {"event_id": None}
        office = office_of(self.sandbox.world)
        if facility_id in office.terms:  # the PARCS read the plate at its gate: a session opens
            session, arrived = office.vehicle_entered(facility_id, plate)
            answer["session_id"] = session.id
            if arrived is not None:
                answer["reservation_id"] = arrived.id
            if isinstance(emitter, ApdsWebhooks):  # the session (a reserved car's arrival with it), then the count
                answer["event_id"] = emitter.session_created(session)
                if arrived is not None:
                    answer["reservation_event_id"] = answer["event_id"]
        if isinstance(emitter, ApdsWebhooks):
            emitter.place_updated(facility_id)
        return answer

    def _exit(self, system_id: str, facility_id: str, vendor_id: str, plate: str | None, emitter: Any,
              body: dict[str, Any]) -> dict[str, Any]:
        if not self.sandbox.world.exit(facility_id, plate):
            raise InjectionRejected(409, "CONFLICT", f"{facility_id} is empty: nothing can leave.")
        answer: dict[str, Any] = {"event_id": None}
        office = office_of(self.sandbox.world)
        if plate and facility_id in office.terms:  # the session closes; what it owes is paid at the exit lane
            session = office.vehicle_exited(facility_id, plate)
            if session is not None:
                answer["session_id"] = session.id
                if isinstance(emitter, ApdsWebhooks):
                    answer["event_id"] = emitter.session_updated(session)
        if isinstance(emitter, ApdsWebhooks):
            place_event = emitter.place_updated(facility_id)
            answer["event_id"] = answer["event_id"] or place_event
        return answer

    def _violation(self, system_id: str, facility_id: str, vendor_id: str, plate: str | None, emitter: Any,
                   body: dict[str, Any]) -> dict[str, Any]:
        citation = self.sandbox.simulators[system_id].state.issue(vendor_id, plate=plate)
        event = citation_event(vendor_id, citation.to_wire())
        self.citation_events[citation.number] = event["eventId"]
        event_id = emitter.emit(event) if emitter is not None else None
        return {"event_id": event_id, "citation_number": citation.number}

    def _plate_correction(self, system_id: str, facility_id: str, vendor_id: str, plate: str, emitter: Any,
                          body: dict[str, Any]) -> dict[str, Any]:
        state = self.sandbox.simulators[system_id].state
        number = body.get("citation_number")
        announced = [c for c in state.citations if c.number in self.citation_events and c.zone.code == vendor_id]
        citation = next((c for c in reversed(announced) if number is None or c.number == number), None)
        if citation is None:
            raise InjectionRejected(409, "CONFLICT",
                                    "No simulated violation to correct there: simulate a violation first.")
        citation.plate = plate
        citation.version += 1
        citation.last_modified = datetime.now(UTC)
        event = citation_event(vendor_id, citation.to_wire(), self.citation_events[citation.number])
        event_id = emitter.emit(event) if emitter is not None else None
        return {"event_id": event_id, "citation_number": citation.number}

    def _check_in(self, system_id: str, facility_id: str, vendor_id: str, plate: str, emitter: Any,
                  body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        reservation = self.sandbox.simulators[system_id].state.add_reservation(
            vendor_id, start=now - timedelta(minutes=1), end=now + timedelta(days=2), state="Started",
            car_registration=plate)
        if emitter is not None:
            emitter.emit(reservation_events(vendor_id, reservation.id, new_customer=reservation.account_id))
        return {"event_id": reservation.id, "reservation_id": reservation.id}

    def _check_out(self, system_id: str, facility_id: str, vendor_id: str, plate: str | None, emitter: Any,
                   body: dict[str, Any]) -> dict[str, Any]:
        state = self.sandbox.simulators[system_id].state
        staying = [r for r in state.reservations.values() if r.enterprise.id == vendor_id and r.state == "Started"
                   and (plate is None or (r.customer is not None and r.customer.car_registration == plate))]
        if not staying:
            raise InjectionRejected(409, "CONFLICT", "No guest with that car is checked in there.")
        reservation = max(staying, key=lambda r: r.updated)
        state.check_out(reservation)
        if emitter is not None:
            emitter.emit(reservation_events(vendor_id, reservation.id))
        return {"event_id": reservation.id, "reservation_id": reservation.id}
