"""Authentication at the edge: from request headers to a `Principal`, or a clear refusal.

    Authorization: Bearer <API key or access token>      or      X-API-Key: <API key>

An API key is checked against its keyed hash (constant time), its validity window (a rotated
key stays valid for its grace period) and its environment (a test key never works on a live
gateway, nor the reverse). An access token is a JWT from POST /oauth/token; its client is
looked up on every use, so revoking a client stops its tokens too. Lookups are cached for
`cache_ttl_s` (default 0.5 s): a revocation through any replica holds everywhere within a
second, while a busy client costs one store read per half second, not one per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from gateway.auth.clients import Client, ClientStatus, ClientStore, KeyRecord
from gateway.auth.keys import Environment, key_matches, parse_key
from gateway.auth.principal_memo import PrincipalMemo
from gateway.auth.scopes import ALL_SCOPES, Scope
from gateway.errors import STORE_ERRORS, StoreUnavailable

T = TypeVar("T")

MAX_CREDENTIAL_LENGTH = 4096


class AuthError(Exception):
    """Why a request is not authenticated. `error` is RFC 6750's code (None when nothing was sent)."""

    def __init__(self, message: str, error: str | None = "invalid_token") -> None:
        super().__init__(message)
        self.message = message
        self.error = error

    def www_authenticate(self) -> str:
        if self.error is None:
            return 'Bearer realm="parkgate"'
        # A header value must be plain ASCII without quotes; the body carries the message as is.
        description = self.message.replace('"', "'").replace("…", "...").encode("ascii", "replace").decode()
        return f'Bearer realm="parkgate", error="{self.error}", error_description="{description}"'


@dataclass(frozen=True)
class Principal:
    """Who is asking, and what they may see and do in this request."""

    client_id: str
    client_name: str
    scopes: frozenset[str]
    #: the facilities visible to the client; None means every facility
    facilities: frozenset[str] | None
    via: str  # "key", "token" or "none" (authentication turned off)
    plan: str = "standard"
    quota_overrides: Mapping[str, int] = field(default_factory=dict)

    @property
    def pii(self) -> bool:
        return Scope.PII_READ.value in self.scopes

    @property
    def actor(self) -> str:
        return f"client:{self.client_id} ({self.client_name})"

    def sees(self, facility_id: str) -> bool:
        return self.facilities is None or facility_id in self.facilities

    @classmethod
    def of(cls, client: Client, scopes: frozenset[str], via: str) -> Principal:
        return cls(client.id, client.name, scopes, client.facilities, via, client.plan, client.quota_overrides)


def permission_signature(principal: Principal) -> str:
    """What a principal may see, and nothing of who it is: scopes and facilities. Answers shared
    between clients (the response cache, shared subscription executions) are keyed by it."""
    facilities = "*" if principal.facilities is None else ",".join(sorted(principal.facilities))
    return f"{' '.join(sorted(principal.scopes))}|{facilities}"


#: the principal of every request when authentication is turned off (a private deployment)
UNRESTRICTED = Principal("anonymous", "anonymous", ALL_SCOPES, None, "none")


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> dict: ...


class TTLCache:
    """A tiny time-bounded memo for store lookups, bounded by evicting the least recently stored
    (a flood of made-up key ids must not wipe the entries of real clients)."""

    MAX_ITEMS = 10_000

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: OrderedDict[str, tuple[float, object]] = OrderedDict()

    def get(self, key: str, max_age_s: float | None = None) -> object | None:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] > (self.ttl_s if max_age_s is None else max_age_s):
            return None
        return hit[1]

    def put(self, key: str, value: object) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.MAX_ITEMS:
            self._items.popitem(last=False)

    def fresh_until(self, *keys: str) -> float:
        """When the first of these entries stops being served (time.monotonic()); now if one is missing."""
        now = time.monotonic()
        stored = [hit[0] for key in keys if (hit := self._items.get(key)) is not None]
        return min(stored) + self.ttl_s if len(stored) == len(keys) else now

    def drop(self, unwanted: Callable[[str, object], bool]) -> None:
        """Forget every entry for which `unwanted(key, value)` holds."""
        for key in [key for key, (_, value) in self._items.items() if unwanted(key, value)]:
            del self._items[key]


class Authenticator:
    def __init__(self, store: ClientStore, pepper: bytes, environment: Environment, tokens: TokenVerifier | None,
                 *, cache_ttl_s: float = 0.5, stale_if_error_s: float = 300.0) -> None:
        self.store = store
        self.stale_if_error_s = stale_if_error_s
        self.pepper = pepper
        self.environment = environment
        self.tokens = tokens
        self._cache = TTLCache(cache_ttl_s)
        #: API keys' principals while the store has not changed (stores that count their writes)
        self._principals = PrincipalMemo()

    async def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        credential = self._credential(authorization, api_key)
        if credential.startswith("pk_"):
            return await self._by_key(credential)
        if credential.count(".") == 2 and self.tokens is not None:
            return await self._by_token(credential)
        raise AuthError("The credential is neither an API key (pk_…) nor an access token.")

    @staticmethod
    def _credential(authorization: str | None, api_key: str | None) -> str:
        bearer = None
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthError("Use `Authorization: Bearer <key or token>`.", "invalid_request")
            bearer = value.strip()
        if api_key is not None:
            api_key = api_key.strip()
            if bearer is not None and bearer != api_key:
                raise AuthError("Send one credential: Authorization or X-API-Key, not two different ones.", "invalid_request")
        credential = bearer or api_key
        if not credential:
            raise AuthError("Authentication required: send `Authorization: Bearer <key or token>` or `X-API-Key`.", None)
        if len(credential) > MAX_CREDENTIAL_LENGTH or not credential.isascii():
            raise AuthError("The credential is malformed.")
        return credential

    async def _by_key(self, raw: str) -> Principal:
        changes = self.store.changes  # read before anything is: a write meanwhile makes what follows stale
        known = self._principals.get(raw, changes)
        if known is not None:
            return known
        parsed = parse_key(raw)
        if parsed is None:
            raise AuthError("The API key is malformed.")
        if parsed.environment is not self.environment:
            raise AuthError(f"A {parsed.environment.value} key cannot be used on this {self.environment.value} gateway.")
        record = await self._key(parsed.key_id)
        if record is None or not key_matches(self.pepper, raw, record.hash):
            raise AuthError("The API key is not valid.")
        now = datetime.now(UTC)
        client = await self._client(record.client_id)
        if client is None or client.status is ClientStatus.REVOKED:
            raise AuthError("The client has been revoked.")
        if not record.valid_at(now):
            raise AuthError("The API key has expired (it was rotated or revoked).")
        principal = Principal.of(client, client.scopes, "key")
        # a counting store: until its next write; else as long as both records stay in the short cache
        fresh_until = float("inf") if changes is not None else self._cache.fresh_until(
            f"k:{parsed.key_id}", f"c:{record.client_id}")
        self._principals.put(raw, changes, record.expires_at, principal, fresh_until)
        return principal

    async def _by_token(self, token: str) -> Principal:
        assert self.tokens is not None
        try:
            claims = await self.tokens.verify(token)
        except STORE_ERRORS as exc:  # its signing key had to be read from the store: undecidable, not invalid
            raise StoreUnavailable(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - every verification failure is the same 401
            raise AuthError(f"The access token is not valid: {exc}") from None
        client = await self._client(str(claims.get("sub", "")))
        if client is None or client.status is ClientStatus.REVOKED:
            raise AuthError("The client has been revoked.")
        if claims.get("env") != self.environment.value:
            raise AuthError(f"The token was issued for the {claims.get('env')} environment.")
        granted = frozenset(str(claims.get("scope", "")).split()) & client.scopes  # never more than the client has now
        return Principal.of(client, granted, "token")

    def forget(self, client_id: str) -> None:
        """The client changed (gateway/auth/changes.py): its record and its keys' records are read
        from the store again at their next use, not served from the short cache."""
        self._principals.forget(client_id)
        self._cache.drop(lambda key, value: key == f"c:{client_id}"
                         or (isinstance(value, KeyRecord) and value.client_id == client_id))

    async def _key(self, key_id: str) -> KeyRecord | None:
        return await self._cached(f"k:{key_id}", self.store.key, key_id, KeyRecord)

    async def _client(self, client_id: str) -> Client | None:
        return await self._cached(f"c:{client_id}", self.store.client, client_id, Client)

    async def _cached(self, cache_key: str, load: Callable[[str], Awaitable[T | None]], arg: str,
                      kind: type[T]) -> T | None:
        """A store read through the short cache. While the store is unreachable, a client seen in
        the last `stale_if_error_s` keeps being recognised (no revocation can be written during the
        outage either); anyone else gets a 503, never a guess."""
        cached = self._cache.get(cache_key)
        if cached is None:
            try:
                cached = await load(arg) or False
            except Exception as exc:  # whatever the store's driver raises, the answer is 503
                stale = self._cache.get(cache_key, max_age_s=self.stale_if_error_s)
                if stale is None:
                    raise StoreUnavailable(str(exc)) from exc
                return stale if isinstance(stale, kind) else None  # else False: known not to exist
            self._cache.put(cache_key, cached)
        return cached if isinstance(cached, kind) else None
