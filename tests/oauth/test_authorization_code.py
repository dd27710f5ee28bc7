"""Authorization code + PKCE (RFC 6749 §4.1, RFC 7636, RFC 9700) with authlib's own
OAuth2Client against a gateway on real uvicorn: the sign-in page, the code, the token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.oauth.helpers import verify_with_served_jwks
from tests.oauth.sign_in import (
    OTHER_REDIRECT,
    PASSWORD,
    REDIRECT,
    estate,
    open_page,
    parse_form,
    sign_in,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(request, tmp_path_factory):
    with estate(request.param, tmp_path_factory.mktemp("authcode")) as built:
        yield built


def _query(location: str) -> dict[str, str]:
    values = parse_qs(urlsplit(location).query, keep_blank_values=True)
    return {k: v[0] for k, v in values.items()}


def test_code_with_pkce_end_to_end_with_authlib_client(shop):
    username = shop.new_user("cus_0042")
    verifier = generate_token(64)
    with shop.oauth_client() as oauth, httpx.Client() as browser:
        url, state = oauth.create_authorization_url(
            f"{shop.url}/oauth/authorize", code_verifier=verifier
        )
        page, form = open_page(browser, url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "Shop app" in page.text and "orders:read" in page.text  # the consent line
        assert {"username", "password", "csrf_token"} <= set(form.inputs)
        assert "<script" not in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        answer = browser.post(
            f"{shop.url}{form.action}",
            data={**form.fields, "username": username, "password": PASSWORD},
        )
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(REDIRECT + "?")
        params = _query(location)
        assert params["state"] == state and params["code"]
        token = oauth.fetch_token(
            f"{shop.url}/oauth/token", authorization_response=location, code_verifier=verifier
        )
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    assert token["scope"] == "orders:read orders:write"
    assert jwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
    claims = verify_with_served_jwks(shop.url, token["access_token"])
    assert claims["sub"] == username
    assert claims["customer_id"] == "cus_0042"
    assert claims["client_id"] == shop.client_id
    assert claims["scope"] == "orders:read orders:write"
    assert "act" not in claims and claims["jti"] and claims["iss"] == "http://127.0.0.1:8080"


def _authorize(shop, **params):
    verifier = generate_token(64)
    query = {
        "response_type": "code",
        "client_id": shop.client_id,
        "redirect_uri": REDIRECT,
        "scope": "orders:read",
        "state": "st-1",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        **params,
    }
    return {k: v for k, v in query.items() if v is not None}, verifier


def _code(shop, username, **params) -> tuple[str, str]:
    query, verifier = _authorize(shop, **params)
    with httpx.Client() as browser:
        url = str(httpx.URL(f"{shop.url}/oauth/authorize", params=query))
        answer = sign_in(browser, shop.url, url, username)
    assert answer.status_code == 302, answer.text
    return _query(answer.headers["location"])["code"], verifier


def _exchange(shop, code, verifier, redirect_uri=REDIRECT, **extra):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": shop.client_id,
        "code_verifier": verifier,
        **extra,
    }
    return httpx.post(f"{shop.url}/oauth/token", data={k: v for k, v in form.items() if v})


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "PKCE"),
        ({"code_challenge_method": None}, "S256"),
        ({"code_challenge_method": "plain"}, "S256"),
    ],
    ids=["missing", "no-method-means-plain", "plain"],
)
def test_missing_or_plain_pkce_is_refused_by_redirect_with_state(shop, params, description):
    query, _ = _authorize(shop, **params)
    r = httpx.get(f"{shop.url}/oauth/authorize", params=query)
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?")
    error = _query(location)
    assert error["error"] == "invalid_request"
    assert description in error["error_description"]
    assert error["state"] == "st-1"
    assert "code" not in error


def test_authlib_client_with_plain_pkce_is_refused(shop):
    with shop.oauth_client(code_challenge_method="plain") as oauth:
        url, _ = oauth.create_authorization_url(
            f"{shop.url}/oauth/authorize", code_verifier=generate_token(64)
        )
    r = httpx.get(url)
    assert r.status_code == 302 and _query(r.headers["location"])["error"] == "invalid_request"


def test_wrong_verifier_and_missing_verifier_are_refused_and_burn_the_code(shop):
    username = shop.new_user()
    code, verifier = _code(shop, username)
    r = _exchange(shop, code, generate_token(64))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    r = _exchange(shop, code, verifier)  # the right one, too late: the code is spent
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    code, _verifier = _code(shop, username)
    r = _exchange(shop, code, None)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8765/callback/",
        "http://127.0.0.1:8765/callback?x=1",
        "http://127.0.0.1:8765/CALLBACK",
        "http://127.0.0.1:8766/callback",
        "https://127.0.0.1:8765/callback",
        "http://evil.example/callback",
        "http://127.0.0.1:8765/callback#frag",
        "http://127.0.0.1:8765/%63allback",
    ],
)
def test_unregistered_redirect_uri_gets_a_page_never_a_redirect(shop, redirect_uri):
    query, _ = _authorize(shop, redirect_uri=redirect_uri)
    r = httpx.get(f"{shop.url}/oauth/authorize", params=query, headers={"accept": "text/html"})
    assert r.status_code == 400
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    r = httpx.get(f"{shop.url}/oauth/authorize", params=query)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


def test_unknown_client_and_missing_redirect_get_a_page(shop):
    for params in ({"client_id": "cl_nope"}, {"redirect_uri": None}, {"client_id": None}):
        query, _ = _authorize(shop, **params)
        r = httpx.get(f"{shop.url}/oauth/authorize", params=query)
        assert r.status_code == 400 and "location" not in r.headers, params


def test_mismatched_redirect_uri_at_the_token_endpoint_is_refused(shop):
    username = shop.new_user()
    code, verifier = _code(shop, username)
    r = _exchange(shop, code, verifier, redirect_uri=OTHER_REDIRECT)  # registered, not used
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_code_is_single_use(shop):
    username = shop.new_user()
    code, verifier = _code(shop, username)
    first = _exchange(shop, code, verifier)
    assert first.status_code == 200
    again = _exchange(shop, code, verifier)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    # the reuse ended the sign-in the code started (RFC 6749 §4.1.2)
    refresh = httpx.post(
        f"{shop.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": shop.client_id,
        },
    )
    assert (refresh.status_code, refresh.json()["error"]) == (400, "invalid_grant")


def test_code_of_another_client_is_refused(shop):
    username = shop.new_user()
    code, verifier = _code(shop, username)
    r = httpx.post(
        f"{shop.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=shop.confidential,
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_confidential_client_uses_pkce_and_its_secret(shop):
    username = shop.new_user()
    query, verifier = _authorize(shop, client_id=shop.confidential[0])
    with httpx.Client() as browser:
        url = str(httpx.URL(f"{shop.url}/oauth/authorize", params=query))
        answer = sign_in(browser, shop.url, url, username)
    code = _query(answer.headers["location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    no_secret = httpx.post(
        f"{shop.url}/oauth/token", data={**form, "client_id": shop.confidential[0]}
    )
    assert (no_secret.status_code, no_secret.json()["error"]) == (401, "invalid_client")
    r = httpx.post(f"{shop.url}/oauth/token", data=form, auth=shop.confidential)
    assert r.status_code == 200, r.text


def test_wrong_password_shows_the_page_again_and_cancel_is_access_denied(shop):
    username = shop.new_user()
    query, _ = _authorize(shop)
    url = str(httpx.URL(f"{shop.url}/oauth/authorize", params=query))
    with httpx.Client() as browser:
        r = sign_in(browser, shop.url, url, username, password="wrong password!")
        assert r.status_code == 400 and "username or password is wrong" in r.text
        assert "location" not in r.headers
        assert f'value="{username}"' in r.text and "wrong password!" not in r.text
        again = parse_form(r.text)
        denied = browser.post(
            f"{shop.url}{again.action}", data={**again.fields, "decision": "deny"}
        )
    assert denied.status_code == 302
    params = _query(denied.headers["location"])
    assert (params["error"], params["state"]) == ("access_denied", "st-1")
    assert "code" not in params


def test_unknown_user_reads_like_a_wrong_password(shop):
    query, _ = _authorize(shop)
    url = str(httpx.URL(f"{shop.url}/oauth/authorize", params=query))
    with httpx.Client() as browser:
        r = sign_in(browser, shop.url, url, "nobody-here")
    assert r.status_code == 400 and "username or password is wrong" in r.text


def test_missing_or_wrong_csrf_token_is_refused(shop):
    username = shop.new_user()
    query, _ = _authorize(shop)
    url = str(httpx.URL(f"{shop.url}/oauth/authorize", params=query))
    with httpx.Client() as browser:
        _page, form = open_page(browser, url)
        fields = {**form.fields, "username": username, "password": PASSWORD}
        without = {k: v for k, v in fields.items() if k != "csrf_token"}
        for data in (without, {**fields, "csrf_token": "x" * 43}):
            r = browser.post(f"{shop.url}/oauth/authorize", data=data)
            assert r.status_code == 403 and "location" not in r.headers
        cross_site = browser.post(
            f"{shop.url}/oauth/authorize", data=fields, headers={"origin": "http://evil.example"}
        )
        assert cross_site.status_code == 403
    with httpx.Client() as no_cookie:  # the token alone, as a forged cross-site form would
        r = no_cookie.post(f"{shop.url}/oauth/authorize", data=fields)
        assert r.status_code == 403


def test_disabled_user_cannot_sign_in(shop):
    username = shop.new_user()
    shop.registry_call("disable_user", username)
    query, _ = _authorize(shop)
    url = str(httpx.URL(f"{shop.url}/oauth/authorize", params=query))
    with httpx.Client() as browser:
        r = sign_in(browser, shop.url, url, username)
    assert r.status_code == 400 and "location" not in r.headers


def test_lockout_after_repeated_failures_even_with_the_right_password(shop):
    username = shop.new_user()
    query, _ = _authorize(shop)
    url = str(httpx.URL(f"{shop.url}/oauth/authorize", params=query))
    with httpx.Client() as browser:
        for _ in range(5):
            r = sign_in(browser, shop.url, url, username, password="not the password")
            assert r.status_code == 400
        r = sign_in(browser, shop.url, url, username)
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert int(r.headers["retry-after"]) >= 1
    user = shop.registry_call("user", username)
    assert user.failed_attempts == 5 and user.locked_until is not None


def test_implicit_and_unknown_response_types_are_refused(shop):
    for response_type in ("token", "id_token", "code token", "password"):
        query, _ = _authorize(shop, response_type=response_type)
        r = httpx.get(f"{shop.url}/oauth/authorize", params=query)
        assert r.status_code == 302, response_type
        assert _query(r.headers["location"])["error"] == "unsupported_response_type"


def test_scope_beyond_the_clients_is_an_invalid_scope_redirect(shop):
    query, _ = _authorize(shop, scope="orders:read admin")
    r = httpx.get(f"{shop.url}/oauth/authorize", params=query)
    assert r.status_code == 302
    assert _query(r.headers["location"])["error"] == "invalid_scope"
