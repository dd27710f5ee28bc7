"""POST /oauth/authorize is limited per client IP and per username (`limits`), apart
from the account lockout: a refused attempt never reaches the password check."""

from __future__ import annotations

import httpx
from authlib.common.security import generate_token

from tests.oauth.sign_in import PASSWORD, estate, open_page


def _attempt(shop, browser: httpx.Client, username: str, password: str) -> httpx.Response:
    with shop.oauth_client() as oauth:
        url, _ = oauth.create_authorization_url(
            f"{shop.url}/oauth/authorize", code_verifier=generate_token(64)
        )
    _page, form = open_page(browser, url)
    return browser.post(
        f"{shop.url}{form.action}",
        data={**form.fields, "username": username, "password": password},
        headers={"accept": "text/html"},
    )


def test_per_username_and_per_ip_limits(tmp_path):
    limits = {"sign_in_limit_per_user": "2/minute", "sign_in_limit_per_ip": "5/minute"}
    with estate("sqlite", tmp_path, oauth=limits) as shop, httpx.Client() as browser:
        target, other = shop.new_user(), shop.new_user()
        for _ in range(2):
            assert _attempt(shop, browser, target, "wrong password").status_code == 400
        limited = _attempt(shop, browser, target.upper(), PASSWORD)  # any spelling counts
        assert limited.status_code == 429 and "Too many sign-in attempts" in limited.text
        assert int(limited.headers["retry-after"]) >= 1
        assert "location" not in limited.headers
        assert shop.registry_call("user", target).failed_attempts == 2  # never checked
        assert _attempt(shop, browser, other, PASSWORD).status_code == 302
        assert _attempt(shop, browser, f"{other}-x", PASSWORD).status_code == 400
        per_ip = _attempt(shop, browser, f"{other}-y", PASSWORD)  # the 6th from this IP
        assert per_ip.status_code == 429
        # the page itself (GET) stays available: only attempts are counted
        with shop.oauth_client() as oauth:
            url, _ = oauth.create_authorization_url(
                f"{shop.url}/oauth/authorize", code_verifier=generate_token(64)
            )
        assert open_page(browser, url)[0].status_code == 200
