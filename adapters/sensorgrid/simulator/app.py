"""The sensor-grid simulator's app: the guidance system's bay sensors per level, observed from the world.

What it serves (the wire contract the adapter in `adapters/sensorgrid/adapter.py` speaks):

- `POST /oauth/token`: OAuth2 client credentials (HTTP Basic, `grant_type=client_credentials`),
  bearer tokens that expire after `grid.tokens.lifetime_s` seconds (default 300).
- `GET /api/v3/sites` and `GET /api/v3/belegung` (one record per level): `?limit=` (default 50,
  at most 200) and an opaque `?cursor=`; body `{"items": [...], "next_cursor": str | null}`.

Like the real thing, the sensors are a little noisy (±1 on a level now and then), level
controllers with even numbers run firmware that sends `zeitstempel` as a string, and the spree
hotel's basement controller (`QUIRKY_LEVEL`) sometimes sends no `zeitstempel` at all.

Test hooks, on `SensorGridSimulator.grid`:

- `grid.tokens.lifetime_s = 1`: tokens issued from now on expire after one second.
- `grid.tokens.revoke_all()`: every issued token is invalid at once (as after a vendor restart).
- `grid.override_level("12-2", belegt="viele", stellplaetze=DROP)`: fields of that level's
  record replaced (or removed with `DROP`) in every answer until `grid.clear_overrides()`.
- `grid.noise_rate` and `grid.missing_timestamp_rate`: how often the quirks above happen (0-1).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.simulated.harness import Simulator, SimulatorControl, simulator_app, vendor_error
from adapters.simulated.world import World

#: garage key -> the vendor's site id
VENDOR_IDS: Mapping[str, str] = {
    "berlin-hbf": "12",
    "berlin-mitte": "14",
    "berlin-spree-hotel": "15",
    "london-kings-cross": "31",
}
QUIRKY_LEVEL = "15-1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DEFAULT_TOKEN_LIFETIME_S = 300
ALMOST_FULL_PERCENT = 85
DROP: Final = object()  # as an override value: leave the field out of the record


class TokenIssuer:
    """The authorization server: one client, opaque random tokens with an expiry."""

    def __init__(self, client_id: str, client_secret: str, lifetime_s: int = DEFAULT_TOKEN_LIFETIME_S) -> None:
        self._client_id = client_id.encode()
        self._client_secret = client_secret.encode()
        self.lifetime_s = lifetime_s
        self._expiry: dict[str, float] = {}  # token -> monotonic deadline

    def authenticate(self, authorization: str | None) -> bool:
        """Whether an `Authorization: Basic ...` header names our client and its secret."""
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, sep, secret = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both compared in constant time, and both always compared: no early exit to time.
        id_ok = hmac.compare_digest(client_id, self._client_id)
        secret_ok = hmac.compare_digest(secret, self._client_secret)
        return bool(sep) and id_ok and secret_ok

    def issue(self) -> tuple[str, int]:
        now = time.monotonic()
        self._expiry = {token: deadline for token, deadline in self._expiry.items() if deadline > now}
        token = secrets.token_urlsafe(32)
        self._expiry[token] = now + self.lifetime_s
        return token, self.lifetime_s

    def valid(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        deadline = self._expiry.get(token.strip()) if scheme.lower() == "bearer" else None
        return deadline is not None and time.monotonic() < deadline

    def revoke_all(self) -> None:
        self._expiry.clear()


class SensorGrid:
    """The vendor's back end: what its sensors see in the world, and its HTTP endpoints."""

    def __init__(self, world: World, client_id: str, client_secret: str, *, seed: int = 11) -> None:
        self.world = world
        self.tokens = TokenIssuer(client_id, client_secret)
        self.noise_rate = 0.2
        self.missing_timestamp_rate = 0.25
        self._rng = random.Random(seed)
        self._overrides: dict[str, dict[str, object]] = {}

    # --- test hooks --------------------------------------------------------------------

    def override_level(self, level_id: str, **fields: object) -> None:
        self._overrides.setdefault(level_id, {}).update(fields)

    def clear_overrides(self) -> None:
        self._overrides.clear()

    # --- what the vendor knows ---------------------------------------------------------

    def sites(self) -> list[dict[str, Any]]:
        items = []
        for key, site_id in self.world.ids_of("sensor-grid", VENDOR_IDS).items():
            spec = self.world.garages[key].spec
            levels = [
                {"ebeneId": f"{site_id}-{n}", "name": level.key, "stellplaetze": level.capacity}
                for n, level in enumerate(spec.levels, start=1)
            ]
            items.append({"siteId": site_id, "bezeichnung": spec.name, "ebenen": levels})
        return items

    def belegung(self) -> list[dict[str, Any]]:
        """One record per level, as its sensors report it right now."""
        items = []
        for key, site_id in self.world.ids_of("sensor-grid", VENDOR_IDS).items():
            state = self.world.snapshot(key)
            trend = {1: "steigend", -1: "fallend"}.get(state.trend, "gleichbleibend")
            for n, level in enumerate(state.spec.levels, start=1):
                level_id = f"{site_id}-{n}"
                occupied = self._sensed(state.occupied[n - 1], level.capacity)
                record: dict[str, Any] = {
                    "siteId": site_id,
                    "ebeneId": level_id,
                    "belegt": occupied,
                    "stellplaetze": level.capacity,
                    "status": _status(occupied, level.capacity),
                    "tendenz": trend,
                }
                stamp = self._timestamp(level_id, n)
                if stamp is not None:
                    record["zeitstempel"] = stamp
                for field, value in self._overrides.get(level_id, {}).items():
                    if value is DROP:
                        record.pop(field, None)
                    else:
                        record[field] = value
                items.append(record)
        return items

    def _sensed(self, truth: int, bays: int) -> int:
        if self._rng.random() < self.noise_rate:
            truth += self._rng.choice((-1, 1))
        return min(max(truth, 0), bays)

    def _timestamp(self, level_id: str, n: int) -> int | str | None:
        if level_id == QUIRKY_LEVEL and self._rng.random() < self.missing_timestamp_rate:
            return None
        # Controllers report every few seconds: the reading is a little older than the answer.
        ms = int(datetime.now(UTC).timestamp() * 1000) - self._rng.randint(0, 4000)
        return str(ms) if n % 2 == 0 else ms

    # --- HTTP --------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self._token, methods=["POST"]),
            Route("/api/v3/sites", self._sites, methods=["GET"]),
            Route("/api/v3/belegung", self._belegung, methods=["GET"]),
        ]

    async def _token(self, request: Request) -> Response:
        if not self.tokens.authenticate(request.headers.get("authorization")):
            return JSONResponse(
                {"error": "invalid_client"}, 401, headers={"WWW-Authenticate": 'Basic realm="sensorgrid"'}
            )
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        grant = form.get("grant_type")
        if grant is None:
            return vendor_error(400, {"error": "invalid_request"})
        if grant != ["client_credentials"]:
            return vendor_error(400, {"error": "unsupported_grant_type"})
        token, lifetime = self.tokens.issue()
        body = {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def _sites(self, request: Request) -> Response:
        return self._paged(request, "sites", self.sites)

    async def _belegung(self, request: Request) -> Response:
        return self._paged(request, "belegung", self.belegung)

    def _paged(self, request: Request, resource: str, source: Callable[[], list[dict[str, Any]]]) -> Response:
        if not self.tokens.valid(request.headers.get("authorization")):
            return JSONResponse(
                {"error": "invalid_token"}, 401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        try:
            limit = int(request.query_params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return vendor_error(400, {"error": "invalid_limit"})
        if limit < 1:
            return vendor_error(400, {"error": "invalid_limit"})
        limit = min(limit, MAX_LIMIT)
        items = source()
        cursor = request.query_params.get("cursor")
        offset = 0 if cursor is None else decode_cursor(cursor, resource)
        if offset is None or offset > len(items):
            return vendor_error(400, {"error": "invalid_cursor"})
        end = offset + limit
        next_cursor = encode_cursor(resource, end) if end < len(items) else None
        return JSONResponse({"items": items[offset:end], "next_cursor": next_cursor})


def encode_cursor(resource: str, offset: int) -> str:
    """Opaque to clients: base64 of a small JSON document naming the list and the offset."""
    raw = json.dumps({"r": resource, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, resource: str) -> int | None:
    """The offset a cursor stands for, or None when it is not one of ours for this list."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("r") != resource:
        return None
    offset = doc.get("o")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return None
    return offset


def _status(occupied: int, bays: int) -> str:
    if occupied >= bays:
        return "besetzt"
    if occupied * 100 < bays * ALMOST_FULL_PERCENT:
        return "frei"
    return "fast voll"


@dataclass
class SensorGridSimulator(Simulator):
    """A `Simulator` plus the vendor back end, for the test hooks described above."""

    grid: SensorGrid


def create_simulator(world: World, system_id: str, credentials: Mapping[str, str]) -> SensorGridSimulator:
    """A sensor grid serving `world`, accepting the client named in `credentials`."""
    grid = SensorGrid(world, credentials["client_id"], credentials["client_secret"])
    control = SimulatorControl(system_id)
    return SensorGridSimulator(system_id, simulator_app(control, grid.routes()), control, world, grid)
