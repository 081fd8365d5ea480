"""A test bed of a test's own: the sandbox on its own loopback port, built with options the shared
`bed` (tests/conftest.py) does not have (subgraph mode, other request limits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from gateway.sandbox import build_sandbox
from tests.support.bed import TEST_BREAKER_RESET_S, TEST_OCCUPANCY_TTL_S, TEST_TIMEOUT_S, Bed
from tests.support.servers import bound_socket, serve


@asynccontextmanager
async def own_bed(**options: Any) -> AsyncIterator[Bed]:
    """The sandbox as the shared bed builds it (short vendor timeouts, no polling), `options` for
    `build_sandbox` on top."""
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, **{"timeout_s": TEST_TIMEOUT_S, "breaker_reset_s": TEST_BREAKER_RESET_S,
                                         "cache_ttl_s": {"occupancy": TEST_OCCUPANCY_TTL_S}, "polling": False,
                                         **options})
    async with serve(app, sock), httpx.AsyncClient(timeout=60) as http:
        assert sandbox.clients, "the sandbox seeds its demo clients at startup"
        headers = {"authorization": f"Bearer {sandbox.clients['admin']['key']}"}
        async with httpx.AsyncClient(timeout=60, headers=headers) as api:
            yield Bed(url, sandbox, http, api, app)
