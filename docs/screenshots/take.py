"""Take the README's screenshots of the board and the console, at desktop and phone widths.

Run it from the directory holding the sandbox's keys.json, with the sandbox running for a while
(the board's curves fill as the day's figures arrive) and GW set to where it listens:

    GW=http://127.0.0.1:8000 .venv/bin/python docs/screenshots/take.py

It signs in as the dashboard and admin demo clients, makes the throttled demo client run into its
quota first (so the console has a 429 to show), and writes board-*.png and console-*.png here.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx

from tests.support.browser import DESKTOP, PHONE, chromium, sign_in, tab

HERE = Path(__file__).parent


async def main() -> None:
    gw = os.environ.get("GW", "http://127.0.0.1:8000")
    keys = {name: info["key"] for name, info in json.loads(Path("keys.json").read_text()).items()}
    async with httpx.AsyncClient() as http:
        for _ in range(35):  # the throttled demo client's plan allows 30 a minute
            await http.post(f"{gw}/graphql", json={"query": "{ facilities { totalCount } }"},
                            headers={"authorization": f"Bearer {keys['throttled-demo']}"})
    async with chromium() as browser:
        for page_name, client, path in (("board", "dashboard", "/board"), ("console", "admin", "/admin")):
            for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                async with tab(browser, gw + path, viewport=viewport) as opened:
                    await sign_in(opened, keys[client])
                    await opened.page.wait_for_timeout(4000)
                    await opened.page.screenshot(path=str(HERE / f"{page_name}-{width_name}.png"), full_page=width_name == "desktop")


if __name__ == "__main__":
    asyncio.run(main())
