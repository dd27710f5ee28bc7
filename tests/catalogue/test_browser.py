"""The catalogue in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import pytest

from tests.catalogue.conftest import ARTIFACTS

pytest.importorskip("playwright.sync_api")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def test_index_filter_and_open_an_api(page, gateway_server):
    page.goto(gateway_server.url + "/catalogue")
    assert page.locator("li.api-card").count() == 2
    page.screenshot(path=str(ARTIFACTS / "index.png"), full_page=True)
    page.select_option("select[name=lifecycle]", "deprecated")
    page.click("form.filters button")
    page.wait_for_url("**lifecycle=deprecated**")
    cards = page.locator("li.api-card")
    assert cards.count() == 1 and cards.first.get_attribute("data-card") == "legacy"
    page.screenshot(path=str(ARTIFACTS / "filtered.png"), full_page=True)
    cards.first.locator("a").first.click()
    page.wait_for_url("**/catalogue/api/legacy")
    assert "Deprecated since 2026-01-15" in page.locator("p.warning").inner_text()


def test_api_page_renders_operations_graph_and_try_it(page, gateway_server):
    page.goto(gateway_server.url + "/catalogue/api/shop")
    assert page.locator("svg.graph a.node[data-api=shop]").count() == 1
    operation = page.locator("#swagger-ui .opblock-summary-path", has_text="/items")
    operation.wait_for(timeout=15000)
    operation.click()
    page.locator("#swagger-ui button.execute").click()
    status = page.locator("#swagger-ui .live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=15000)
    assert status.inner_text().strip() == "200"
    body = page.locator("#swagger-ui .live-responses-table .microlight").first.inner_text()
    assert "Kettle" in body
    url = page.locator("#swagger-ui .request-url pre").first.inner_text()
    assert url.startswith(gateway_server.url + "/experience/shop/v1/items")
    page.screenshot(path=str(ARTIFACTS / "try-it.png"), full_page=True)


def test_internal_viewer_filters_by_tier(browser, gateway_server):
    from tests.catalogue.conftest import ADMIN_TOKEN

    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    page = context.new_page()
    try:
        page.goto(gateway_server.url + "/catalogue")
        assert page.locator("li.api-card").count() == 4
        page.select_option("select[name=tier]", "system")
        page.click("form.filters button")
        page.wait_for_url("**tier=system**")
        cards = page.locator("li.api-card")
        assert cards.count() == 1 and cards.first.get_attribute("data-card") == "stock"
        assert page.locator("section[data-tier=system] h2").inner_text() == "System APIs"
        page.screenshot(path=str(ARTIFACTS / "tier-filter.png"), full_page=True)
    finally:
        context.close()


def test_the_pages_break_no_rule_of_their_content_security_policy(page, gateway_server):
    """Every page works within its CSP: the browser reports no blocked script, style,
    image, font or fetch (Swagger UI rendered and a try-it request sent)."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(gateway_server.url + "/catalogue")
    page.goto(gateway_server.url + "/catalogue/api/shop")
    operation = page.locator("#swagger-ui .opblock-summary-path", has_text="/items")
    operation.wait_for(timeout=15000)
    operation.click()
    page.locator("#swagger-ui button.execute").click()
    page.locator("#swagger-ui .live-responses-table .response-col_status").first.wait_for(
        timeout=15000
    )
    assert violations == []
