"""The sandbox's hotel PMS as partners find it: `GET /sandbox/systems` names the standard, and its
`base_url` is the PlatformAddress the Connector API's paths hang from."""

from __future__ import annotations

from tests.support.bed import Bed


async def test_the_sandbox_lists_a_mews_connector_platform(bed: Bed) -> None:
    systems = (await bed.http.get(f"{bed.url}/sandbox/systems")).json()["systems"]
    [pms] = [s for s in systems if s["id"] == "hotel-pms"]
    assert pms["standard"] == {"name": "Mews Connector", "version": "v1"}
    assert pms["base_url"] == f"{bed.url}/sim/hotel-pms"
    credentials = pms["credentials"]
    answer = await bed.http.post(f"{pms['base_url']}/api/connector/v1/enterprises/getAll", json={
        "ClientToken": credentials["client_token"], "AccessToken": credentials["access_token"],
        "Client": "parkgate tests 1.0", "Limitation": {"Count": 10}})
    assert answer.status_code == 200
    assert {e["Name"] for e in answer.json()["Enterprises"]} == {"Spree Hotel Berlin", "Thames Hotel London"}
