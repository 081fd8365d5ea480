"""The LPR enforcement platform's adapter: zones and citations, every page.

Options (`SystemSpec.options`):
- `page_size` — items per page, 1..100 (default 100, the platform's maximum).

Credentials: `username`, `password` (HTTP Basic) and `api_key` (`X-API-Key`); the platform
wants all three on every call.

A citation's issue time is the handheld's local wall clock, so mapping one needs its zone's
time zone: the adapter keeps the zones' time zones from its last zone listing and lists the
zones again when a citation names one it does not know.

Issuing sends the gateway's reference as `externalReference`, which the platform refuses twice
(409 naming `existingNumber`): so the POST is safe to retry, and a duplicate answer means "done
already" and returns the citation issued the first time. Voiding a void citation returns it, so
voids are retried too. Spring error bodies become VendorRefused (adapters/lpr/refusals.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from adapters.base import EnforcementAdapter, SystemSpec
from adapters.errors import UpstreamError, UpstreamRejected
from adapters.http import VendorHTTP
from adapters.lpr import webhooks
from adapters.lpr.refusals import refusal_of
from adapters.lpr.wire import API, MAX_PAGE_SIZE, format_timestamp, issued_at
from adapters.models import Batch, Citation, CitationRequest, EnforcementZone, GeoPoint, Money, RecordError, VendorEvent
from adapters.operation_models import RefusalReason, VendorRefused, normalize_plate


class LprAdapter(EnforcementAdapter):
    dialect = "lpr"
    required_credentials = ("username", "password", "api_key")
    webhook_credential = "webhook_secret"

    def __init__(self, spec: SystemSpec, http: VendorHTTP | None = None) -> None:
        super().__init__(spec, http)
        self._auth = (spec.credential("username"), spec.credential("password"))
        self._headers = {"X-API-Key": spec.credential("api_key"), "Accept": "application/json"}
        self._page_size = min(max(int(spec.options.get("page_size", MAX_PAGE_SIZE)), 1), MAX_PAGE_SIZE)
        self._zone_tz: dict[str, ZoneInfo] = {}

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, query_params: Mapping[str, str],
                       now: datetime) -> list[VendorEvent]:
        """The static `webhook_secret` credential in `X-Webhook-Secret` (adapters/lpr/webhooks.py)."""
        return webhooks.verify(self.spec.credentials.get("webhook_secret"), headers, raw_body, now)

    async def zones(self) -> Batch[EnforcementZone]:
        batch: Batch[EnforcementZone] = Batch()
        zone_tz: dict[str, ZoneInfo] = {}
        async for index, record in self._records(f"{API}/zones", {}):
            try:
                zone, tz = _zone(record)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                batch.errors.append(RecordError(self.system_id, _ref(record, "zoneCode", index), _why(exc)))
                continue
            batch.items.append(zone)
            zone_tz[zone.vendor_id] = tz
        self._zone_tz = zone_tz
        return batch

    async def citations(self, since: datetime) -> Batch[Citation]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        # Newest first: a citation issued while we page pushes the rest down one place and
        # repeats one on the next page; keep the first copy.
        records: dict[str, tuple[int, Any]] = {}
        unnumbered: list[tuple[int, Any]] = []
        async for index, record in self._records(f"{API}/citations", {"since": format_timestamp(since)}):
            number = record.get("citationNumber") if isinstance(record, dict) else None
            if isinstance(number, str):
                records.setdefault(number, (index, record))
            else:
                unnumbered.append((index, record))
        rows = [*records.values(), *unnumbered]
        zone_codes = {r.get("zoneCode") for _, r in rows if isinstance(r, dict) and isinstance(r.get("zoneCode"), str)}
        if not self._zone_tz or not zone_codes <= self._zone_tz.keys():
            await self.zones()

        batch: Batch[Citation] = Batch()
        for index, record in rows:
            try:
                batch.items.append(_citation(record, self._zone_tz))
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                batch.errors.append(RecordError(self.system_id, _ref(record, "citationNumber", index), _why(exc)))
        return batch

    async def issue_citation(self, request: CitationRequest) -> Citation:
        try:
            plate = normalize_plate(request.plate)
        except ValueError:
            plate = request.plate  # the platform's 400 says what is wrong with it
        body = {
            "zoneCode": request.zone_id,
            "plate": plate,
            "plateRegion": request.region,
            "violationCode": request.violation_code,
            "note": request.note,
            "externalReference": request.reference,
        }
        try:
            response = await self._call("POST", f"{API}/citations", body, conflict=RefusalReason.DUPLICATE)
        except VendorRefused as refused:
            if refused.reason is RefusalReason.DUPLICATE and refused.existing_id:
                return await self.citation(refused.existing_id)  # issued already: the first answer, again
            raise
        return await self._one(response, f"POST {API}/citations")

    def _segment(self, number: str) -> str:
        """A citation number as exactly one path segment ("." or ".." would name the list or the API)."""
        if number in ("", ".", ".."):
            raise VendorRefused(self.system_id, RefusalReason.NOT_FOUND, f"no citation {number!r}", 404)
        return quote(number, safe="")

    async def void_citation(self, number: str, reason: str) -> Citation:
        path = f"{API}/citations/{self._segment(number)}/void"
        response = await self._call("POST", path, {"reason": reason}, conflict=RefusalReason.WRONG_STATE)
        return await self._one(response, f"POST {API}/citations/{{number}}/void")

    async def citation(self, number: str) -> Citation:
        """One citation by its number; VendorRefused(NOT_FOUND) when the platform has none."""
        response = await self._call("GET", f"{API}/citations/{self._segment(number)}")
        return await self._one(response, f"GET {API}/citations/{{number}}")

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None, *,
                    conflict: RefusalReason = RefusalReason.WRONG_STATE) -> httpx.Response:
        """One call that is safe to repeat (see the module's docstring); a Spring error becomes
        VendorRefused, a 409 as `conflict`."""
        try:
            return await self.http.request(
                method, path, json=body, auth=self._auth, headers=self._headers, idempotent=True
            )
        except UpstreamRejected as exc:
            refused = refusal_of(exc, conflict)
            if refused is None:
                raise
            raise refused from exc

    async def _one(self, response: httpx.Response, what: str) -> Citation:
        """The citation the platform answered with; one it sent malformed is an upstream error."""
        record = self.http.json(response)
        zone_code = record.get("zoneCode") if isinstance(record, dict) else None
        if isinstance(zone_code, str) and zone_code not in self._zone_tz:
            await self.zones()
        try:
            return _citation(record, self._zone_tz)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise UpstreamError(self.system_id, f"{what} answered with an unusable citation: {_why(exc)}") from None

    async def _records(self, path: str, params: Mapping[str, str]) -> AsyncIterator[tuple[int, Any]]:
        """Every item of a Spring-paged list, page by page, with its position for error refs."""
        page, position = 0, 0
        while True:
            response = await self.http.request(
                "GET", path, params={**params, "page": page, "size": self._page_size},
                auth=self._auth, headers=self._headers,
            )
            body = self.http.json(response)
            content = body.get("content") if isinstance(body, dict) else None
            if not isinstance(content, list):
                raise UpstreamError(self.system_id, f"GET {path} answered without a page of content")
            for record in content:
                yield position, record
                position += 1
            # `last` says when to stop; `totalPages` bounds a vendor that never says it
            last, total_pages = body.get("last"), body.get("totalPages")
            if last is not False or not content:
                return
            if isinstance(total_pages, int) and page + 1 >= total_pages:
                return
            page += 1


def _zone(record: Any) -> tuple[EnforcementZone, ZoneInfo]:
    code = _str(record, "zoneCode")
    max_stay = record.get("maxStayMinutes")
    if max_stay is not None and (type(max_stay) is not int or max_stay < 0):
        raise ValueError(f"maxStayMinutes is not a number of minutes: {max_stay!r}")
    tz = ZoneInfo(_str(record, "timeZone"))
    return EnforcementZone(vendor_id=code, name=_str(record, "name"), max_stay_minutes=max_stay), tz


def _citation(record: Any, zone_tz: Mapping[str, ZoneInfo]) -> Citation:
    zone_code = record.get("zoneCode")
    if zone_code is None:
        raise ValueError("no zoneCode: the local issue time cannot be placed")
    if zone_code not in zone_tz:
        raise ValueError(f"unknown zone {zone_code!r}: the local issue time cannot be placed")
    version = record.get("version", 1)
    if type(version) is not int:
        raise ValueError(f"version is not an integer: {version!r}")
    return Citation(
        number=_str(record, "citationNumber"),
        issued_at=issued_at(_str(record, "issueDate"), _str(record, "issueTime"), zone_tz[zone_code]),
        plate=_str(record, "plate"),
        region=_opt_str(record, "plateRegion"),
        violation_code=_str(record, "violationCode"),
        violation=_opt_str(record, "violationText"),
        fine=_fine(record),
        zone_id=zone_code,
        location=_gps(record.get("gps")),
        status=_str(record, "status"),
        version=version,
    )


def _fine(record: Mapping[str, Any]) -> Money | None:
    cents = record.get("fineCents")
    if cents is None:
        return None
    if type(cents) is not int:  # never a float, and bool is not an amount either
        raise ValueError(f"fineCents is not an integer: {cents!r}")
    currency = _str(record, "currency")
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"currency is not an ISO 4217 code: {currency!r}")
    return Money(Decimal(cents).scaleb(-2), currency.upper())


def _gps(gps: Any) -> GeoPoint | None:
    if gps is None:
        return None
    lat, lon = gps["lat"], gps["lon"]
    if lat is None and lon is None:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
        raise ValueError(f"gps is not a pair of numbers: {gps!r}")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"gps out of range: {gps!r}")
    return GeoPoint(float(lat), float(lon))


def _str(record: Mapping[str, Any], name: str) -> str:
    value = record[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is not a non-empty string: {value!r}")
    return value


def _opt_str(record: Mapping[str, Any], name: str) -> str | None:
    return None if record.get(name) is None else _str(record, name)


def _ref(record: Any, key: str, index: int) -> str:
    value = record.get(key) if isinstance(record, dict) else None
    return value if isinstance(value, str) and value else f"#{index}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, ZoneInfoNotFoundError):  # a KeyError, but not a missing field
        return f"unknown time zone: {exc}"
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, (TypeError, AttributeError)):
        return f"unexpected shape: {exc}"
    return str(exc)
