"""Numbers and encodings a JWT must not get away with, over real uvicorn → gateway →
httpbin and at the OAuth server's own endpoints: NaN and Infinity (not JSON, RFC 8259 §6),
numbers no double can hold, and base64url whose unused trailing bits are set (RFC 4648
§3.5: the same bytes under another spelling)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from jwt.algorithms import RSAAlgorithm

from gateway.policies import jwt as policy
from tests.support.auth_estate import identity_gateway
from tests.support.tokens import BUILTIN_ISSUER, claims, sign

ORDERS = "/experience/orders/v1"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
NOT_JSON = ["NaN", "Infinity", "-Infinity"]
TOO_BIG = ["1e400", "-1e400", str(10**400), str(-(10**400))]


@pytest.fixture(scope="module")
def env(tmp_path_factory, httpbin_url) -> Iterator[Any]:
    apis = [{"name": "orders", "upstream": {"targets": [httpbin_url]}, "policies": {"jwt": {}}}]
    with identity_gateway(tmp_path_factory.mktemp("numbers"), apis) as gw:

        async def create(registry):
            client, secret = await registry.create_client("numbers", ["orders:read"])
            return client.client_id, secret

        client = gw.registry(create)
        yield SimpleNamespace(gw=gw, client=client)


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(env: Any, header: str, payload: str) -> str:
    """header.payload as given (already base64url), signed with the built-in key."""
    key = env.gw.key
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(f"{header}.{payload}".encode(), key.private)
    return f"{header}.{payload}.{_b64(signature)}"


def _header(env: Any) -> str:
    key = env.gw.key
    return _b64(json.dumps({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}).encode())


def _with_number(env: Any, claim: str, literal: str, **extra: Any) -> str:
    """A token signed by the built-in server's key whose `claim` is `literal`, verbatim."""
    payload = claims(BUILTIN_ISSUER, **{"client_id": env.client[0], **extra})
    payload[claim] = "@NUMBER@"
    text = json.dumps(payload).replace('"@NUMBER@"', literal)
    return _signed(env, _header(env), _b64(text.encode()))


def _non_canonical(segment: str) -> str:
    """The same bytes with the unused low bits of the last character set."""
    unused = {2: 0b1111, 3: 0b11}[len(segment) % 4]
    last = ALPHABET[ALPHABET.index(segment[-1]) | unused]
    assert last != segment[-1]
    return segment[:-1] + last


def _call(env: Any, token: str) -> httpx.Response:
    return httpx.get(
        f"{env.gw.url}{ORDERS}/get", headers={"authorization": f"Bearer {token}"}, timeout=10
    )


def _assert_401(response: httpx.Response, description: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["detail"] == description


def test_a_well_formed_token_of_the_same_shape_passes(env):
    token = _with_number(env, "exp", str(int(claims(BUILTIN_ISSUER)["exp"])))
    assert _call(env, token).status_code == 200


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("literal", NOT_JSON)
def test_nan_and_infinity_are_not_json(env, claim, literal):
    _assert_401(_call(env, _with_number(env, claim, literal)), policy.MALFORMED)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("literal", TOO_BIG)
def test_numbers_beyond_a_double_are_401_not_500(env, claim, literal):
    _assert_401(_call(env, _with_number(env, claim, literal)), policy.BAD_CLAIMS)


def test_a_thousand_digit_exp_is_401(env):
    _assert_401(_call(env, _with_number(env, "exp", "9" * 1000)), policy.BAD_CLAIMS)


def test_non_canonical_base64url_is_refused_in_every_segment(env):
    payload = claims(BUILTIN_ISSUER, client_id=env.client[0])
    text = json.dumps(payload)
    while len(_b64(text.encode())) % 4 == 0:  # leave unused bits in the last character
        text += " "
    header, body = _header(env), _b64(text.encode())
    while len(header) % 4 == 0:
        key = env.gw.key
        raw = json.dumps({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}) + " "
        header = _b64(raw.encode())
    token = _signed(env, header, body)
    assert _call(env, token).status_code == 200
    head, payload_part, signature = token.split(".")
    assert len(signature) % 4 in (2, 3)  # 256 bytes of RS256 signature: 342 characters
    variants = [
        f"{head}.{payload_part}.{_non_canonical(signature)}",  # same signature bytes
        _signed(env, head, _non_canonical(payload_part)),
        _signed(env, _non_canonical(head), payload_part),
    ]
    for variant in variants:
        _assert_401(_call(env, variant), policy.MALFORMED)


def _oauth(env: Any, endpoint: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{env.gw.url}/oauth/{endpoint}", data={"token": token}, auth=env.client, timeout=10
    )


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("literal", [*NOT_JSON, *TOO_BIG])
def test_introspection_says_inactive_never_500(env, claim, literal):
    r = _oauth(env, "introspect", _with_number(env, claim, literal))
    assert r.status_code == 200, r.text
    assert r.json() == {"active": False}


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("literal", [*NOT_JSON, *TOO_BIG])
def test_revocation_of_such_a_token_is_200_never_500(env, claim, literal):
    r = _oauth(env, "revoke", _with_number(env, claim, literal))
    assert r.status_code == 200, r.text


def test_introspection_refuses_non_canonical_base64url(env):
    token = sign(env.gw.key, claims(BUILTIN_ISSUER, client_id=env.client[0]))
    assert _oauth(env, "introspect", token).json()["active"] is True
    head, payload, signature = token.split(".")
    r = _oauth(env, "introspect", f"{head}.{payload}.{_non_canonical(signature)}")
    assert r.json() == {"active": False}
