"""The sign-in page in a real browser with JavaScript off (Debian's chromium driven by
Playwright): the form posts, the CSRF cookie rides along, the page's CSP lets the 302 to
the app's redirect URI through, and the code it carries redeems."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.common.security import generate_token

from tests.oauth.sign_in import PASSWORD, REDIRECT, estate

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run scripts/test-prerequisites.sh")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def test_a_user_signs_in_without_javascript(browser, tmp_path):
    with estate("sqlite", tmp_path) as shop:
        username = shop.new_user("cus_0077")
        verifier = generate_token(64)
        with shop.oauth_client() as oauth:
            url, state = oauth.create_authorization_url(
                f"{shop.url}/oauth/authorize", code_verifier=verifier
            )
        context = browser.new_context(java_script_enabled=False)
        callbacks: list[str] = []

        def app(route):  # stands for the app's loopback listener (RFC 8252 §7.3)
            callbacks.append(route.request.url)
            route.fulfill(status=200, content_type="text/plain", body="signed in")

        context.route(REDIRECT + "*", app)
        violations: list[str] = []
        page = context.new_page()
        page.on("console", lambda message: violations.append(message.text))
        page.goto(url)
        assert "Shop app" in page.locator("p.consent").inner_text()
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[value=allow]")
        page.wait_for_url(REDIRECT + "*")
        context.close()
        assert len(callbacks) == 1, violations
        params = {k: v[0] for k, v in parse_qs(urlsplit(callbacks[0]).query).items()}
        assert params["state"] == state
        with shop.oauth_client() as oauth:
            token = oauth.fetch_token(
                f"{shop.url}/oauth/token",
                authorization_response=callbacks[0],
                code_verifier=verifier,
            )
        assert token["access_token"] and token["refresh_token"]
        assert not [v for v in violations if "Content Security Policy" in v]
