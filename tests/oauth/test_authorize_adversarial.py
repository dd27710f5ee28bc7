"""/oauth/authorize and /oauth/token against an attacker, over real sockets: repeated
parameters, huge fields, odd encodings, methods. Nothing crashes, nothing redirects to an
unvalidated URI, nothing echoes a credential."""

from __future__ import annotations

import socket

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.oauth.sign_in import PASSWORD, REDIRECT, estate, open_page


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    with estate("sqlite", tmp_path_factory.mktemp("adversarial")) as built:
        yield built


def _query(shop) -> str:
    challenge = create_s256_code_challenge(generate_token(64))
    return str(
        httpx.QueryParams(
            response_type="code",
            client_id=shop.client_id,
            redirect_uri=REDIRECT,
            state="s",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )


@pytest.mark.parametrize(
    "extra",
    [
        "&redirect_uri=http%3A%2F%2Fevil.example%2Fcb",  # a second redirect_uri
        "&client_id=cl_other",
        "&state=again",
        "&code_challenge=" + "A" * 43,
        "&code_challenge_method=plain",
    ],
)
def test_a_repeated_parameter_is_a_page_never_a_redirect(shop, extra):
    r = httpx.get(f"{shop.url}/oauth/authorize?{_query(shop)}{extra}")
    assert r.status_code == 400 and "location" not in r.headers
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "query",
    [
        "state=" + "x" * 9000,  # over the query limit
        "state=" + "x" * 3000,  # one field over its limit
        "state=%ff%fe",  # not UTF-8
        "client_id=%00",
        "redirect_uri=http://127.0.0.1:8765/callback%00",
    ],
)
def test_odd_or_huge_queries_are_refused_without_a_redirect(shop, query):
    r = httpx.get(f"{shop.url}/oauth/authorize?{_query(shop)}&{query}".replace("&state=s", ""))
    assert r.status_code == 400 and "location" not in r.headers, r.text


def test_non_ascii_raw_query_is_refused(shop):
    with socket.create_connection(("127.0.0.1", int(shop.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(
            b"GET /oauth/authorize?state=\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.split(b" ", 2)[1] in (b"400",), reply[:200]


def test_post_with_duplicates_huge_fields_or_wrong_type_is_refused(shop):
    with httpx.Client() as browser:
        _page, form = open_page(browser, f"{shop.url}/oauth/authorize?{_query(shop)}")
        fields = {**form.fields, "username": "u", "password": PASSWORD}
        body = httpx.QueryParams(fields)
        cases = [
            (str(body) + "&username=other", "application/x-www-form-urlencoded"),
            (str(body.set("username", "u" * 5000)), "application/x-www-form-urlencoded"),
            (str(body.set("password", "p" * 20000)), "application/x-www-form-urlencoded"),
            ("%ff=%fe", "application/x-www-form-urlencoded"),
            ('{"username": "u"}', "application/json"),
        ]
        for content, content_type in cases:
            r = browser.post(
                f"{shop.url}/oauth/authorize",
                content=content,
                headers={"content-type": content_type},
            )
            # refused as malformed, or (no CSRF token left) as a forged form
            assert r.status_code in (400, 403) and "location" not in r.headers, content[:80]
            assert PASSWORD not in r.text


def test_other_methods_are_not_allowed(shop):
    for method in ("PUT", "DELETE", "PATCH"):
        assert httpx.request(method, f"{shop.url}/oauth/authorize").status_code == 405
    head = httpx.head(f"{shop.url}/oauth/authorize?{_query(shop)}")
    assert head.status_code == 200 and head.content == b""


def test_very_long_username_is_a_wrong_password_not_a_crash(shop):
    with httpx.Client() as browser:
        _page, form = open_page(browser, f"{shop.url}/oauth/authorize?{_query(shop)}")
        r = browser.post(
            f"{shop.url}/oauth/authorize",
            data={**form.fields, "username": "ü" * 2000, "password": "x" * 2000},
        )
    assert r.status_code == 400 and "username or password is wrong" in r.text


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=authorization_code&code=a&code=b&client_id={cid}",
        "grant_type=authorization_code&grant_type=client_credentials&client_id={cid}",
        "grant_type=refresh_token&refresh_token=" + "r" * 17000 + "&client_id={cid}",
        "grant_type=authorization_code&code=%ff&client_id={cid}&code_verifier=%00",
        "grant_type=authorization_code&code=x&client_id={cid}&code_verifier=" + "v" * 200,
        "grant_type=refresh_token&refresh_token=&client_id={cid}",
    ],
)
def test_token_endpoint_odd_bodies_are_oauth_errors(shop, body):
    r = httpx.post(
        f"{shop.url}/oauth/token",
        content=body.format(cid=shop.client_id),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] in {"invalid_request", "invalid_grant"}
    assert r.headers["cache-control"] == "no-store"


def test_public_client_cannot_use_client_credentials_or_pose_with_a_secret(shop):
    r = httpx.post(
        f"{shop.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": shop.client_id},
    )
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    r = httpx.post(
        f"{shop.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(shop.client_id, ""),
    )
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
