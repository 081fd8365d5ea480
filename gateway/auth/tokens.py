"""Short-lived signed access tokens (JWT, ES256) for the OAuth2 client credentials grant.

    header  {"alg": "ES256", "kid": "<signing key id>", "typ": "JWT"}
    claims  {"iss": "parkgate", "sub": "<client id>", "aud": "parkgate", "iat": ..., "nbf": ...,
             "exp": iat + lifetime, "jti": "<random>", "scope": "<sorted, space-separated>",
             "env": "test" | "live"}

Signing keys are EC P-256 private JWKs kept in the `ClientStore` (newest first), so every
replica signs and verifies with the same keys. The newest key signs; it is replaced when older
than `rotate_after_s` (or on `rotate()`); older keys stay for verification until no token
they signed can still be valid, then are dropped. Each replica caches the keyset and reloads
it when a token names an unknown `kid` — at most once per `MISS_RELOAD_INTERVAL_S`, so a
flood of made-up kids cannot turn into a flood of store reads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey

from gateway.auth.clients import Client, ClientStore

log = logging.getLogger(__name__)

ALGORITHM = "ES256"
CURVE = "P-256"
AUDIENCE = "parkgate"
#: clock skew tolerated between the issuer and the verifier, in seconds
CLOCK_SKEW_S = 30
#: extra time a retired signing key is kept beyond the last moment it could still be needed
RETIRE_MARGIN_S = 300
#: minimum time between keyset reloads caused by an unknown kid
MISS_RELOAD_INTERVAL_S = 5.0
#: how long a replica trusts its cached keyset for signing and for publishing the JWKS
REFRESH_S = 60.0
#: longer than any token we issue (a P-256 JWT is ~500 bytes); anything bigger is junk
MAX_TOKEN_LENGTH = 4096
ALLOWED_HEADER = frozenset({"alg", "kid", "typ"})


class TokenError(Exception):
    """A token that is not acceptable; the message says why (safe to show the caller)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _SigningKey:
    __slots__ = ("created_at", "key", "kid", "record")

    def __init__(self, kid: str, key: ECKey, created_at: float, record: dict[str, Any]) -> None:
        self.kid = kid
        self.key = key
        self.created_at = created_at  # POSIX seconds
        self.record = record


def _b64_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class TokenService:
    def __init__(
        self,
        store: ClientStore,
        *,
        issuer: str = "parkgate",
        lifetime_s: int = 900,
        rotate_after_s: int = 7 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lifetime_s <= 0 or rotate_after_s <= 0:
            raise ValueError("lifetime_s and rotate_after_s must be positive")
        self.store = store
        self.issuer = issuer
        self.lifetime_s = lifetime_s
        self.rotate_after_s = rotate_after_s
        self.clock = clock
        self._keys: list[_SigningKey] = []  # newest first
        self._by_kid: dict[str, _SigningKey] = {}
        self._loaded_at: float | None = None  # monotonic
        self._last_miss_reload: float | None = None  # monotonic
        self._lock = asyncio.Lock()

    # --- the keyset ---------------------------------------------------------------------

    @staticmethod
    def _import(record: dict[str, Any]) -> _SigningKey | None:
        try:
            jwk = {k: v for k, v in record.items() if k != "created_at"}
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                raise ValueError("signing key without a kid")
            key = ECKey.import_key(jwk)
            if key.curve_name != CURVE or not key.is_private:
                raise ValueError("signing key is not a private P-256 key")
            created = datetime.fromisoformat(record["created_at"])
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            return _SigningKey(kid, key, created.timestamp(), record)
        except Exception:  # a broken entry must not take token verification down with it
            log.warning("ignoring an unreadable token signing key %r", record.get("kid"), exc_info=True)
            return None

    async def _load(self) -> None:
        records = await self.store.signing_keys()
        keys = [k for k in (self._import(r) for r in records) if k is not None]
        keys.sort(key=lambda k: k.created_at, reverse=True)
        self._keys = keys
        self._by_kid = {k.kid: k for k in keys}
        self._loaded_at = time.monotonic()

    def _stale(self, max_age_s: float) -> bool:
        return self._loaded_at is None or time.monotonic() - self._loaded_at >= max_age_s

    def _fresh(self, key: _SigningKey) -> bool:
        return self.clock() - key.created_at < self.rotate_after_s

    def _retention_s(self) -> float:
        # a key signs for at most rotate_after_s; its last token is valid lifetime_s (+ skew) more
        return self.rotate_after_s + self.lifetime_s + CLOCK_SKEW_S + RETIRE_MARGIN_S

    async def _add_key(self, force: bool) -> _SigningKey:
        """Prepend a new key to the store's list (unless another replica just did); under _lock."""
        for _ in range(3):
            await self._load()
            if not force and self._keys and self._fresh(self._keys[0]):
                return self._keys[0]  # another replica rotated already
            now = self.clock()
            kid = f"{datetime.fromtimestamp(now, UTC):%Y%m%d}-{secrets.token_urlsafe(9)}"
            key = ECKey.generate_key(CURVE, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
            record = {**key.as_dict(private=True), "created_at": datetime.fromtimestamp(now, UTC).isoformat()}
            keep = [k.record for k in self._keys if now - k.created_at < self._retention_s()]
            await self.store.save_signing_keys([record, *keep])
            await self._load()
            if kid in self._by_kid:
                return self._by_kid[kid]
            # lost a race with another replica's write: its key is new, so take it next round
            force = False
        raise RuntimeError("could not save a new token signing key")

    async def current_key(self) -> ECKey:
        """The key that signs now: the newest, after creating one if none is fresh."""
        if self._keys and self._fresh(self._keys[0]) and not self._stale(REFRESH_S):
            return self._keys[0].key
        async with self._lock:
            if self._stale(REFRESH_S) or not self._keys or not self._fresh(self._keys[0]):
                await self._load()  # another replica may have rotated meanwhile
            if self._keys and self._fresh(self._keys[0]):
                return self._keys[0].key
            return (await self._add_key(force=False)).key

    async def rotate(self) -> str:
        """Start signing with a new key now; the previous ones keep verifying. Returns its kid."""
        async with self._lock:
            return (await self._add_key(force=True)).kid

    async def jwks(self) -> dict[str, Any]:
        """The public keys, for `GET /.well-known/jwks.json`."""
        await self.current_key()
        if self._stale(MISS_RELOAD_INTERVAL_S):
            async with self._lock:
                if self._stale(MISS_RELOAD_INTERVAL_S):
                    await self._load()
        return {"keys": [k.key.as_dict(private=False) for k in self._keys]}

    async def _verification_key(self, kid: str) -> ECKey | None:
        found = self._by_kid.get(kid)
        if found is not None:
            return found.key
        async with self._lock:
            found = self._by_kid.get(kid)  # loaded by a concurrent call meanwhile
            if found is not None:
                return found.key
            if self._loaded_at is None:
                await self._load()
            else:
                now = time.monotonic()
                if self._last_miss_reload is not None and now - self._last_miss_reload < MISS_RELOAD_INTERVAL_S:
                    return None
                self._last_miss_reload = now
                await self._load()
            found = self._by_kid.get(kid)
            return found.key if found is not None else None

    # --- tokens -------------------------------------------------------------------------

    async def issue(self, client: Client, scopes: frozenset[str]) -> tuple[str, int]:
        """A signed access token for `client` with `scopes`, and its lifetime in seconds."""
        key = await self.current_key()
        now = int(self.clock())
        claims = {
            "iss": self.issuer,
            "sub": client.id,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_s,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(sorted(scopes)),
            "env": client.environment.value,
        }
        header = {"alg": ALGORITHM, "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM]), self.lifetime_s

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims when it is ours, intact and current; TokenError otherwise."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise TokenError("malformed token")
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise TokenError("malformed token")
        try:
            header = _b64_json(parts[0])
        except (ValueError, binascii.Error, RecursionError):
            raise TokenError("malformed token") from None
        if not isinstance(header, dict):
            raise TokenError("malformed token")
        if header.get("alg") != ALGORITHM:
            raise TokenError(f"unsupported algorithm; only {ALGORITHM} is accepted")
        if not ALLOWED_HEADER.issuperset(header) or header.get("typ", "JWT") != "JWT":
            raise TokenError("unsupported token header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise TokenError("token has no valid key id")
        key = await self._verification_key(kid)
        if key is None:
            raise TokenError("unknown signing key")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
        except BadSignatureError:
            raise TokenError("bad signature") from None
        except (JoseError, ValueError, TypeError, RecursionError):
            raise TokenError("malformed token") from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        for name in ("iat", "nbf", "exp"):
            if not _is_int(claims.get(name)):
                raise TokenError(f"token has no valid {name!r} claim")
        for name in ("sub", "jti", "scope", "env"):
            if not isinstance(claims.get(name), str):
                raise TokenError(f"token has no valid {name!r} claim")
        if claims.get("iss") != self.issuer:
            raise TokenError("token has the wrong issuer")
        if claims.get("aud") != AUDIENCE:
            raise TokenError("token has the wrong audience")
        now = self.clock()
        if now >= claims["exp"] + CLOCK_SKEW_S:
            raise TokenError("token expired")
        if now + CLOCK_SKEW_S < claims["nbf"]:
            raise TokenError("token not yet valid")
        if now + CLOCK_SKEW_S < claims["iat"]:
            raise TokenError("token issued in the future")
