"""Inbound vendor webhooks: `POST /webhooks/{system_id}`.

What happens to a webhook, in order:
  1. the system must exist and its dialect send webhooks (else 404);
  2. the raw body is read, at most `MAX_BODY` bytes (else 413);
  3. the system's adapter verifies it by its own scheme: HMAC of the raw body, a static
     secret, or a URL token; a timestamp outside the tolerance is a replay (401, nothing
     recorded); an authentic but unreadable body is 400;
  4. an event for a place (APDS), zone (LPR) or enterprise (Mews) that no configured facility
     maps is acknowledged and dropped: no subscriber or partner could be sent it, and a vendor
     refused would retry it forever. It is counted (`unmapped` in /metrics and /readyz) and
     logged as a WARNING naming the system, the event id and the place, never the payload;
  5. every other event is deduped and durably accepted in the inbox (gateway/events/inbox.py);
     only then the answer: 202 (accepted, corrected or unmapped), or 200 when every event was a
     duplicate; 503 when the inbox cannot be written, so the vendor retries;
  6. later, the processor (gateway/events/processor.py) publishes it on the bus.
Each event's outcome is counted per system (gateway/systems.py, `WEBHOOK_OUTCOMES`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from adapters.errors import WebhookMalformed, WebhookRejected
from gateway.errors import RETRY_AFTER_S, ErrorCode
from gateway.events.inbox import Inbox, InboxItem, InboxOutcome, build_inbox
from gateway.events.processor import WebhookProcessor
from gateway.runtime import Runtime
from gateway.systems import WEBHOOK_UNMAPPED

log = logging.getLogger("parkgate.events.webhooks")

MAX_BODY = 256 * 1024


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class WebhookIngress:
    """Inbound webhooks: the endpoint, the inbox it accepts events into, the processor draining it."""

    runtime: Runtime
    inbox: Inbox
    processor: WebhookProcessor

    @classmethod
    def build(cls, runtime: Runtime) -> WebhookIngress:
        inbox = build_inbox(runtime.config)
        return cls(runtime, inbox, WebhookProcessor(runtime, inbox))

    def routes(self) -> list[BaseRoute]:
        return [Route("/webhooks/{system_id}", self.endpoint, methods=["POST"])]

    async def start(self) -> None:
        await self.processor.start()

    async def stop(self) -> None:
        await self.processor.stop()
        await self.inbox.aclose()

    async def endpoint(self, request: Request) -> JSONResponse:
        system_id = request.path_params["system_id"]
        adapter = self.runtime.systems.adapters.get(system_id)
        if adapter is None or adapter.webhook_credential is None:
            return _answer(404, "NOT_FOUND", f"No webhooks are received for system {system_id!r}.")
        try:
            raw = await read_body(request)
        except BodyTooLarge:
            return _answer(413, "PAYLOAD_TOO_LARGE", f"A webhook body may be at most {MAX_BODY} bytes.")
        except ClientDisconnect:
            return _answer(400, "BAD_REQUEST", "The body was cut short.")
        received_at = datetime.now(UTC)
        try:
            events = adapter.verify_webhook(request.headers, raw, request.query_params, received_at)
        except WebhookRejected as exc:
            log.warning("webhook for %s rejected: %s", system_id, exc)
            return _answer(401, "UNAUTHENTICATED", "The webhook could not be verified.")
        except WebhookMalformed as exc:
            return _answer(400, "BAD_REQUEST", f"Malformed webhook: {exc}")
        dedupe = not adapter.webhook_ids_only
        counts = self.runtime.systems.health[system_id].webhooks
        received = self.runtime.observability.metrics.webhooks_received
        accepted: list[dict[str, str | int]] = []
        try:
            for event in events:
                if event.vendor_facility_id is not None and self.processor.facility_of(system_id, event) is None:
                    log.warning("webhook event %r from %s is for %r, which no configured facility maps: "
                                "acknowledged and dropped", event.vendor_event_id, system_id, event.vendor_facility_id)
                    counts[WEBHOOK_UNMAPPED] += 1
                    received.child(system_id, WEBHOOK_UNMAPPED).inc()
                    accepted.append({"id": event.vendor_event_id, "status": WEBHOOK_UNMAPPED})
                    continue
                outcome, revision = await self.inbox.accept(InboxItem(system_id, event, received_at), dedupe=dedupe)
                counts[outcome.value] += 1
                received.child(system_id, outcome.value).inc()
                accepted.append({"id": event.vendor_event_id, "status": outcome.value, "revision": revision})
        except Exception as exc:  # noqa: BLE001 - the inbox is unreachable: not accepted, the vendor must retry
            log.warning("webhook for %s not accepted: the inbox is unavailable (%s)", system_id, exc)
            response = _answer(503, ErrorCode.GATEWAY_UNAVAILABLE.value, "The webhook could not be stored; retry later.")
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        duplicate = bool(accepted) and all(a["status"] == InboxOutcome.DUPLICATE for a in accepted)
        status = "duplicate" if duplicate else "accepted"
        return JSONResponse({"status": status, "events": accepted}, status_code=200 if duplicate else 202)


def _answer(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
