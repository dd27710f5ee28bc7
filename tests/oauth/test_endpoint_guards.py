"""The client-authenticating endpoints against an attacker: introspection and revocation
are limited per client IP like the token endpoint, and a Basic header that is not
base64 of UTF-8 `client_id:secret` is a 401 invalid_client (RFC 6749 §5.2), never a 500."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from tests.oauth.helpers import provision_client, token_request
from tests.support.identity import running_gateway

ENDPOINTS = ["token", "introspect", "revoke"]


def _form(endpoint: str) -> dict[str, str]:
    return {"grant_type": "client_credentials"} if endpoint == "token" else {"token": "x.y.z"}


def test_introspect_and_revoke_share_a_per_ip_limit_apart_from_the_token_endpoint(
    tmp_path, registry_url
):
    limits = {"token_endpoint_limit": "3/minute", "introspection_endpoint_limit": "4/minute"}
    with running_gateway(tmp_path, registry_url, rate_limiting=limits) as gw:
        client = provision_client(registry_url, f"guard-{uuid.uuid4().hex[:8]}", ["a"])
        wrong = (client[0], "guessed-secret")
        for endpoint in ["introspect", "revoke", "introspect", "revoke"]:
            r = httpx.post(f"{gw.url}/oauth/{endpoint}", data={"token": "t"}, auth=wrong)
            assert r.status_code == 401, (endpoint, r.text)
        for endpoint in ["introspect", "revoke"]:
            r = httpx.post(f"{gw.url}/oauth/{endpoint}", data={"token": "t"}, auth=client)
            assert r.status_code == 429, (endpoint, r.text)  # the right secret too: no oracle
            assert r.headers["content-type"] == "application/problem+json"
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["ratelimit-policy"] == '"introspection/minute";q=4;w=60'
        assert token_request(gw.url, *client).status_code == 200  # a counter of its own
        assert httpx.get(f"{gw.url}/.well-known/jwks.json").status_code == 200


def test_the_introspection_limit_can_be_turned_off(tmp_path, registry_url):
    limits = {"introspection_endpoint_limit": None}
    with running_gateway(tmp_path, registry_url, rate_limiting=limits) as gw:
        with httpx.Client() as http:
            codes = {
                http.post(f"{gw.url}/oauth/introspect", data={"token": "t"}).status_code
                for _ in range(130)
            }
        assert codes == {401}


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


BAD_BASIC: dict[str, str | bytes] = {
    "latin-1 id": _basic(b"caf\xe9:secret"),
    "invalid utf-8": _basic(b"\xff\xfe\xfd:secret"),
    "invalid utf-8 secret": _basic(b"client:\xc3\x28"),
    "not base64": "Basic !!!not-base64!!!",
    "base64 with junk": "Basic " + base64.b64encode(b"a:b").decode() + "*",
    "no colon": _basic(b"only-a-client-id"),
    "padding only": "Basic ====",
    "non-ASCII header bytes": b"Basic caf\xe9:secret",
    "empty id": _basic(b":secret"),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_malformed_basic_header_is_401_invalid_client(tmp_path, registry_url, endpoint):
    with running_gateway(tmp_path, registry_url) as gw, httpx.Client() as http:
        for name, header in BAD_BASIC.items():
            r = http.post(
                f"{gw.url}/oauth/{endpoint}",
                data=_form(endpoint),
                headers={"authorization": header},
            )
            assert r.status_code == 401, (name, r.status_code, r.text)
            assert r.json()["error"] == "invalid_client", name
            assert r.headers["www-authenticate"].startswith("Basic realm="), name
            assert r.headers["cache-control"] == "no-store", name


def test_a_percent_encoded_basic_client_id_still_works(tmp_path, registry_url):
    """RFC 6749 §2.3.1: id and secret are form-encoded before base64; ours are plain
    ASCII, and the stricter parsing must not refuse them."""
    with running_gateway(tmp_path, registry_url) as gw:
        client = provision_client(registry_url, f"basic-{uuid.uuid4().hex[:8]}", ["a"])
        header = _basic(f"{client[0]}:{client[1]}".encode())
        r = httpx.post(
            f"{gw.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"authorization": header},
        )
        assert r.status_code == 200, r.text
