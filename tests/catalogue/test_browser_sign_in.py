"""Catalogue sign-in and partner self-service in a real browser (Debian's chromium driven
by Playwright): no JavaScript is needed, the forms and redirects do it all."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.catalogue.conftest import ARTIFACTS
from tests.catalogue.signed_in import PARTNER, PASSWORD, STAFF, signed_in_estate

pytest.importorskip("playwright.sync_api")

ITEMS = "/experience/legacy/v1/items"


# Listed before `page` in each test: the estate is set up before Playwright's loop runs.
@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    with signed_in_estate(tmp_path_factory.mktemp("browser-signin")) as built:
        yield built


@pytest.fixture
def page(browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    page = context.new_page()
    yield page
    context.close()


def _sign_in(page, url: str, username: str) -> None:
    page.goto(url + "/catalogue")
    page.click("a.sign-in")
    page.wait_for_url("**/oauth/authorize?**")
    assert "Tiergate API catalogue" in page.locator("p.consent").inner_text()
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[value=allow]")
    page.wait_for_url("**/catalogue")
    assert page.locator("[data-user]").inner_text() == username


def test_staff_signs_in_and_sees_the_internal_graph(estate, page):
    page.goto(estate.url + "/catalogue")
    assert page.locator("li.api-card").count() == 2
    assert page.locator("svg.graph a.node[data-api=stock]").count() == 0
    _sign_in(page, estate.url, STAFF)
    assert page.locator("li.api-card").count() == 4
    for name in ("shop", "orders-proc", "stock"):
        assert page.locator(f"svg.graph a.node[data-api={name}]").count() == 1
    page.screenshot(path=str(ARTIFACTS / "signed-in-staff.png"), full_page=True)
    page.click("form.sign-out button")
    page.wait_for_url("**/catalogue")
    assert page.locator("a.sign-in").count() == 1
    assert page.locator("li.api-card").count() == 2


def test_partner_creates_a_key_uses_it_and_revokes_it(estate, page):
    _sign_in(page, estate.url, PARTNER)
    page.click("a[href='/catalogue/keys']")
    page.wait_for_url("**/catalogue/keys")
    page.click("form.create-key button")
    key = page.locator("#new-key").inner_text().strip()
    key_id = page.locator("#new-key").get_attribute("data-key-id")
    page.screenshot(path=str(ARTIFACTS / "new-key.png"), full_page=True)
    assert httpx.get(estate.url + ITEMS, headers={"x-api-key": key}).status_code == 200
    page.goto(estate.url + "/catalogue/keys")
    assert key not in page.content()  # shown once only
    row = page.locator(f"tr.key[data-key-id='{key_id}']")
    assert row.get_attribute("data-state") == "active"
    row.locator("button.revoke").click()
    page.wait_for_url("**/catalogue/keys")
    assert page.locator(f"tr.key[data-key-id='{key_id}']").get_attribute("data-state") == "revoked"
    deadline = time.monotonic() + 5
    status = 200
    while status != 401 and time.monotonic() < deadline:
        status = httpx.get(estate.url + ITEMS, headers={"x-api-key": key}).status_code
        time.sleep(0.1)
    assert status == 401
