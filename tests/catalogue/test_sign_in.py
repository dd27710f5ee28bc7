"""Catalogue sign-in over real sockets: the authorization-code flow the catalogue runs as
a client of the built-in server, its session cookie, `state`, rotation and sign-out."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import update

from gateway.catalogue.sessions import catalogue_sessions
from tests.catalogue.signed_in import (
    CUSTOMER,
    PARTNER,
    STAFF,
    complete,
    csrf,
    forms,
    sign_in,
    signed_in_estate,
)


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    with signed_in_estate(tmp_path_factory.mktemp("signin")) as built:
        yield built


def _cards(http: httpx.Client, url: str) -> int:
    return http.get(url + "/catalogue").text.count('class="api-card"')


def _cookie(response: httpx.Response) -> str:
    return response.headers["set-cookie"]


def _signed_in(http: httpx.Client, url: str) -> bool:
    return "Signed in as" in http.get(url + "/catalogue").text


def test_sign_in_starts_an_authorization_code_request_with_pkce(estate):
    with httpx.Client() as http:
        start = http.get(estate.url + "/catalogue/sign-in")
    assert start.status_code == 303
    target = urlsplit(start.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert target.path == "/oauth/authorize"
    assert query["response_type"] == "code"
    assert query["client_id"].startswith("tiergate-catalogue-")
    assert query["redirect_uri"] == estate.url + "/catalogue/sign-in/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 20
    assert "code_verifier" not in start.headers["location"]  # kept server-side
    assert start.headers["cache-control"] == "no-store"


def test_staff_sign_in_shows_internal_apis(estate):
    with httpx.Client() as http:
        assert _cards(http, estate.url) == 2  # anonymous: experience APIs only
        done = complete(http, sign_in(http, estate.url, STAFF, "/catalogue/api/stock"))
        assert done.status_code == 303 and done.headers["location"] == "/catalogue/api/stock"
        assert _cards(http, estate.url) == 4
        assert http.get(estate.url + "/catalogue/api/stock").status_code == 200
        names = {a["name"] for a in http.get(estate.url + "/catalogue/apis").json()["apis"]}
        assert {"stock", "orders-proc"} <= names


def test_a_customer_who_signs_in_sees_no_internal_apis(estate):
    with httpx.Client() as http:
        complete(http, sign_in(http, estate.url, CUSTOMER))
        assert _signed_in(http, estate.url)
        assert _cards(http, estate.url) == 2
        assert http.get(estate.url + "/catalogue/api/stock").status_code == 404
        assert http.get(estate.url + "/catalogue/keys").status_code == 403  # not a partner


def test_session_cookie_attributes(estate):
    with httpx.Client() as http:
        pending = http.get(estate.url + "/catalogue/sign-in")
        for cookie in (_cookie(pending),):
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie
            assert "Path=/catalogue" in cookie and "Secure" not in cookie
        http.cookies.clear()
        done = complete(http, sign_in(http, estate.url, STAFF))
    cookie = _cookie(done)
    assert cookie.startswith("tg_catalogue=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/catalogue" in cookie
    assert "Max-Age=28800" in cookie and "Secure" not in cookie


def test_cookie_is_secure_behind_https(estate):
    https = {"x-forwarded-proto": "https"}
    with httpx.Client() as http:
        assert "Secure" in _cookie(http.get(estate.url + "/catalogue/sign-in", headers=https))
        answer = sign_in(http, estate.url, STAFF)
        done = http.get(answer.headers["location"], headers=https)
    assert done.status_code == 303 and "Secure" in _cookie(done)


def test_session_id_rotates_at_sign_in(estate):
    with httpx.Client() as http:
        # A fixated id, as an attacker would plant it, and the pending sign-in's own id.
        http.cookies.set(
            "tg_catalogue", "planted-by-someone-else", domain="127.0.0.1", path="/catalogue"
        )
        answer = sign_in(http, estate.url, STAFF)
        pending_id = http.cookies["tg_catalogue"]
        assert pending_id != "planted-by-someone-else"
        complete(http, answer)
        session_id = http.cookies["tg_catalogue"]
        assert session_id not in (pending_id, "planted-by-someone-else")
        assert _signed_in(http, estate.url)
    for old in (pending_id, "planted-by-someone-else"):
        with httpx.Client(cookies={"tg_catalogue": old}) as other:
            assert not _signed_in(other, estate.url)


def test_state_mismatch_is_refused_and_spends_the_sign_in(estate):
    with httpx.Client() as http:
        answer = sign_in(http, estate.url, STAFF)
        parts = urlsplit(answer.headers["location"])
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        tampered = {
            **query,
            "state": query["state"][:-1] + ("A" if query["state"][-1] != "A" else "B"),
        }
        bad = http.get(
            urlunsplit(parts._replace(query=str(httpx.QueryParams(tampered)))),
            headers={"accept": "text/html"},
        )
        assert bad.status_code == 400
        assert "does not belong to the sign-in this browser started" in bad.text
        assert "set-cookie" not in bad.headers
        again = complete(http, answer)  # the right state, but the sign-in is spent
        assert again.status_code == 400
        assert not _signed_in(http, estate.url)


def test_callback_without_a_started_sign_in_is_refused(estate):
    with httpx.Client() as browser, httpx.Client() as attacker:
        answer = sign_in(browser, estate.url, STAFF)
        # Login CSRF: the victim's code and state delivered to another browser.
        stolen = attacker.get(answer.headers["location"])
        assert stolen.status_code == 400
        assert stolen.headers["content-type"] == "application/problem+json"
        assert "not started here" in stolen.json()["detail"]
        assert not _signed_in(attacker, estate.url)


def test_denied_sign_in_makes_no_session(estate):
    with httpx.Client() as http:
        start = http.get(estate.url + "/catalogue/sign-in")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        answer = http.get(
            estate.url + "/catalogue/sign-in/callback",
            params={"error": "access_denied", "state": state},
        )
        assert answer.status_code == 400 and "access_denied" in answer.json()["detail"]
        assert not _signed_in(http, estate.url)


def test_next_never_leaves_the_catalogue(estate):
    for target in ("//evil.example/x", "https://evil.example/", "/experience/shop/v1/items"):
        with httpx.Client() as http:
            done = complete(http, sign_in(http, estate.url, STAFF, target))
            assert done.headers["location"] == "/catalogue"


def test_sign_in_on_another_host_name_moves_to_the_configured_origin(estate):
    with httpx.Client() as http:
        start = http.get(
            estate.url + "/catalogue/sign-in",
            params={"next": "/catalogue/keys"},
            headers={"host": "localhost.example"},
        )
    assert start.status_code == 303
    moved = "/catalogue/sign-in?next=%2Fcatalogue%2Fkeys&moved=1"
    assert start.headers["location"] == estate.url + moved
    assert "set-cookie" not in start.headers
    with httpx.Client() as http:  # a proxy that rewrites Host: no loop, the sign-in starts
        again = http.get(start.headers["location"], headers={"host": "localhost.example"})
    assert again.status_code == 303
    assert urlsplit(again.headers["location"]).path == "/oauth/authorize"


def test_sign_out_needs_the_csrf_token_and_deletes_the_session(estate):
    with httpx.Client() as http:
        complete(http, sign_in(http, estate.url, STAFF))
        session_id = http.cookies["tg_catalogue"]
        token = csrf(http, estate.url)
        missing = http.post(estate.url + "/catalogue/sign-out", data={})
        assert missing.status_code == 403 and _signed_in(http, estate.url)
        wrong = http.post(estate.url + "/catalogue/sign-out", data={"csrf_token": token[:-2]})
        assert wrong.status_code == 403 and _signed_in(http, estate.url)
        cross = http.post(
            estate.url + "/catalogue/sign-out",
            data={"csrf_token": token},
            headers={"origin": "https://evil.example"},
        )
        assert cross.status_code == 403 and _signed_in(http, estate.url)
        done = http.post(estate.url + "/catalogue/sign-out", data={"csrf_token": token})
        assert done.status_code == 303 and done.headers["location"] == "/catalogue"
        cleared = _cookie(done)
        assert cleared.startswith("tg_catalogue=") and "Max-Age=0" in cleared
        assert not _signed_in(http, estate.url)
    # The server forgot the session: a copy of the old cookie opens nothing.
    with httpx.Client(cookies={"tg_catalogue": session_id}) as replay:
        assert not _signed_in(replay, estate.url)


def test_an_expired_session_is_signed_out(estate):
    with httpx.Client() as http:
        complete(http, sign_in(http, estate.url, PARTNER))
        assert _signed_in(http, estate.url)

        async def expire(registry):
            async with registry.engine.begin() as conn:
                await conn.execute(
                    update(catalogue_sessions)
                    .where(catalogue_sessions.c.username == PARTNER)
                    .values(expires_at=time.time() - 1)
                )

        _on_registry(estate, expire)
        assert not _signed_in(http, estate.url)
        keys = http.get(estate.url + "/catalogue/keys")
        assert keys.status_code == 303 and keys.headers["location"].startswith(
            "/catalogue/sign-in?next="
        )


def test_a_disabled_user_loses_the_session(estate):
    username = "temp-erin"
    estate.registry_call("create_user", username, "catalogue sign-in passphrase", "cus_0009")
    with httpx.Client() as http:
        complete(http, sign_in(http, estate.url, username))
        assert _signed_in(http, estate.url)
        estate.registry_call("disable_user", username)
        assert not _signed_in(http, estate.url)


def test_sign_out_form_is_on_every_page_and_needs_no_script(estate):
    with httpx.Client() as http:
        complete(http, sign_in(http, estate.url, STAFF))
        page = http.get(estate.url + "/catalogue/api/shop")
    assert "/catalogue/sign-out" in forms(page.text)
    assert "form-action 'self'" in page.headers["content-security-policy"]


def _on_registry(estate, action):
    import asyncio

    from gateway.registry import Registry

    async def run():
        registry = Registry.from_url(estate.registry_url)
        try:
            await action(registry)
        finally:
            await registry.aclose()

    asyncio.run(run())


def test_demo_start_up_says_who_signs_in_to_the_catalogue(tmp_path):
    from gateway.catalogue.component import CatalogueComponent
    from gateway.stack import build_gateway
    from tests.support.configs import make_config

    config = make_config(
        tmp_path,
        [{"name": "partner", "upstream": {"targets": ["http://127.0.0.1:9"]}}],
        oauth={"demo_users": {"ana": "cus_0001", "ben": "cus_0002", "eve": "cus_0003"}},
        catalogue={
            "sign_in": {"staff": ["ana"], "partners": {"ben": "acme"}, "key_apis": ["partner"]}
        },
    )
    sign_in = build_gateway(config).component(CatalogueComponent).sign_in
    assert sign_in.demo_line(config.oauth.demo_users) == (
        "  catalogue: open http://127.0.0.1:8080/catalogue, Sign in as ana (staff: internal "
        "APIs) or ben (acme's API keys)"
    )
    assert sign_in.demo_line({}) is None


def test_sign_ins_started_per_address_are_limited(tmp_path):
    with (
        signed_in_estate(tmp_path, start_limit_per_ip="3/minute") as small,
        httpx.Client() as http,
    ):
        started = [http.get(small.url + "/catalogue/sign-in") for _ in range(4)]
        assert [r.status_code for r in started] == [303, 303, 303, 429]
        refused = started[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert "Too many sign-ins started" in refused.json()["detail"]
        assert "set-cookie" not in refused.headers
