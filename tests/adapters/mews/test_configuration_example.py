"""The YAML docs/configuration.md gives an operator for a hotel on Mews: it loads as written, and
the adapter it configures reads that hotel from a Connector API (the simulator, over HTTP)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from adapters.mews import MewsAdapter
from adapters.mews.simulator import VENDOR_IDS, create_simulator
from adapters.models import SystemKind
from adapters.simulated.world import World
from gateway.config import GatewayConfig, parse_config
from tests.support.servers import serve

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
TOKENS = {"MEWS_CLIENT_TOKEN": "client-token", "MEWS_ACCESS_TOKEN": "access-token", "MEWS_WEBHOOK_TOKEN": "hook"}


def documented() -> Any:
    text = DOC.read_text(encoding="utf-8")
    assert "## A hotel on Mews" in text, "docs/configuration.md lost its Mews section"
    match = re.search(r"```yaml\n(.*?)```", text[text.index("## A hotel on Mews"):], re.S)
    assert match, "docs/configuration.md: the Mews section has no yaml block"
    return yaml.safe_load(match[1])


def config() -> GatewayConfig:
    return parse_config(documented(), source="docs/configuration.md", environ=TOKENS)


def test_the_documented_yaml_loads() -> None:
    loaded = config()
    system = loaded.systems["hotel-pms"]
    assert (system.dialect, system.base_url) == ("mews", "https://api.mews.com")
    assert system.spec("hotel-pms").kind is SystemKind.HOSPITALITY
    assert system.credentials == {"client_token": "client-token", "access_token": "access-token", "webhook_token": "hook"}
    assert loaded.facilities["berlin-spree-hotel"].systems["hotel-pms"] == VENDOR_IDS["berlin-spree-hotel"]


async def test_the_configured_adapter_reads_the_hotel() -> None:
    simulator = create_simulator(World(), "hotel-pms", {"client_token": "client-token", "access_token": "access-token"})
    simulator.state.live = False
    async with serve(simulator.app) as url:
        mews = MewsAdapter(replace(config().systems["hotel-pms"].spec("hotel-pms"), base_url=url))
        try:
            hotels = await mews.properties()
            now = datetime.now(UTC)
            stays = await mews.stays(now - timedelta(days=1), now + timedelta(days=1))
        finally:
            await mews.aclose()
    berlin = VENDOR_IDS["berlin-spree-hotel"]
    assert [h.vendor_id for h in hotels.items] == [berlin]  # options.enterprise_ids: one hotel of the portfolio
    assert stays.errors == [] and stays.items and {s.property_id for s in stays.items} == {berlin}
    sent = [orjson.loads(r.body) for r in simulator.control.recent]
    assert {body["Client"] for body in sent} == {"ACME Parking 1.0"}  # options.client
