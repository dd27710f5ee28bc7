"""POST /oauth/token (client_credentials) against a gateway on real uvicorn."""

from __future__ import annotations

import base64
import uuid

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.oauth.helpers import provision_client, token_request, verify_with_served_jwks
from tests.support.identity import running_gateway


@pytest.fixture
def gw(tmp_path, registry_url):
    with running_gateway(tmp_path, registry_url) as running:
        yield running


@pytest.fixture
def client(gw, registry_url):
    name = f"app-{uuid.uuid4().hex[:8]}"
    return provision_client(registry_url, name, ["orders:read", "orders:write"])


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_client_gets_a_verifiable_rfc9068_token(gw, client, method):
    client_id, secret = client
    async with AsyncOAuth2Client(
        client_id, secret, scope="orders:read", token_endpoint_auth_method=method
    ) as oauth:
        token = await oauth.fetch_token(f"{gw.url}/oauth/token", grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert "refresh_token" not in token
    assert token["scope"] == "orders:read"
    header = jwt.get_unverified_header(token["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256" and header["kid"]
    claims = verify_with_served_jwks(gw.url, token["access_token"])
    assert claims["iss"] == "http://127.0.0.1:8080"
    assert claims["aud"] == "tiergate"
    assert claims["client_id"] == client_id
    assert claims["sub"].startswith("app-")
    assert claims["scope"] == "orders:read"
    assert claims["tg_kind"] == "client"
    assert claims["exp"] - claims["iat"] == token["expires_in"] == 600
    assert len(claims["jti"]) >= 16


def test_default_scope_is_all_client_scopes_and_response_is_not_cached(gw, client):
    r = token_request(gw.url, *client)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    assert r.json()["scope"] == "orders:read orders:write"


def test_es256_keys_are_supported(tmp_path, registry_url):
    if registry_url.startswith("postgresql"):
        pytest.skip("one backend is enough: the key type does not touch the database")
    with running_gateway(tmp_path, registry_url, oauth={"signing_alg": "ES256"}) as gw:
        client_id, secret = provision_client(registry_url, "es-app", ["a"])
        token = token_request(gw.url, client_id, secret).json()["access_token"]
        assert jwt.get_unverified_header(token)["alg"] == "ES256"
        assert verify_with_served_jwks(gw.url, token)["client_id"] == client_id


def _error(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) <= {"error", "error_description"}
    return str(body["error"])


def test_wrong_secret_is_invalid_client_401_with_basic_challenge(gw, client):
    client_id, _secret = client
    r = token_request(gw.url, client_id, "not-the-secret")
    assert r.status_code == 401
    assert _error(r) == "invalid_client"
    assert r.headers["www-authenticate"].startswith('Basic realm="tiergate"')
    assert "not-the-secret" not in r.text


def test_unknown_client_and_post_auth_failure_are_invalid_client(gw, client):
    r = token_request(gw.url, "cl_unknown", "whatever")
    assert (r.status_code, _error(r)) == (401, "invalid_client")
    r = httpx.post(
        f"{gw.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client[0], "client_secret": "x"},
    )
    assert (r.status_code, _error(r)) == (401, "invalid_client")
    assert "www-authenticate" in r.headers


def test_no_client_authentication_is_invalid_client(gw):
    r = httpx.post(f"{gw.url}/oauth/token", data={"grant_type": "client_credentials"})
    assert (r.status_code, _error(r)) == (401, "invalid_client")


def test_both_auth_methods_at_once_is_invalid_request(gw, client):
    client_id, secret = client
    r = httpx.post(
        f"{gw.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        auth=(client_id, secret),
    )
    assert (r.status_code, _error(r)) == (400, "invalid_request")


def test_basic_credentials_are_form_urldecoded(gw, registry_url):
    client_id, secret = provision_client(registry_url, f"enc-{uuid.uuid4().hex[:6]}", ["a"])
    raw = base64.b64encode(f"{client_id}:{secret.replace('-', '%2D')}".encode()).decode()
    r = httpx.post(
        f"{gw.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "u", "password": "p"}, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, "unsupported_grant_type"),
        # a client registered for client_credentials only
        ({"grant_type": "authorization_code", "code": "x"}, "unauthorized_client"),
        ({"grant_type": "refresh_token", "refresh_token": "x"}, "unauthorized_client"),
        ({"grant_type": "client_credentials", "scope": "orders:delete"}, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": 'orders:read "x'}, "invalid_scope"),
    ],
)
def test_rfc6749_error_codes(gw, client, form, error):
    r = httpx.post(f"{gw.url}/oauth/token", data=form, auth=client)
    assert (r.status_code, _error(r)) == (400, error)


def test_repeated_parameter_and_wrong_content_type_are_invalid_request(gw, client):
    r = httpx.post(
        f"{gw.url}/oauth/token",
        content="grant_type=client_credentials&scope=a&scope=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=client,
    )
    assert (r.status_code, _error(r)) == (400, "invalid_request")
    r = httpx.post(f"{gw.url}/oauth/token", json={"grant_type": "client_credentials"}, auth=client)
    assert (r.status_code, _error(r)) == (400, "invalid_request")


def test_client_without_the_grant_is_unauthorized_client(gw, registry_url):
    client = provision_client(
        registry_url, f"nogrant-{uuid.uuid4().hex[:6]}", ["a"], grant_types=()
    )
    r = token_request(gw.url, *client)
    assert (r.status_code, _error(r)) == (400, "unauthorized_client")


def test_get_is_not_allowed(gw):
    r = httpx.get(f"{gw.url}/oauth/token")
    assert r.status_code == 405


def test_metadata_per_rfc8414(gw):
    r = httpx.get(f"{gw.url}/.well-known/oauth-authorization-server")
    meta = r.json()
    assert meta["issuer"] == "http://127.0.0.1:8080"
    assert meta["token_endpoint"] == "http://127.0.0.1:8080/oauth/token"
    assert meta["jwks_uri"].endswith("/.well-known/jwks.json")
    assert meta["grant_types_supported"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert "implicit" not in meta["grant_types_supported"]
    assert "password" not in meta["grant_types_supported"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_endpoint"] == "http://127.0.0.1:8080/oauth/authorize"
    assert isinstance(meta["scopes_supported"], list)
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert meta["introspection_endpoint"].endswith("/oauth/introspect")
    assert meta["revocation_endpoint"].endswith("/oauth/revoke")
    jwks = httpx.get(meta["jwks_uri"].replace("http://127.0.0.1:8080", gw.url)).json()
    assert jwks["keys"] and all("d" not in key and "p" not in key for key in jwks["keys"])
