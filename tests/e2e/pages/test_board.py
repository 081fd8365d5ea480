"""The live occupancy board at /board, in headless Chromium: every facility the key may see, a car at
the gate on screen within 2 s, a vendor down shown as STALE, recovery after the gateway restarts, a
vendor's facility name shown as text, and nothing loaded from anywhere but the gateway."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from adapters.models import EventType
from adapters.simulated.world import GARAGES, World
from gateway.pages.security import CONTENT_SECURITY_POLICY
from gateway.sandbox import build_sandbox
from tests.support.bed import Bed
from tests.support.browser import PHONE, sign_in, tab
from tests.support.processes import deployment_config, start_gateway, wait_ready
from tests.support.servers import bound_socket, free_port, serve
from tests.support.waiting import first_event

FACILITIES = "{ facilities(first: 100) { edges { node { id name } } } }"
#: what the issue asks; the board shows the event, not the next periodic read (10 s away)
ON_SCREEN_S = 2.0
#: a name a vendor might send, meant to run as markup: it must be shown, not run
HOSTILE_NAME = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> Garage'


def card(facility_id: str) -> str:
    return f"article.card[data-facility-id='{facility_id}']"


async def test_the_board_shows_every_facility_the_key_may_see(bed: Bed, browser: Browser) -> None:
    answer = await bed.graphql(FACILITIES, client="enforcement-handheld")  # limited to three facilities
    expected = {edge["node"]["id"]: edge["node"]["name"] for edge in answer["data"]["facilities"]["edges"]}
    assert len(expected) == 3
    async with tab(browser, f"{bed.url}/board") as opened:
        response = await opened.page.request.get(f"{bed.url}/board")
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
        await sign_in(opened, bed.key("enforcement-handheld"))
        cards = opened.page.locator("article.card")
        await expect(cards).to_have_count(len(expected), timeout=10_000)
        for facility_id, name in expected.items():
            await expect(opened.page.locator(f"{card(facility_id)} [data-field=name]")).to_have_text(name)
        await expect(opened.page.locator("#connection")).to_have_text("live")
        # the key is in this tab's sessionStorage, never in the address
        assert await opened.page.evaluate("sessionStorage.getItem('parkgate.credential')") == bed.key("enforcement-handheld")
        assert bed.key("enforcement-handheld") not in opened.page.url
        assert not any(bed.key("enforcement-handheld") in url for url in opened.requests)
        assert opened.off_machine() == [] and opened.errors == []


async def test_an_oauth_token_opens_the_board_like_a_key(bed: Bed, browser: Browser) -> None:
    client_id = bed.sandbox.clients["dashboard"]["id"]
    issued = await bed.http.post(f"{bed.url}/oauth/token", auth=(client_id, bed.key("dashboard")),
                                 data={"grant_type": "client_credentials", "scope": "facilities:read occupancy:read"})
    token = issued.json()["access_token"]
    async with tab(browser, f"{bed.url}/board") as opened:
        await sign_in(opened, token)
        await expect(opened.page.locator("article.card")).to_have_count(6, timeout=10_000)
        await expect(opened.page.locator("#connection")).to_have_text("live")
        assert not any(token in url for url in opened.requests)


async def test_a_simulated_entry_is_on_screen_within_2_s(bed: Bed, browser: Browser) -> None:
    async with tab(browser, f"{bed.url}/board") as opened:
        await sign_in(opened, bed.key("dashboard"))
        counted = opened.page.locator(f"{card('berlin-hbf')} tr[data-part=counted] td:nth-child(3)")
        await expect(counted).not_to_have_text("", timeout=10_000)
        await expect(opened.page.locator("#connection")).to_have_text("live")
        await asyncio.sleep(0.5)  # the board's subscriptions are made once its first read is in
        events = bed.sandbox.runtime.bus.subscribe()
        try:
            started = time.monotonic()
            await bed.simulate("parcs-central", event="entry", facility_id="berlin-hbf", plate="B-BD 2026")
            event = await first_event(events, lambda e: e.type is EventType.OCCUPANCY_CHANGED
                                      and e.facility_id == "berlin-hbf" and e.zone_id is None and e.system_id == "parcs-central")
        finally:
            await events.aclose()
        left = ON_SCREEN_S - (time.monotonic() - started)
        await expect(counted).to_have_text(str(event.payload["occupied"]), timeout=max(left, 0.1) * 1000)


async def test_a_vendor_down_shows_as_stale(bed: Bed, browser: Browser) -> None:
    async with tab(browser, f"{bed.url}/board?refresh=2") as opened:
        await sign_in(opened, bed.key("dashboard"))
        badge = opened.page.locator(f"{card('berlin-hbf')} [data-field=freshness]")
        await expect(badge).to_have_text("LIVE", timeout=10_000)
        await bed.fault("guidance", "down")
        await expect(badge).to_have_text("STALE", timeout=15_000)
        sensed = opened.page.locator(f"{card('berlin-hbf')} [data-field=sensed-freshness]")
        await expect(sensed).to_have_text(re.compile(r"^(STALE|DOWN)"))
        await expect(opened.page.locator(f"{card('berlin-hbf')} .source[data-status=DOWN]")).to_have_text("guidance DOWN")
        await bed.fault("guidance", "ok")
        await expect(badge).to_have_text("LIVE", timeout=15_000)


@dataclass
class Restartable:
    """A gateway process over the bed's simulated vendors, keeping its clients in Redis (a key outlives
    a restart, as in production), that a test stops and starts on the same port."""

    config: Path
    env: dict[str, str]
    port: int
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process, _ = start_gateway(self.config, self.env, port=self.port)
        await wait_ready(self.url, self.process, timeout_s=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def cli(self, *args: str) -> dict[str, object]:
        result = subprocess.run([sys.executable, "-m", "gateway", *args, "--config", str(self.config)],
                                check=False, capture_output=True, text=True, env=self.env, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest_asyncio.fixture(loop_scope="session")
async def restartable(bed: Bed, redis_url: str, tmp_path: Path) -> AsyncIterator[Restartable]:
    config, env = deployment_config(bed, redis_url, tmp_path)
    gateway = Restartable(config, env, free_port())
    try:
        await gateway.start()
        yield gateway
    finally:
        gateway.stop()


async def test_the_board_recovers_after_the_gateway_restarts(bed: Bed, browser: Browser, restartable: Restartable) -> None:
    url = restartable.url
    key = str(restartable.cli("clients", "create", "--name", "wall-display", "--env", "test",
                              "--scope", "facilities:read", "--scope", "occupancy:read")["key"])
    async with tab(browser, f"{url}/board") as opened:
        await sign_in(opened, key)
        await expect(opened.page.locator("article.card")).to_have_count(6, timeout=10_000)
        connection = opened.page.locator("#connection")
        await expect(connection).to_have_text("live")

        restartable.stop()
        await expect(connection).to_have_text("reconnecting…", timeout=10_000)
        await restartable.start()
        await expect(connection).to_have_text("live", timeout=10_000)

        # a car at a PARCS without webhooks: the restarted gateway's poller notices it, the board shows it
        query = '{ facility(id: "london-kings-cross") { occupancy { counted { occupied } } } }'
        async with httpx.AsyncClient() as http:
            before = await http.post(f"{url}/graphql", headers={"authorization": f"Bearer {key}"}, json={"query": query})
        occupied = before.json()["data"]["facility"]["occupancy"]["counted"]["occupied"]
        await bed.simulate("parcs-london", event="entry", facility_id="london-kings-cross", plate="B-RS 1")
        london = opened.page.locator(f"{card('london-kings-cross')} tr[data-part=counted] td:nth-child(3)")
        await expect(london).not_to_have_text(str(occupied), timeout=5_000)
        assert opened.off_machine() == []


@pytest_asyncio.fixture(loop_scope="session")
async def hostile_sandbox() -> AsyncIterator[tuple[str, dict[str, dict[str, str]]]]:
    """A sandbox whose Berlin garage's vendors call it by a name made of markup."""
    garages = tuple(replace(g, name=HOSTILE_NAME) if g.key == "berlin-hbf" else g for g in GARAGES)
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app, sandbox = build_sandbox(url, world=World(garages=garages), polling=False)
    async with serve(app, sock):
        yield url, sandbox.clients


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
async def test_a_facility_name_made_of_markup_is_shown_as_text(hostile_sandbox: tuple[str, dict[str, dict[str, str]]],
                                                               browser: Browser, viewport: dict[str, int] | None) -> None:
    url, clients = hostile_sandbox
    async with tab(browser, f"{url}/board", **({"viewport": viewport} if viewport else {})) as opened:
        await sign_in(opened, clients["dashboard"]["key"])
        name = opened.page.locator(f"{card('berlin-hbf')} [data-field=name]")
        await expect(name).to_have_text(HOSTILE_NAME, timeout=10_000)
        assert await opened.page.locator(f"{card('berlin-hbf')} script, {card('berlin-hbf')} img").count() == 0
        assert await opened.page.evaluate("window.pwned === undefined")
        assert opened.off_machine() == []
