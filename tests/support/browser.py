"""Pages as a person sees them: Debian's headless Chromium driven by Playwright (no browser download:
Playwright launches the system's `chromium`), with every name but 127.0.0.1 unresolvable, and every
request the page makes recorded so a test can prove none left the machine."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright

CHROMIUM_MISSING = ("chromium not found on PATH: the browser tests drive Debian's headless Chromium — install it "
                    "(Debian/Ubuntu: apt-get install chromium; .ci/run installs it when absent). No other browser is "
                    "downloaded.")
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
    # the network is the machine: any other name fails to resolve, so nothing can load from elsewhere
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = chromium_path()
    playwright: Playwright
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """One page in a fresh browser context (its own sessionStorage), and what it did."""

    page: Page
    #: every URL the page asked for, and the WebSockets it opened
    requests: list[str] = field(default_factory=list)
    #: console errors and uncaught exceptions (a Content-Security-Policy violation is one)
    errors: list[str] = field(default_factory=list)

    def off_machine(self) -> list[str]:
        return [url for url in self.requests
                if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).hostname != "127.0.0.1"]


@asynccontextmanager
async def tab(browser: Browser, url: str, *, viewport: dict[str, int] = DESKTOP) -> AsyncIterator[Tab]:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    opened = Tab(page)
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("websocket", lambda socket: opened.requests.append(socket.url))
    page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    try:
        await page.goto(url)
        yield opened
    finally:
        await context.close()


async def sign_in(opened: Tab, credential: str) -> None:
    """Type the key into the page's sign-in form, as a person does."""
    await opened.page.fill("input[name=credential]", credential)
    await opened.page.click("form#sign-in button[type=submit]")
