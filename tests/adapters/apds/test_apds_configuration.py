"""The configuration docs/configuration.md shows an operator for an APDS PARCS loads, and gives
an adapter that calls the APDS root with the APDS token header and subscribes where it says."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from adapters.apds import ApdsAdapter
from gateway.config import parse_config
from gateway.runtime import Runtime

DOC = Path(__file__).parents[3] / "docs" / "configuration.md"


def documented() -> dict:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Pointing parkgate at an APDS PARCS", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "docs/configuration.md shows the YAML an operator writes for an APDS PARCS"
    return yaml.safe_load(block.group(1))


def test_the_documented_apds_configuration_loads_and_means_what_it_says() -> None:
    config = parse_config(documented(), environ={"PARCS_MAIN_TOKEN": "t-123", "PARCS_MAIN_WEBHOOKS": "s-456"})
    adapter = Runtime.from_config(config).systems.adapter("parcs-main")
    assert isinstance(adapter, ApdsAdapter)
    assert adapter._headers == {"X-MCC-Access-Token": "t-123"}
    assert str(adapter.http._url("/places")) == "https://parcs.example.com/apds/v1/places"
    assert adapter._webhook_url == "https://parkgate.example.com/webhooks/parcs-main" and adapter._page_size == 100
    assert config.facilities["central-station"].systems == {"parcs-main": "3f1c9a52-8a56-4d5e-9a8b-2b4f0d7c1e10"}
