"""`parkgate probe` on every sandbox system: what conforms, and a deliberately broken answer caught.

The probe reads each system as the gateway would, through its dialect's adapter, and judges every
exchange by the dialect's standard (APDS: the OpenAPI document; DATEX II: the XML Schemas; Mews: the
reference pages' examples). Real simulators over real HTTP; the CLI as an operator runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from adapters.apds.simulator.state import REMOVE, VENDOR_IDS
from adapters.registry import DIALECTS
from gateway.probe import probe_system
from gateway.sandbox import SANDBOX_SYSTEMS, sandbox_config_document
from tests.support import REPO
from tests.support.bed import Bed


@pytest.mark.parametrize("system_id", sorted(SANDBOX_SYSTEMS))
async def test_every_sandbox_system_is_probed_and_conforms(bed: Bed, system_id: str) -> None:
    report = await probe_system(bed.sandbox.config, system_id)
    assert report.calls and all(call.exchanges for call in report.calls), report.lines()
    assert report.conforms, "\n".join(report.lines())
    dialect = DIALECTS[SANDBOX_SYSTEMS[system_id]]
    assert (report.standard is None) == (dialect.standard is None)
    for call in report.calls:  # timed, and each read returned what it read
        assert call.elapsed_ms > 0 and call.error is None, call


async def test_a_broken_apds_answer_is_caught_and_named(bed: Bed) -> None:
    place = VENDOR_IDS["hamburg-elbe"]
    state = bed.sandbox.simulators["parcs-central"].state  # type: ignore[attr-defined]
    state.raw_overrides[("places", place)] = {"timeZone": REMOVE}  # a Place must carry one
    try:
        report = await probe_system(bed.sandbox.config, "parcs-central")
    finally:
        state.raw_overrides.pop(("places", place))
    assert not report.conforms
    findings = [str(f) for call in report.calls for e in call.exchanges for f in e.findings]
    assert any("timeZone" in finding for finding in findings), findings
    assert any(e.request.url.path.endswith("/places") for c in report.calls for e in c.exchanges if e.findings)


async def test_a_broken_datex_document_is_caught(bed: Bed) -> None:
    platform = bed.sandbox.simulators["open-data"].platform  # type: ignore[attr-defined]
    platform.publish_verbatim("status", b"<?xml version='1.0'?><payload xmlns='urn:not-datex'/>")  # type: ignore[attr-defined]
    try:
        report = await probe_system(bed.sandbox.config, "open-data")
    finally:
        platform.publish_verbatim("status", None)  # type: ignore[attr-defined]
    assert not report.conforms, report.lines()


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The CLI in its own process (this test's event loop keeps serving the sandbox meanwhile)."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, cwd=REPO, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_the_cli_probes_a_configured_system_and_says_so_in_its_exit_status(bed: Bed, tmp_path: Path) -> None:
    document, environ = sandbox_config_document(bed.url, bed.sandbox.world)
    # the credentials the running simulators were made with, under the variables the document names
    for system_id, system in document["systems"].items():
        for name, reference in system.get("credentials", {}).items():
            environ[reference.strip("${}")] = bed.sandbox.config.systems[system_id].credentials[name]
    config = tmp_path / "parkgate.yaml"
    config.write_text(yaml.safe_dump(document))
    env = {**os.environ, **environ}
    status, out, err = await run_cli("probe", "--config", str(config), "--system", "hotel-pms", "--json", env=env)
    assert status == 0, out + err
    assert json.loads(out)["conforms"] is True
    state = bed.sandbox.simulators["parcs-central"].state  # type: ignore[attr-defined]
    place = VENDOR_IDS["hamburg-elbe"]
    state.raw_overrides[("places", place)] = {"timeZone": REMOVE}
    try:
        status, out, err = await run_cli("probe", "--config", str(config), "--system", "parcs-central", env=env)
    finally:
        state.raw_overrides.pop(("places", place))
    assert status == 1 and "DOES NOT CONFORM" in out and "timeZone" in out, out + err
    status, out, err = await run_cli("probe", "--config", str(config), "--system", "nowhere", env=env)
    assert status == 2 and "no system 'nowhere'" in err
