"""The admin console at /admin, in headless Chromium, through the admin GraphQL operations only: an
admin lowers a client's plan and watches its 429s appear; creates a client, sees its key once, revokes
it, and the key stops working; a key without the admin scope is turned away."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest_asyncio
from playwright.async_api import Browser, expect

from tests.support.bed import Bed
from tests.support.browser import sign_in, tab

PROBE = "{ facilities { totalCount } }"


@pytest_asyncio.fixture(loop_scope="session")
async def admin_key(bed: Bed) -> str:
    """An admin of the test's own: the console re-reads every second, and its cost must not come out of
    the quota the other tests' shared `admin` demo client spends."""
    _, key = await bed.new_client(["admin", "facilities:read"], name=f"console-{uuid.uuid4().hex[:6]}")
    return key


def row(client_id: str) -> str:
    return f"#clients tr[data-client-id='{client_id}']"


async def status_of(bed: Bed, key: str) -> int:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{bed.url}/graphql", json={"query": PROBE}, headers={"authorization": f"Bearer {key}"})
    return response.status_code


async def test_lowering_a_plan_throttles_the_client_and_the_console_shows_it(bed: Bed, browser: Browser, admin_key: str) -> None:
    name = f"kiosk-{uuid.uuid4().hex[:6]}"
    client_id, key = await bed.new_client(["facilities:read"], name=name)
    async with tab(browser, f"{bed.url}/admin?refresh=1") as opened:
        page = opened.page
        await sign_in(opened, admin_key)
        await expect(page.locator(f"{row(client_id)} [data-field=name]")).to_have_text(name, timeout=10_000)
        await expect(page.locator(f"{row(client_id)} [data-field=requests]")).to_contain_text("/ 600")

        await page.select_option(f"{row(client_id)} select[data-action=plan]", "throttled")  # 30 requests a minute
        await page.locator("h1").click()  # done choosing: the rows are re-read
        await expect(page.locator(f"{row(client_id)} [data-field=requests]")).to_contain_text("/ 30", timeout=10_000)
        statuses = [await status_of(bed, key) for _ in range(31)]
        assert statuses.count(429) >= 1 and statuses[0] == 200

        await expect(page.locator(f"{row(client_id)} [data-field=throttled]")).to_be_visible(timeout=10_000)
        throttle = page.locator(f"#throttles tr[data-client-id='{client_id}']").first
        await expect(throttle).to_contain_text(name)
        await expect(throttle).to_contain_text("requests")
        await expect(page.locator(f"{row(client_id)} [data-field=requests]")).to_contain_text("30 / 30")
        audit = await bed.graphql('query($id: ID!) { auditLog(first: 5, clientId: $id) { action after } }', {"id": client_id})
        assert any(e["action"] == "client.update" and e["after"]["plan"] == "throttled" for e in audit["data"]["auditLog"])
        assert opened.off_machine() == [] and opened.errors == []


async def test_a_key_made_and_revoked_in_the_console_stops_working(bed: Bed, browser: Browser, admin_key: str) -> None:
    name = f"partner-{uuid.uuid4().hex[:6]}"
    async with tab(browser, f"{bed.url}/admin?refresh=1") as opened:
        page = opened.page
        await sign_in(opened, admin_key)
        await page.fill("#create input[name=name]", name)
        await page.check("#create input[name=scope][value='facilities:read']")
        await page.click("#create button[type=submit]")
        shown = page.locator("#new-key [data-field=key]")
        await expect(shown).to_have_text(re.compile(r"^pk_test_"), timeout=10_000)
        key = await shown.text_content()
        assert key is not None and await status_of(bed, key) == 200
        board = await opened.page.context.new_page()  # a wall display signed in with the new key
        await board.goto(f"{bed.url}/board")
        await board.fill("input[name=credential]", key)
        await board.click("form#sign-in button[type=submit]")
        await expect(board.locator("#connection")).to_have_text("live", timeout=10_000)
        await page.click("#new-key [data-action=dismiss]")  # shown once: gone from the page
        await expect(shown).to_have_text("")

        clients = (await bed.graphql("{ clients { id name } }"))["data"]["clients"]
        [client_id] = [c["id"] for c in clients if c["name"] == name]
        revoke = page.locator(f"{row(client_id)} button[data-action=revoke]")
        await revoke.click()
        await expect(revoke).to_have_text("Confirm revoke")
        await revoke.click()
        await expect(page.locator(row(client_id))).to_have_attribute("data-status", "REVOKED", timeout=10_000)
        assert await status_of(bed, key) == 401
        # the board's open subscription is re-checked within seconds and closed: it asks for a key again
        await expect(board.locator("#sign-in [data-role=notice]")).to_contain_text("refused", timeout=15_000)
        assert opened.off_machine() == [] and not any(key in url for url in opened.requests)


async def test_a_key_without_the_admin_scope_is_turned_away(bed: Bed, browser: Browser) -> None:
    async with tab(browser, f"{bed.url}/admin") as opened:
        await sign_in(opened, bed.key("dashboard"))
        await expect(opened.page.locator("#sign-in [data-role=notice]")).to_contain_text("lacks the admin scope", timeout=10_000)
        await expect(opened.page.locator("#console")).to_be_hidden()
