"""OAuth2 client credentials over real HTTP, and the signed tokens it hands out."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from starlette.applications import Starlette

from gateway.admin import AdminService, IssuedKey
from gateway.auth.clients import Client, MemoryClientStore
from gateway.auth.keys import Environment
from gateway.auth.oauth import jwks_endpoint, token_endpoint
from gateway.auth.tokens import CLOCK_SKEW_S, MISS_RELOAD_INTERVAL_S, TokenError, TokenService
from tests.support.servers import serve

PEPPER = b"test-pepper-for-oauth"
FORM = {"content-type": "application/x-www-form-urlencoded"}
OAUTH_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope"}


class CountingStore(MemoryClientStore):
    def __init__(self) -> None:
        super().__init__()
        self.signing_key_reads = 0

    async def signing_keys(self) -> list[dict[str, Any]]:
        self.signing_key_reads += 1
        return await super().signing_keys()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    url: str
    http: httpx.AsyncClient
    store: CountingStore
    admin: AdminService
    service: TokenService
    reader: IssuedKey  # facilities:read rates:read occupancy:read
    writer: IssuedKey  # reservations:read reservations:write

    async def token(self, data: dict[str, str], auth: tuple[str, str] | None = None,
                    headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(f"{self.url}/oauth/token", content=urlencode(data),
                                    headers={**FORM, **(headers or {})}, auth=auth)

    async def jwks(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.url}/.well-known/jwks.json")
        assert response.status_code == 200
        return response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig() -> AsyncIterator[Rig]:
    store = CountingStore()
    admin = AdminService(store, PEPPER, known_facilities=[])
    service = TokenService(store)
    app = Starlette(routes=[token_endpoint(service, store, PEPPER, Environment.TEST), jwks_endpoint(service)])
    reader = await admin.create_client("tests", name="reader", environment=Environment.TEST,
                                       scopes=["facilities:read", "rates:read", "occupancy:read"])
    writer = await admin.create_client("tests", name="writer", environment=Environment.TEST,
                                       scopes=["reservations:read", "reservations:write"])
    async with serve(app) as url, httpx.AsyncClient(timeout=30) as http:
        yield Rig(url, http, store, admin, service, reader, writer)


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text
    assert response.headers["cache-control"] == "no-store"


# --- issuing ----------------------------------------------------------------------------


async def test_basic_auth_issues_a_token_that_verifies(rig: Rig) -> None:
    response = await rig.token({"grant_type": "client_credentials"}, auth=(rig.reader.client.id, rig.reader.key))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "facilities:read occupancy:read rates:read"
    claims = await rig.service.verify(body["access_token"])
    assert claims["sub"] == rig.reader.client.id
    assert claims["iss"] == "parkgate" and claims["aud"] == "parkgate"
    assert claims["env"] == "test"
    assert claims["scope"] == body["scope"]
    assert claims["exp"] == claims["iat"] + 900 and claims["nbf"] == claims["iat"]
    assert claims["jti"]
    header = header_of(body["access_token"])
    assert header["alg"] == "ES256"
    jwks = await rig.jwks()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert all("d" not in k for k in jwks["keys"])


async def test_form_auth_with_a_narrowed_scope(rig: Rig) -> None:
    response = await rig.token({"grant_type": "client_credentials", "client_id": rig.reader.client.id,
                                "client_secret": rig.reader.key, "scope": "rates:read facilities:read"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "facilities:read rates:read"
    claims = await rig.service.verify(body["access_token"])
    assert claims["scope"] == "facilities:read rates:read"


async def test_each_token_is_unique(rig: Rig) -> None:
    auth = (rig.reader.client.id, rig.reader.key)
    one = (await rig.token({"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    two = (await rig.token({"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    assert (await rig.service.verify(one))["jti"] != (await rig.service.verify(two))["jti"]


async def test_basic_credentials_are_form_urldecoded(rig: Rig) -> None:
    encoded_secret = quote(rig.reader.key, safe="").replace("_", "%5F")
    header = base64.b64encode(f"{rig.reader.client.id}:{encoded_secret}".encode()).decode()
    response = await rig.token({"grant_type": "client_credentials"}, headers={"authorization": f"Basic {header}"})
    assert response.status_code == 200, response.text


async def test_scope_outside_the_clients_is_invalid_scope(rig: Rig) -> None:
    for scope in ("rates:read reservations:write", "admin", "no-such-scope", "pii:read"):
        response = await rig.token({"grant_type": "client_credentials", "scope": scope},
                                   auth=(rig.reader.client.id, rig.reader.key))
        assert_oauth_error(response, 400, "invalid_scope")


# --- client authentication failures -----------------------------------------------------


async def test_authentication_failures_are_all_the_same_401(rig: Rig) -> None:
    reader, writer = rig.reader, rig.writer
    wrong_secret = reader.key[:-4] + ("AAAA" if not reader.key.endswith("AAAA") else "BBBB")
    cases = {
        "wrong secret": (reader.client.id, wrong_secret),
        "not a key at all": (reader.client.id, "hunter2"),
        "unknown client": ("cl_0000000000000000", reader.key),
        "another client's key": (reader.client.id, writer.key),
        "empty secret": (reader.client.id, ""),
    }
    descriptions = set()
    for name, auth in cases.items():
        response = await rig.token({"grant_type": "client_credentials"}, auth=auth)
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"] == 'Basic realm="parkgate"', name
        descriptions.add(response.json()["error_description"])
        form = {"grant_type": "client_credentials", "client_id": auth[0], "client_secret": auth[1]}
        if auth[1]:
            response = await rig.token(form)
            assert_oauth_error(response, 401, "invalid_client")
            assert "www-authenticate" not in response.headers, name
            descriptions.add(response.json()["error_description"])
    assert len(descriptions) == 1, descriptions  # nothing tells an unknown client from a bad secret


async def test_a_rotated_key_works_during_its_grace_and_not_after(rig: Rig) -> None:
    issued = await rig.admin.create_client("tests", name="rotating", environment=Environment.TEST,
                                           scopes=["rates:read"])
    rotated = await rig.admin.rotate_key("tests", issued.client.id, grace=timedelta(hours=1))
    for key in (issued.key, rotated.key):
        response = await rig.token({"grant_type": "client_credentials"}, auth=(issued.client.id, key))
        assert response.status_code == 200, response.text
    final = await rig.admin.rotate_key("tests", issued.client.id, grace=timedelta(0))  # the grace is over
    for key in (issued.key, rotated.key):
        response = await rig.token({"grant_type": "client_credentials"}, auth=(issued.client.id, key))
        assert_oauth_error(response, 401, "invalid_client")
    response = await rig.token({"grant_type": "client_credentials"}, auth=(issued.client.id, final.key))
    assert response.status_code == 200, response.text


async def test_a_revoked_client_gets_no_token(rig: Rig) -> None:
    issued = await rig.admin.create_client("tests", name="revoked", environment=Environment.TEST,
                                           scopes=["rates:read"])
    auth = (issued.client.id, issued.key)
    assert (await rig.token({"grant_type": "client_credentials"}, auth=auth)).status_code == 200
    await rig.admin.revoke("tests", issued.client.id)
    assert_oauth_error(await rig.token({"grant_type": "client_credentials"}, auth=auth), 401, "invalid_client")


async def test_a_live_key_does_not_work_on_a_test_gateway(rig: Rig) -> None:
    live = await rig.admin.create_client("tests", name="live-one", environment=Environment.LIVE,
                                         scopes=["rates:read"])
    response = await rig.token({"grant_type": "client_credentials"}, auth=(live.client.id, live.key))
    assert_oauth_error(response, 401, "invalid_client")


async def test_no_credentials_at_all(rig: Rig) -> None:
    response = await rig.token({"grant_type": "client_credentials"})
    assert_oauth_error(response, 401, "invalid_client")
    for bad in ("Basic !!!notbase64", "Basic " + base64.b64encode(b"no-colon").decode(),
                "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "Bearer abc", "Basic", "Basic %zz"):
        response = await rig.token({"grant_type": "client_credentials"}, headers={"authorization": bad})
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"] == 'Basic realm="parkgate"'


# --- malformed requests -----------------------------------------------------------------


async def test_grant_type_is_checked(rig: Rig) -> None:
    auth = (rig.reader.client.id, rig.reader.key)
    assert_oauth_error(await rig.token({"grant_type": "password"}, auth=auth), 400, "unsupported_grant_type")
    assert_oauth_error(await rig.token({"grant_type": "authorization_code"}, auth=auth), 400,
                       "unsupported_grant_type")
    assert_oauth_error(await rig.token({}, auth=auth), 400, "invalid_request")
    assert_oauth_error(await rig.token({"grant_type": ""}, auth=auth), 400, "invalid_request")


async def test_content_type_must_be_a_form(rig: Rig) -> None:
    auth = (rig.reader.client.id, rig.reader.key)
    response = await rig.http.post(f"{rig.url}/oauth/token", json={"grant_type": "client_credentials"}, auth=auth)
    assert_oauth_error(response, 400, "invalid_request")
    response = await rig.http.post(f"{rig.url}/oauth/token", content=b"grant_type=client_credentials", auth=auth)
    assert_oauth_error(response, 400, "invalid_request")
    response = await rig.http.post(f"{rig.url}/oauth/token", content=b"grant_type=client_credentials", auth=auth,
                                   headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert response.status_code == 200, response.text


async def test_both_authentication_methods_at_once_is_invalid_request(rig: Rig) -> None:
    response = await rig.token({"grant_type": "client_credentials", "client_id": rig.reader.client.id,
                                "client_secret": rig.reader.key}, auth=(rig.reader.client.id, rig.reader.key))
    assert_oauth_error(response, 400, "invalid_request")


async def test_repeated_parameters_and_odd_bodies_are_invalid_request(rig: Rig) -> None:
    auth = (rig.reader.client.id, rig.reader.key)
    for body in (b"grant_type=client_credentials&grant_type=client_credentials",
                 b"grant_type=client_credentials&scope=%ff%fe",
                 "grant_type=client_credentials&scope=é".encode(),
                 b"grant_type=client_credentials" + b"&x=1" * 40):
        response = await rig.http.post(f"{rig.url}/oauth/token", content=body, headers=FORM, auth=auth)
        assert_oauth_error(response, 400, "invalid_request")


async def test_a_huge_body_is_413(rig: Rig) -> None:
    body = b"grant_type=client_credentials&pad=" + b"a" * 10_000
    response = await rig.http.post(f"{rig.url}/oauth/token", content=body, headers=FORM)
    assert_oauth_error(response, 413, "invalid_request")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(10):
            yield b"a" * 1024

    response = await rig.http.post(f"{rig.url}/oauth/token", content=chunks(), headers=FORM)
    assert_oauth_error(response, 413, "invalid_request")


async def test_get_is_not_allowed(rig: Rig) -> None:
    assert (await rig.http.get(f"{rig.url}/oauth/token")).status_code == 405


# --- signing keys and verification ------------------------------------------------------


async def test_tokens_from_a_rotated_signing_key_still_verify(rig: Rig) -> None:
    auth = (rig.reader.client.id, rig.reader.key)
    before = (await rig.token({"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    new_kid = await rig.service.rotate()
    after = (await rig.token({"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    assert header_of(after)["kid"] == new_kid != header_of(before)["kid"]
    assert (await rig.service.verify(before))["sub"] == rig.reader.client.id
    assert (await rig.service.verify(after))["sub"] == rig.reader.client.id
    kids = [k["kid"] for k in (await rig.jwks())["keys"]]
    assert kids[0] == new_kid and header_of(before)["kid"] in kids


async def test_a_second_replica_verifies_the_first_ones_tokens(rig: Rig) -> None:
    replica = TokenService(rig.store)
    auth = (rig.reader.client.id, rig.reader.key)
    token = (await rig.token({"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    assert (await replica.verify(token))["sub"] == rig.reader.client.id
    # the first replica rotates; the second learns the new kid from the store on first sight
    await rig.service.rotate()
    token = (await rig.token({"grant_type": "client_credentials"}, auth=auth)).json()["access_token"]
    assert (await replica.verify(token))["sub"] == rig.reader.client.id
    # and signs with the shared newest key rather than making its own
    issued, _ = await replica.issue(rig.reader.client, frozenset({"rates:read"}))
    assert header_of(issued)["kid"] == header_of(token)["kid"]
    assert (await rig.service.verify(issued))["scope"] == "rates:read"


async def test_a_flood_of_unknown_kids_reloads_the_keyset_at_most_once(rig: Rig) -> None:
    replica = TokenService(rig.store)
    await replica.current_key()
    reads = rig.store.signing_key_reads
    for i in range(200):
        forged = f"{b64(json.dumps({'alg': 'ES256', 'kid': f'garbage-{i}'}))}.{b64('{}')}.{b64(b'x' * 64)}"
        with pytest.raises(TokenError, match="unknown signing key"):
            await replica.verify(forged)
    assert rig.store.signing_key_reads - reads <= 1
    assert MISS_RELOAD_INTERVAL_S >= 1


async def test_forged_and_broken_tokens_are_refused(rig: Rig) -> None:
    client = rig.reader.client
    token, _ = await rig.service.issue(client, frozenset({"rates:read"}))
    head, payload, signature = token.split(".")
    kid = header_of(token)["kid"]
    claims = await rig.service.verify(token)

    foreign = ECKey.generate_key("P-256", parameters={"kid": kid})
    forged_same_kid = jwt.encode({"alg": "ES256", "kid": kid}, dict(claims), foreign, algorithms=["ES256"])
    with pytest.raises(TokenError, match="bad signature"):
        await rig.service.verify(forged_same_kid)

    none_head = b64(json.dumps({"alg": "none", "kid": kid, "typ": "JWT"}))
    for forged in (f"{none_head}.{payload}.", f"{none_head}.{payload}.{signature}"):
        with pytest.raises(TokenError):
            await rig.service.verify(forged)

    # HS256 with the public key as the secret: the classic algorithm confusion
    public = next(k for k in (await rig.jwks())["keys"] if k["kid"] == kid)
    secret = OctKey.import_key(json.dumps(public, sort_keys=True).encode())
    confused = jwt.encode({"alg": "HS256", "kid": kid}, dict(claims), secret, algorithms=["HS256"])
    with pytest.raises(TokenError, match="algorithm"):
        await rig.service.verify(confused)

    tampered_payload = b64(json.dumps({**claims, "scope": "admin pii:read"}))
    with pytest.raises(TokenError, match="bad signature"):
        await rig.service.verify(f"{head}.{tampered_payload}.{signature}")

    extra_header = b64(json.dumps({"alg": "ES256", "kid": kid, "crit": ["b64"], "b64": False}))
    with pytest.raises(TokenError):
        await rig.service.verify(f"{extra_header}.{payload}.{signature}")

    not_utf8 = b64(b"\xff")
    for junk in ("", ".", "..", "a.b.c", token + ".x", token[:-1], "x" * 100_000, "é.é.é", head + "..",
                 f"{b64('[]')}.{payload}.{signature}", f"{b64('null')}.{payload}.{signature}",
                 f"{not_utf8}.{payload}.{signature}", f"{head}.{b64('[' * 5000)}.{signature}"):
        with pytest.raises(TokenError):
            await rig.service.verify(junk)


async def test_expired_and_not_yet_valid_tokens_are_refused(rig: Rig) -> None:
    clock = Clock()
    service = TokenService(rig.store, lifetime_s=60, clock=clock)
    token, expires_in = await service.issue(rig.reader.client, frozenset())
    assert expires_in == 60
    clock.now += 60 + CLOCK_SKEW_S - 1  # within the skew allowance
    assert (await service.verify(token))["scope"] == ""
    clock.now += 2
    with pytest.raises(TokenError, match="expired"):
        await service.verify(token)

    clock.now = time.time() + 3600
    future, _ = await service.issue(rig.reader.client, frozenset())
    with pytest.raises(TokenError, match="not yet valid"):
        await rig.service.verify(future)
    clock.now = time.time() + CLOCK_SKEW_S - 5  # a replica a little ahead: tolerated
    slightly_ahead, _ = await service.issue(rig.reader.client, frozenset())
    assert await rig.service.verify(slightly_ahead)


async def test_wrong_issuer_or_audience_is_refused(rig: Rig) -> None:
    other = TokenService(rig.store, issuer="someone-else")
    token, _ = await other.issue(rig.reader.client, frozenset())
    with pytest.raises(TokenError, match="issuer"):
        await rig.service.verify(token)
    key = await rig.service.current_key()
    now = int(time.time())
    claims = {"iss": "parkgate", "sub": "cl_x", "aud": "elsewhere", "iat": now, "nbf": now, "exp": now + 60,
              "jti": "j", "scope": "", "env": "test"}
    wrong_aud = jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])
    with pytest.raises(TokenError, match="audience"):
        await rig.service.verify(wrong_aud)
    no_exp = jwt.encode({"alg": "ES256", "kid": key.kid}, {**claims, "aud": "parkgate", "exp": None}, key,
                        algorithms=["ES256"])
    with pytest.raises(TokenError, match="exp"):
        await rig.service.verify(no_exp)


async def test_signing_keys_rotate_by_age_and_old_ones_are_dropped_later() -> None:
    store = MemoryClientStore()
    clock = Clock()
    service = TokenService(store, lifetime_s=900, rotate_after_s=3600, clock=clock)
    client = Client("cl_1", "n", Environment.TEST, frozenset({"rates:read"}), None, datetime.now(UTC))
    first = (await service.current_key()).kid
    assert (await service.current_key()).kid == first
    clock.now += 3600 - 10
    assert (await service.current_key()).kid == first
    old_token, _ = await service.issue(client, client.scopes)  # the first key's last token
    clock.now += 20
    second = (await service.current_key()).kid
    assert second != first
    assert [k["kid"] for k in await store.signing_keys()] == [second, first]
    assert header_of(old_token)["kid"] == first
    assert (await service.verify(old_token))["sub"] == "cl_1"
    assert (await TokenService(store, clock=clock).verify(old_token))["sub"] == "cl_1"
    # the first key stays while tokens it signed can be valid, then goes at the next rotation
    # (a second past the rotation age: exactly at it, float rounding of stored times decides)
    clock.now += 3601
    third = (await service.current_key()).kid
    assert [k["kid"] for k in await store.signing_keys()] == [third, second]
    with pytest.raises(TokenError):
        await TokenService(store, clock=clock).verify(old_token)


async def test_garbage_signing_key_entries_in_the_store_are_ignored() -> None:
    store = MemoryClientStore()
    await store.save_signing_keys([{"kid": "broken", "kty": "EC", "created_at": "yesterday"}, {"nonsense": 1}])
    service = TokenService(store)
    key = await service.current_key()
    assert key.kid != "broken"
    replica = TokenService(store)
    client = Client("cl_1", "n", Environment.TEST, frozenset({"rates:read"}), None, datetime.now(UTC))
    token, _ = await service.issue(client, client.scopes)
    assert (await replica.verify(token))["sub"] == "cl_1"


# --- fuzz: nothing a caller sends produces a 500 ----------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HEADER_BYTES = st.binary(max_size=120).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c < 127 or c >= 128).strip(b" \t"))
TEXT = st.text(max_size=60)
FIELD_NAMES = st.sampled_from(["grant_type", "client_id", "client_secret", "scope", "x", ""])


@st.composite
def _authorization(draw: st.DrawFn) -> bytes | None:
    kind = draw(st.sampled_from(["none", "raw", "basic-bytes", "basic-text", "basic-near"]))
    if kind == "none":
        return None
    if kind == "raw":
        return draw(HEADER_BYTES)
    if kind == "basic-bytes":
        return b"Basic " + base64.b64encode(draw(st.binary(max_size=80)))
    if kind == "basic-text":
        return b"Basic " + base64.b64encode(f"{draw(TEXT)}:{draw(TEXT)}".encode())
    user = draw(st.sampled_from(["cl_", "", "%", "+", "cl_0000000000000000"])) + draw(TEXT)
    secret = draw(st.sampled_from(["pk_test_", "pk_live_", "%ff", ""])) + draw(TEXT)
    return b"Basic " + base64.b64encode(f"{user}:{secret}".encode())


def authorization() -> st.SearchStrategy[bytes | None]:
    # h11 (the client) refuses header values with surrounding whitespace before they are sent
    return _authorization().map(lambda value: None if value is None else value.strip(b" \t"))


@st.composite
def body(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    fields = draw(st.lists(st.tuples(FIELD_NAMES, st.one_of(TEXT, st.just("client_credentials"))), max_size=6))
    return urlencode(fields).encode()


@FUZZ
@given(auth=authorization(), content=body(),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
                                     "application/json", "", "application/x-www-form-urlencoded;;;=", "text/plain"]))
async def test_fuzzed_requests_never_produce_a_500(rig: Rig, auth: bytes | None, content: bytes,
                                                   content_type: str) -> None:
    headers: dict[str, Any] = {"content-type": content_type}
    if auth is not None:
        headers["authorization"] = auth
    response = await rig.http.post(f"{rig.url}/oauth/token", content=content, headers=headers)
    assert response.status_code in (200, 400, 401, 413), response.text
    if response.status_code != 200:
        assert response.json()["error"] in OAUTH_ERRORS, response.text
        assert response.headers["cache-control"] == "no-store"


@FUZZ
@given(token=st.one_of(st.text(max_size=300),
                       st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=",
                                        max_size=80), min_size=1, max_size=4).map(".".join),
                       st.tuples(st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku"]),
                                                 st.one_of(st.none(), st.integers(), TEXT,
                                                           st.sampled_from(["ES256", "none", "HS256", "RS256"]))),
                                 st.dictionaries(TEXT, st.one_of(st.none(), st.integers(), st.floats(), TEXT)),
                                 st.binary(max_size=70))
                       .map(lambda t: f"{b64(json.dumps(t[0]))}.{b64(json.dumps(t[1]))}.{b64(t[2])}")))
async def test_fuzzed_tokens_raise_only_token_error(rig: Rig, token: str) -> None:
    try:
        await rig.service.verify(token)
    except TokenError:
        return
    raise AssertionError(f"accepted a fuzzed token: {token!r}")
