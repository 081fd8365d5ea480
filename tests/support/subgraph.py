"""A second test bed: the sandbox in subgraph mode (`parkgate sandbox --subgraph`), on its own
loopback port, for the Federation tests (tests/resolvers/test_subgraph.py, tests/e2e/test_federation.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from gateway.sandbox import build_sandbox
from tests.support.bed import TEST_BREAKER_RESET_S, TEST_OCCUPANCY_TTL_S, TEST_TIMEOUT_S, Bed
from tests.support.servers import bound_socket, serve


@asynccontextmanager
async def subgraph_bed(*, scopes: bool = True) -> AsyncIterator[Bed]:
    """The sandbox as a subgraph; `scopes=False`: its SDL without `@requiresScopes` (`server.subgraph_scopes`)."""
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, timeout_s=TEST_TIMEOUT_S, breaker_reset_s=TEST_BREAKER_RESET_S,
                                 cache_ttl_s={"occupancy": TEST_OCCUPANCY_TTL_S}, polling=False, subgraph=True,
                                 subgraph_scopes=scopes)
    async with serve(app, sock), httpx.AsyncClient(timeout=60) as http:
        assert sandbox.clients, "the sandbox seeds its demo clients at startup"
        headers = {"authorization": f"Bearer {sandbox.clients['admin']['key']}"}
        async with httpx.AsyncClient(timeout=60, headers=headers) as api:
            yield Bed(url, sandbox, http, api, app)
