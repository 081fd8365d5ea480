"""The OAuth2 token endpoint (client credentials grant, RFC 6749 §4.4) and the JWKS.

    POST /oauth/token   grant_type=client_credentials [&scope=a b]
                        client auth: HTTP Basic client_id:client_secret, or form fields
                        client_id + client_secret (never both); the secret is an API key
    GET  /.well-known/jwks.json

Every failure of client authentication answers the same 401 invalid_client, whatever was
wrong, so the endpoint tells nobody which client ids exist. While the client store cannot be
reached, the token endpoint answers 503 `temporarily_unavailable` (RFC 6749 §4.1.2.1's code for a
server that cannot serve now) with Retry-After; the JWKS, like every other route, the app's 503.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth.clients import Client, ClientStatus, ClientStore
from gateway.auth.keys import Environment, key_hash, key_matches, parse_key
from gateway.auth.tokens import TokenService
from gateway.card_numbers import ScreenExhausted, card_number_path
from gateway.errors import RETRY_AFTER_S, STORE_ERRORS

log = logging.getLogger("parkgate.oauth")

MAX_BODY = 8 * 1024
MAX_FIELDS = 16
MAX_ID_LENGTH = 128
FORM_TYPE = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
BASIC_CHALLENGE = 'Basic realm="parkgate"'
#: RFC 6749 appendix A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
AUTH_FAILED = "client authentication failed"


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400, challenge: bool = False,
                 retry_after_s: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.challenge = challenge
        self.retry_after_s = retry_after_s

    def response(self) -> Response:
        headers = dict(NO_STORE)
        if self.challenge:
            headers["WWW-Authenticate"] = BASIC_CHALLENGE
        if self.retry_after_s is not None:
            headers["Retry-After"] = str(self.retry_after_s)
        return JSONResponse({"error": self.error, "error_description": self.description},
                            status_code=self.status, headers=headers)


def _invalid_client(challenge: bool, description: str = AUTH_FAILED) -> OAuthError:
    return OAuthError("invalid_client", description, 401, challenge)


async def _read_form(request: Request) -> dict[str, str]:
    """The form parameters: each at most once; one sent empty counts as not sent (§3.2)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        if not length.isdigit():
            raise OAuthError("invalid_request", "bad Content-Length")
        raise OAuthError("invalid_request", f"request body larger than {MAX_BODY} bytes", 413)
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() != FORM_TYPE:
        raise OAuthError("invalid_request", f"Content-Type must be {FORM_TYPE}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise OAuthError("invalid_request", "the form must be UTF-8")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise OAuthError("invalid_request", f"request body larger than {MAX_BODY} bytes", 413)
    try:
        pairs = parse_qsl(bytes(body).decode("ascii"), keep_blank_values=True, encoding="utf-8",
                          errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a valid UTF-8 form") from None
    try:  # the card-number screen (gateway/card_screen.py) covers the form too, before anything echoes it
        holds_card = card_number_path(pairs) is not None
    except ScreenExhausted:
        holds_card = True
    if holds_card:
        raise OAuthError("invalid_request", "a form parameter holds what looks like a card number; "
                                            "card numbers must never be sent")
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise OAuthError("invalid_request", f"parameter {name[:40]!r} sent more than once")
        seen.add(name)
        if value:
            form[name] = value
    return form


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str, bool]:
    """client_id, client_secret, and whether they came by HTTP Basic."""
    headers = request.headers.getlist("authorization")
    in_form = "client_id" in form or "client_secret" in form
    if len(headers) > 1:
        raise OAuthError("invalid_request", "more than one Authorization header")
    if headers:
        if in_form:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        scheme, _, value = headers[0].strip().partition(" ")
        if scheme.lower() != "basic":
            raise _invalid_client(True, "use HTTP Basic or form client credentials")
        try:
            decoded = base64.b64decode(value.strip().encode("ascii"), validate=True).decode("utf-8")
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                raise ValueError("no colon")
            # §2.3.1: both are form-urlencoded before going into the header
            client_id = unquote_plus(raw_id, errors="strict")
            secret = unquote_plus(raw_secret, errors="strict")
        except (ValueError, binascii.Error, UnicodeError):
            raise _invalid_client(True, "malformed HTTP Basic credentials") from None
        return client_id, secret, True
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"], False
    if in_form:
        raise OAuthError("invalid_request", "client_id and client_secret go together")
    raise _invalid_client(True, "client authentication required")


def token_endpoint(service: TokenService, store: ClientStore, pepper: bytes, environment: Environment) -> Route:
    # computed once: compared against when there is no key record, so every attempt costs one HMAC
    dummy_hash = key_hash(pepper, "pk_test_000000000000_" + "0" * 40)

    async def authenticate(client_id: str, secret: str, basic: bool) -> Client:
        if not client_id or len(client_id) > MAX_ID_LENGTH or not client_id.isprintable():
            raise _invalid_client(basic)
        parsed = parse_key(secret)
        record = await store.key(parsed.key_id) if parsed is not None else None
        client = await store.client(client_id)
        now = datetime.now(UTC)
        matches = key_matches(pepper, secret, record.hash if record is not None else dummy_hash)
        if not (matches and parsed is not None and record is not None and client is not None
                and hmac.compare_digest(record.client_id.encode(), client.id.encode())
                and record.valid_at(now) and client.status is ClientStatus.ACTIVE
                and parsed.environment == environment and client.environment == environment):
            raise _invalid_client(basic)
        return client

    async def token(request: Request) -> Response:
        try:
            form = await _read_form(request)
            grant_type = form.get("grant_type")
            if grant_type is None:
                raise OAuthError("invalid_request", "grant_type is required")
            if grant_type != "client_credentials":
                raise OAuthError("unsupported_grant_type", "only grant_type=client_credentials is supported")
            client_id, secret, basic = _credentials(request, form)
            client = await authenticate(client_id, secret, basic)
            if "scope" in form:
                requested = [s for s in form["scope"].split(" ") if s]
                if not requested:
                    raise OAuthError("invalid_scope", "scope is empty")
                if not all(SCOPE_TOKEN.match(s) for s in requested):
                    raise OAuthError("invalid_scope", "scope is malformed")
                outside = sorted(set(requested) - client.scopes)
                if outside:
                    raise OAuthError("invalid_scope", f"scope {outside[0][:64]!r} is not granted to this client")
                scopes = frozenset(requested)
            else:
                scopes = client.scopes
            access_token, expires_in = await service.issue(client, scopes)
        except OAuthError as error:
            return error.response()
        except STORE_ERRORS as exc:
            log.warning("token endpoint: the client store cannot be reached (%s: %s); answered 503", type(exc).__name__, exc)
            return OAuthError("temporarily_unavailable", "the client store cannot be reached; try again shortly",
                              503, retry_after_s=RETRY_AFTER_S).response()
        return JSONResponse({"access_token": access_token, "token_type": "Bearer",
                             "expires_in": expires_in, "scope": " ".join(sorted(scopes))}, headers=NO_STORE)

    return Route("/oauth/token", token, methods=["POST"], name="oauth_token")


def jwks_endpoint(service: TokenService) -> Route:
    async def jwks(request: Request) -> Response:
        return JSONResponse(await service.jwks(), headers={"Cache-Control": "public, max-age=60"})

    return Route("/.well-known/jwks.json", jwks, methods=["GET"], name="jwks")
