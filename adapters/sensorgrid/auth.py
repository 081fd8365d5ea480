"""The sensor grid's OAuth2 client-credentials flow, seen from our side.

One `BearerTokens` per adapter: it caches the access token, renews it shortly before the
vendor says it expires, and makes sure that any number of concurrent callers needing a new
token cause exactly one token request (a shared in-flight fetch), whether it succeeds or fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from adapters.errors import UpstreamError
from adapters.http import VendorHTTP

TOKEN_PATH = "/oauth/token"
#: renew this long before expiry, at most; short-lived tokens renew at 90 % of their life
MAX_REFRESH_MARGIN_S = 30.0


class BearerTokens:
    def __init__(
        self,
        http: VendorHTTP,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._basic = (client_id, client_secret)
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._inflight: asyncio.Future[str] | None = None

    async def token(self) -> str:
        """A token we believe valid: the cached one, or a fresh one."""
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        return await self._fetch_shared()

    async def refresh(self, rejected: str) -> str:
        """A new token after the vendor rejected `rejected` (revoked or expired early on its side).

        Callers that were all rejected with the same token share one renewal; a caller whose
        rejected token was already replaced just gets the replacement.
        """
        if self._token is not None and self._token != rejected and self._clock() < self._renew_at:
            return self._token
        if self._token == rejected:
            self._token = None
        return await self._fetch_shared()

    async def _fetch_shared(self) -> str:
        # No await between the check and the assignment, so there is only ever one fetch.
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._fetch())
            self._inflight.add_done_callback(self._fetch_done)
        # shield: one caller giving up (timeout, cancellation) must not cancel it for the others
        return await asyncio.shield(self._inflight)

    def _fetch_done(self, future: asyncio.Future[str]) -> None:
        self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved here, so an unawaited failure is not logged as lost

    async def _fetch(self) -> str:
        sent_at = self._clock()
        response = await self._http.request(
            "POST", TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=self._basic
        )
        if response.status_code in (401, 403):
            raise UpstreamError(self._http.system_id, "the system refused our client credentials")
        body = self._http.json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise UpstreamError(self._http.system_id, "the token response has no access_token")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
            raise UpstreamError(self._http.system_id, "the token response has no usable expires_in")
        # Count from when we asked, not when the answer came: the vendor's clock started earlier.
        self._token = token
        self._renew_at = sent_at + expires_in - min(MAX_REFRESH_MARGIN_S, expires_in * 0.1)
        return token
