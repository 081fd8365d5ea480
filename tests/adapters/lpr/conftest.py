"""The LPR simulator that the LPR adapter's tests talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.lpr.simulator import LprSimulator, create_simulator
from adapters.simulated.world import World
from tests.support.servers import serve
from tests.support.vendors import LPR_CREDENTIALS


@pytest.fixture
async def sim() -> AsyncIterator[tuple[LprSimulator, str]]:
    """An LPR simulator served on loopback, and its URL."""
    simulator = create_simulator(World(), "enforcement", LPR_CREDENTIALS)
    simulator.state.live = False  # no new (handheld) citations mid-test: counts stay exact
    async with serve(simulator.app) as url:
        yield simulator, url
