"""The console in Chromium against a real server: what a person signing in sees and can do.

Set ``TRAITSYNC_CONSOLE_SCREENSHOTS=docs/img`` to refresh the screenshots of docs/console.md.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import FAILING_USER, Console
from traitsync.demo.runner import TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.browser]
SHOTS = os.environ.get("TRAITSYNC_CONSOLE_SCREENSHOTS")


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(600)  # let charts draw
        page.screenshot(path=str(Path(SHOTS) / f"console-{name}.png"), full_page=True)


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=console.base)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def sign_in(page: Any, token: str = TOKEN) -> None:
    page.goto("/")
    page.get_by_label("Management token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_a_wrong_token_is_refused_and_shows_nothing(page: Any) -> None:
    page.goto("/")
    shot(page, "sign-in")
    sign_in(page, "not-the-token")
    page.get_by_role("alert").filter(has_text="The server refused this token.").wait_for()
    assert page.get_by_role("link", name="Computations", exact=True).count() == 0
    assert page.evaluate("sessionStorage.getItem('traitsync.token')") is None


def test_the_token_is_asked_once_per_tab(page: Any) -> None:
    sign_in(page)
    page.get_by_role("heading", name="Computations").wait_for()
    page.reload()
    page.get_by_role("heading", name="Computations").wait_for()
    assert page.get_by_label("Management token").count() == 0


def test_an_audience_shows_its_size_definition_and_members(page: Any, console: Console) -> None:
    sign_in(page)
    expected = next(c for c in console.api("/computations")["computations"]
                    if c["key"] == "order_completed_last_30days")
    assert expected["size"] > 0
    tile = page.locator("a[data-key=order_completed_last_30days]")
    tile.get_by_text("Live").wait_for()
    assert tile.get_by_test_id("size").inner_text() == f"{expected['size']:,}"
    shot(page, "computations")
    tile.click()
    page.get_by_role("heading", name="Order Completed Last 30 Days").wait_for()
    assert page.get_by_test_id("computation-size").inner_text() == f"{expected['size']:,}"
    assert "performed:" in page.get_by_test_id("yaml").inner_text()
    assert page.get_by_test_id("query").inner_text() == "event('Order Completed').within(30 days).count() >= 1"
    page.get_by_role("link", name="Shop Webhook").wait_for()  # its connected destination
    page.get_by_role("cell", name=re.compile(r"^user_\d{3}@example\.com$")).first.wait_for()
    page.get_by_role("cell", name="email").wait_for()  # identifier breakdown
    shot(page, "audience")


def test_a_profile_is_found_by_email_and_explains_its_identifiers(page: Any) -> None:
    sign_in(page)
    page.get_by_role("link", name="Profiles", exact=True).click()
    page.get_by_label("identifier").fill("user_005@exam")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="email:user_005@example.com").click()
    page.get_by_role("heading", name="user_005@example.com").wait_for()
    tree = page.get_by_test_id("explain")
    tree.get_by_text(re.compile(r"^identifiers \(3\)$")).wait_for()
    text = tree.inner_text()
    assert "anonymous_id:anon-005" in text and "user_id:user_005" in text and "created by message" in text
    page.get_by_role("cell", name="plan", exact=True).wait_for()  # a trait from the identify call
    shot(page, "profile")


def test_a_dead_letter_is_replayed_from_the_destination_page(page: Any, console: Console) -> None:
    sign_in(page)
    page.get_by_role("link", name="Destinations", exact=True).click()
    shot(page, "destinations")
    page.locator("a[data-id=dst_events]").click()
    page.get_by_test_id("funnel").get_by_text("Successful delivery").wait_for()
    table = page.get_by_test_id("dead-letters")
    table.get_by_role("button", name="Replay").first.wait_for()
    before = console.api("/destinations/dst_events/dead-letters")["total"]
    shot(page, "destination")
    console.receiver.failing = False
    table.get_by_role("button", name="Replay").first.click()
    page.get_by_role("status").filter(has_text="Re-queued 1 message").wait_for()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            m.get("userId") == FAILING_USER for m in console.receiver.accepted):
        time.sleep(0.2)
    assert any(m.get("userId") == FAILING_USER for m in console.receiver.accepted)
    page.get_by_role("heading", name=f"Dead letters ({before - 1:,})").wait_for()


def test_sources_and_identity_pages_show_live_data(page: Any) -> None:
    sign_in(page)
    page.get_by_role("link", name="Sources", exact=True).click()
    page.get_by_role("heading", name=re.compile(r"^Live events \(\d+\)$")).wait_for()
    page.get_by_text("Order Completed").first.wait_for()
    rejected = page.get_by_test_id("rejections")
    assert rejected.locator("tbody tr code").first.inner_text()  # a rejection with its code
    shot(page, "sources")
    page.get_by_role("link", name="Identity", exact=True).click()
    page.get_by_role("heading", name="Violations by category").wait_for()
    blocked = page.locator("section.card", has=page.get_by_role("heading", name="ID value blocked", exact=True))
    blocked.get_by_text("user_id:undefined").first.wait_for()
    page.get_by_label("identifier to explain").fill("user_id:user_002")
    page.get_by_role("button", name="Explain").click()
    page.get_by_text(re.compile(r"^identifiers \(3\)$")).wait_for()
    shot(page, "identity")


@pytest.mark.parametrize("route", ["computations", "computations/order_completed_last_30days", "profiles",
                                   "destinations", "destinations/dst_events", "sources", "identity"])
def test_every_page_fits_a_phone(browser: Any, console: Console, route: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=console.base)
    page = context.new_page()
    try:
        sign_in(page)
        page.get_by_role("heading", name="Computations").wait_for()
        page.goto(f"/#/{route}")
        page.locator("main h1").first.wait_for()
        page.wait_for_timeout(800)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        if route == "destinations/dst_events":
            shot(page, "phone-destination")
    finally:
        context.close()
