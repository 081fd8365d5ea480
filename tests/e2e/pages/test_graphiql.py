"""GraphiQL at /graphql runs from the package alone: with every name but 127.0.0.1 unresolvable it
loads, runs a query and a subscription, and asks nothing of any other host; its page carries the
strict policy and, in the sandbox, a demo key in its Headers tab."""

from __future__ import annotations

import json

from playwright.async_api import Browser, Page, expect

from gateway.pages.security import CONTENT_SECURITY_POLICY
from tests.support.bed import Bed
from tests.support.browser import tab

SUBSCRIPTION = 'subscription Watch { occupancyChanged(facilityId: "berlin-hbf") { facilityId source occupied } }'
RESULT = ".graphiql-response"


async def set_editor(page: Page, selector: str, text: str) -> None:
    """Replace an editor's text through CodeMirror's own API (typing would meet its bracket auto-closing)."""
    await page.evaluate("([selector, text]) => document.querySelector(selector + ' .CodeMirror').CodeMirror.setValue(text)",
                        [selector, text])


async def test_graphiql_runs_a_query_and_a_subscription_offline(bed: Bed, browser: Browser) -> None:
    async with tab(browser, f"{bed.url}/graphql") as opened:
        page = opened.page
        response = await page.request.get(f"{bed.url}/graphql", headers={"accept": "text/html"})
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        execute = page.locator(".graphiql-execute-button")
        await expect(execute).to_be_visible(timeout=15_000)
        # the sandbox fills the Headers tab with the driver app's demo key: the first query runs as it is
        headers = await page.evaluate("document.getElementById('graphiql').dataset.headers")
        assert json.loads(headers) == {"Authorization": f"Bearer {bed.key('driver-app')}"}

        await execute.click()
        await expect(page.locator(RESULT)).to_contain_text('"totalCount": 6', timeout=10_000)
        await expect(page.locator(RESULT)).to_contain_text("Hauptbahnhof Garage")

        await set_editor(page, ".graphiql-query-editor", SUBSCRIPTION)
        await page.wait_for_timeout(500)  # GraphiQL reads the operation's name from the editor a moment after a change
        await execute.click()
        await page.wait_for_timeout(1000)  # subscribed over the WebSocket before the car comes
        await bed.simulate("parcs-central", event="entry", facility_id="berlin-hbf", plate="B-GQ 1")
        await expect(page.locator(RESULT)).to_contain_text('"source": "parcs-central"', timeout=5_000)
        await expect(page.locator(RESULT)).to_contain_text('"facilityId": "berlin-hbf"')

        assert any(url.startswith("ws://127.0.0.1") for url in opened.requests), "the subscription did not use a WebSocket"
        assert opened.off_machine() == []
        assert opened.errors == [], opened.errors  # a policy violation would be a console error
