"""The HTTP hop every adapter makes: one pooled httpx client per system, errors mapped once.

Adapters call `VendorHTTP.request`; whatever goes wrong on the wire comes back as one of the
three upstream errors, so no adapter handles httpx exceptions itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from adapters.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable

UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class VendorHTTP:
    def __init__(
        self,
        system_id: str,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        max_connections: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.system_id = system_id
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
            follow_redirects=False,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; return the response for 2xx and 401/403, raise an upstream error otherwise.

        401/403 are returned so that adapters with expiring tokens can refresh and retry.
        """
        content = orjson.dumps(json) if json is not None else None
        hdrs = dict(headers or {})
        if content is not None:
            hdrs["content-type"] = "application/json"
        try:
            response = await self._client.request(
                method, path, params=params, content=content, data=data, headers=hdrs, auth=auth or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(self.system_id, f"no answer to {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(self.system_id, f"cannot reach the system ({type(exc).__name__})") from exc
        status = response.status_code
        if status < 300 or status in (401, 403):
            return response
        if status in UNAVAILABLE_STATUSES:
            raise UpstreamUnavailable(self.system_id, f"the system answered {status} to {method} {path}")
        if status >= 500:
            raise UpstreamError(self.system_id, f"the system failed with {status} on {method} {path}")
        raise UpstreamRejected(self.system_id, f"the system refused {method} {path} with {status}", status)

    def json(self, response: httpx.Response) -> Any:
        """The response body as JSON, or an upstream error naming what was wrong."""
        if response.status_code in (401, 403):
            raise UpstreamError(self.system_id, f"the system rejected our credentials ({response.status_code})")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(self.system_id, "the system answered with malformed JSON") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
