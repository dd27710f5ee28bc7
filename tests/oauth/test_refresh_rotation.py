"""refresh_token with rotation (RFC 9700 §4.14): every use issues a new refresh token;
presenting a spent one revokes the whole family. authlib's OAuth2Client on real uvicorn."""

from __future__ import annotations

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError

from tests.oauth.helpers import verify_with_served_jwks
from tests.oauth.sign_in import estate, sign_in


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(request, tmp_path_factory):
    with estate(request.param, tmp_path_factory.mktemp("refresh")) as built:
        yield built


def _signed_in(shop, username: str) -> dict:
    verifier = generate_token(64)
    with shop.oauth_client() as oauth, httpx.Client() as browser:
        url, _state = oauth.create_authorization_url(
            f"{shop.url}/oauth/authorize", code_verifier=verifier
        )
        answer = sign_in(browser, shop.url, url, username)
        return dict(
            oauth.fetch_token(
                f"{shop.url}/oauth/token",
                authorization_response=answer.headers["location"],
                code_verifier=verifier,
            )
        )


def _refresh(shop, refresh_token: str, **extra: str) -> httpx.Response:
    return httpx.post(
        f"{shop.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": shop.client_id,
            **extra,
        },
    )


def test_each_refresh_rotates_the_refresh_token(shop):
    username = shop.new_user("cus_0101")
    first = _signed_in(shop, username)
    with shop.oauth_client() as oauth:
        second = oauth.refresh_token(
            f"{shop.url}/oauth/token", refresh_token=first["refresh_token"]
        )
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    claims = verify_with_served_jwks(shop.url, second["access_token"])
    assert (claims["sub"], claims["customer_id"]) == (username, "cus_0101")
    third = _refresh(shop, second["refresh_token"])
    assert third.status_code == 200 and third.json()["refresh_token"] != second["refresh_token"]
    assert third.headers["cache-control"] == "no-store"


def test_reusing_a_spent_refresh_token_revokes_the_family(shop):
    username = shop.new_user()
    first = _signed_in(shop, username)
    second = _refresh(shop, first["refresh_token"]).json()
    with shop.oauth_client() as oauth, pytest.raises(OAuthError) as reused:
        oauth.refresh_token(f"{shop.url}/oauth/token", refresh_token=first["refresh_token"])
    assert reused.value.error == "invalid_grant"
    # the newest token of the family is dead too: the thief and the app both sign in again
    latest = _refresh(shop, second["refresh_token"])
    assert (latest.status_code, latest.json()["error"]) == (400, "invalid_grant")
    # another sign-in of the same user is another family and still works
    other = _signed_in(shop, username)
    assert _refresh(shop, other["refresh_token"]).status_code == 200


def test_scope_can_narrow_but_never_widen(shop):
    first = _signed_in(shop, shop.new_user())
    narrow = _refresh(shop, first["refresh_token"], scope="orders:read")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "orders:read"
    wide = _refresh(shop, narrow.json()["refresh_token"], scope="orders:read admin")
    assert (wide.status_code, wide.json()["error"]) == (400, "invalid_scope")


def test_refresh_token_of_another_client_or_garbage_is_invalid_grant(shop):
    first = _signed_in(shop, shop.new_user())
    stolen = httpx.post(
        f"{shop.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=shop.confidential,
    )
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    assert _refresh(shop, first["refresh_token"]).status_code == 200  # not burnt by it
    for garbage in ("x", first["access_token"], "%00"):
        r = _refresh(shop, garbage)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_disabled_user_cannot_refresh(shop):
    username = shop.new_user()
    first = _signed_in(shop, username)
    shop.registry_call("disable_user", username)
    r = _refresh(shop, first["refresh_token"])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_public_client_revokes_its_refresh_token_family(shop):
    first = _signed_in(shop, shop.new_user())
    second = _refresh(shop, first["refresh_token"]).json()
    r = httpx.post(
        f"{shop.url}/oauth/revoke",
        data={"token": second["refresh_token"], "client_id": shop.client_id},
    )
    assert r.status_code == 200
    r = _refresh(shop, second["refresh_token"])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_a_client_registered_for_user_grants_only_gets_no_client_credentials(shop):
    r = httpx.post(
        f"{shop.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=shop.confidential
    )
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")
