"""RFC 7662 introspection and RFC 7009 revocation, and revocation reaching the cache."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.oauth.helpers import provision_client, token_request
from tests.support.identity import running_gateway


@pytest.fixture
def gw(tmp_path, registry_url):
    with running_gateway(tmp_path, registry_url) as running:
        yield running


def _client(registry_url):
    return provision_client(registry_url, f"intro-{uuid.uuid4().hex[:8]}", ["a", "b"])


def _introspect(gw, auth, token):
    return httpx.post(f"{gw.url}/oauth/introspect", data={"token": token}, auth=auth)


def test_introspection_active_then_inactive_after_revocation(gw, registry_url):
    client = _client(registry_url)
    token = token_request(gw.url, *client, scope="a").json()["access_token"]
    r = _introspect(gw, client, token)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["active"] is True
    assert body["client_id"] == client[0] and body["scope"] == "a"
    assert body["token_type"] == "Bearer" and body["exp"] > time.time()

    r = httpx.post(
        f"{gw.url}/oauth/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        auth=client,
    )
    assert r.status_code == 200
    assert _introspect(gw, client, token).json() == {"active": False}
    assert gw.gateway.services.revocations.is_revoked(body["jti"])


def test_introspection_of_garbage_and_foreign_tokens_is_inactive(gw, registry_url):
    client = _client(registry_url)
    for token in ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."]:
        assert _introspect(gw, client, token).json() == {"active": False}


def test_introspection_requires_client_authentication(gw, registry_url):
    client = _client(registry_url)
    token = token_request(gw.url, *client).json()["access_token"]
    r = httpx.post(f"{gw.url}/oauth/introspect", data={"token": token})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    r = _introspect(gw, (client[0], "wrong"), token)
    assert r.status_code == 401
    r = httpx.post(f"{gw.url}/oauth/introspect", data={}, auth=client)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


def test_revoking_an_unknown_token_is_200(gw, registry_url):
    client = _client(registry_url)
    r = httpx.post(f"{gw.url}/oauth/revoke", data={"token": "unknown"}, auth=client)
    assert r.status_code == 200
    r = httpx.post(f"{gw.url}/oauth/revoke", data={"token": "unknown"})
    assert r.status_code == 401


def test_a_client_cannot_revoke_another_clients_token(gw, registry_url):
    owner, other = _client(registry_url), _client(registry_url)
    token = token_request(gw.url, *owner).json()["access_token"]
    r = httpx.post(f"{gw.url}/oauth/revoke", data={"token": token}, auth=other)
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")
    assert _introspect(gw, owner, token).json()["active"] is True


def test_revocation_reaches_another_node_within_5_seconds(tmp_path, registry_url):
    """Two gateways on one registry: revoke on A, B's cache refuses the jti in < 5 s."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_gateway(tmp_path / "a", registry_url) as a,
        running_gateway(tmp_path / "b", registry_url) as b,
    ):
        client = _client(registry_url)
        token = token_request(a.url, *client).json()["access_token"]
        jti = _introspect(b, client, token).json()["jti"]
        revoked_at = time.monotonic()
        assert httpx.post(f"{a.url}/oauth/revoke", data={"token": token}, auth=client).is_success
        while not b.gateway.services.revocations.is_revoked(jti):
            assert time.monotonic() - revoked_at < 5, "revocation did not reach node B in 5 s"
            time.sleep(0.1)
        assert _introspect(b, client, token).json() == {"active": False}
