"""A second test bed: the sandbox in subgraph mode (`parkgate sandbox --subgraph`), on its own
loopback port, for the Federation tests (tests/resolvers/test_subgraph.py, tests/e2e/test_federation.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.support.bed import Bed
from tests.support.own_bed import own_bed


@asynccontextmanager
async def subgraph_bed(*, scopes: bool = True) -> AsyncIterator[Bed]:
    """The sandbox as a subgraph; `scopes=False`: its SDL without `@requiresScopes` (`server.subgraph_scopes`)."""
    async with own_bed(subgraph=True, subgraph_scopes=scopes) as bed:
        yield bed
