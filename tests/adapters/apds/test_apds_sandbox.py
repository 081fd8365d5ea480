"""The sandbox's APDS PARCS as partners and operators meet it: listed as an APDS platform, its
root and token as the APDS README has them, its deliveries conforming."""

from __future__ import annotations

import httpx
import orjson

from adapters.apds.conformance import check_delivery, check_response
from tests.support.bed import Bed
from tests.support.waiting import wait_until


async def test_it_is_listed_with_its_standard_and_the_root_the_apds_paths_hang_from(bed: Bed) -> None:
    systems = {s["id"]: s for s in (await bed.http.get(f"{bed.url}/sandbox/systems")).json()["systems"]}
    apds = systems["parcs-central"]
    assert apds["standard"] == {"name": "APDS", "version": "v4 (API 1.0)"}
    assert apds["base_url"] == f"{bed.url}/sim/parcs-central/apds/v1"
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{apds['base_url']}/places", headers={"X-MCC-Access-Token": apds["credentials"]["token"]})
        refused = await http.get(f"{apds['base_url']}/places", headers={"authorization": f"Token {apds['credentials']['token']}"})
    assert answer.status_code == 200 and check_response("GET", "/places", 200, body=answer.content) == []
    assert refused.status_code == 401


async def test_what_it_delivers_to_the_gateway_conforms(bed: Bed) -> None:
    sent = bed.sandbox.simulators["parcs-central"].webhooks  # type: ignore[attr-defined]
    before = len(sent.sent)
    await bed.simulate("parcs-central", event="entry", facility_id="berlin-mitte", plate="B-CF 1")
    await bed.simulate("parcs-central", event="exit", facility_id="berlin-mitte", plate="B-CF 1")
    await wait_until(lambda: len(sent.sent) >= before + 4)
    topics = [orjson.loads(raw)["topic"] for raw in sent.sent[before:]]
    assert topics == ["SessionCreated", "PlaceUpdated", "SessionUpdated", "PlaceUpdated"]
    assert [f for raw in sent.sent for f in check_delivery(raw)] == []
