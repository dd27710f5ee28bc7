"""The jwt policy: config rules first, then behaviour over real uvicorn → gateway → httpbin,
with real signed tokens and a real IdP serving discovery and JWKS."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from gateway.policies import authorize
from gateway.policies import jwt as policy
from gateway.policies.jwt import IssuerConfig, JwtConfig
from tests.support.auth_estate import identity_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.tokens import (
    BUILTIN_ISSUER as BUILTIN,
)
from tests.support.tokens import (
    IdP,
    claims,
    ec_key,
    forge,
    rsa_key,
    sign,
)

ORDERS = "/experience/orders/v1"
# The operations of httpbin the tests call; the contract declares no security, so the
# jwt config decides who may call (a token with `scopes`, plus `operation_scopes`).
CONTRACT = """openapi: 3.1.0
info: {title: orders, version: "1"}
paths:
  /get: {get: {responses: {"200": {description: ok}}}}
  /headers: {get: {responses: {"200": {description: ok}}}}
  /post: {post: {responses: {"200": {description: ok}}}}
  /anything/{id}:
    get: {parameters: [{name: id, in: path, required: true, schema: {type: string}}],
          responses: {"200": {description: ok}}}
  /anything/{id}/more:
    get: {parameters: [{name: id, in: path, required: true, schema: {type: string}}],
          responses: {"200": {description: ok}}}
"""

# -- config -------------------------------------------------------------------------------


def test_default_trusts_the_builtin_issuer_only():
    config = JwtConfig.model_validate({})
    assert [i.builtin for i in config.issuers] == [True]
    assert config.optional is False


@pytest.mark.parametrize("alg", ["HS256", "HS512", "none"])
def test_hmac_and_none_are_refused_for_jwks_issuers(alg):
    with pytest.raises(ValidationError, match="key-confusion"):
        IssuerConfig.model_validate(
            {
                "jwks_uri": "https://idp/jwks",
                "issuer": "https://idp",
                "audience": "x",
                "algorithms": [alg],
            }
        )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"builtin": True, "jwks_uri": "https://idp/jwks"}, "exactly one"),
        ({}, "exactly one"),
        ({"jwks_uri": "https://idp/jwks", "audience": "x"}, "needs `issuer`"),
        ({"jwks_uri": "https://idp/jwks", "issuer": "https://idp"}, "need `audience`"),
        ({"jwks_uri": "http://idp.example.com/jwks", "issuer": "i", "audience": "x"}, "https"),
        ({"discovery_url": "https://idp/meta.json", "audience": "x"}, "set `issuer`"),
        ({"builtin": True, "leeway": 301}, "less than or equal"),
        ({"builtin": True, "shape": 1}, "Extra inputs"),
    ],
)
def test_issuer_config_rules(raw, message):
    with pytest.raises(ValidationError, match=message):
        IssuerConfig.model_validate(raw)


def test_issuer_is_derived_from_the_discovery_url():
    issuer = IssuerConfig.model_validate(
        {
            "discovery_url": "https://idp.example.com/t1/.well-known/openid-configuration",
            "audience": "a",
        }
    )
    assert issuer.expected_issuer == "https://idp.example.com/t1"
    assert issuer.audience == ["a"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"scopes": ['a"b']}, "scope tokens"),
        ({"operation_scopes": {"GET /x": ["a b"]}}, "scope tokens"),
        ({"issuers": []}, "at least 1"),
        ({"issuers": [{"builtin": True}, {"builtin": True}]}, "once"),
    ],
)
def test_policy_config_rules(raw, message):
    with pytest.raises(ValidationError, match=message):
        JwtConfig.model_validate(raw)


def test_config_errors_name_the_field(tmp_path):
    from gateway.config.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        make_config(
            tmp_path,
            [
                {
                    "name": "a",
                    "upstream": {"targets": ["http://127.0.0.1:1"]},
                    "policies": {
                        "jwt": {
                            "issuers": [
                                {
                                    "jwks_uri": "https://i/j",
                                    "issuer": "i",
                                    "audience": "a",
                                    "algorithms": ["HS256"],
                                }
                            ]
                        }
                    },
                }
            ],
        )
    assert "apis[0].policies.jwt.issuers" in str(error.value)


def test_error_descriptions_fit_rfc6750():
    allowed = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]+$")
    texts = [
        v
        for module in (policy, authorize)
        for k, v in vars(module).items()
        if k.isupper() and isinstance(v, str) and v.endswith(".")
    ]
    assert len(texts) > 10
    for text in texts:
        assert allowed.match(
            text.format(claim="e", scopes="a", operation="x", needs="n", sent="s")
        ), text


# -- behaviour ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    return {"idp": rsa_key("idp-1"), "idp2": rsa_key("idp-2")}


@contextmanager
def estate(tmp_path, httpbin_url, keys, jwt_config=None, **api) -> Iterator[Any]:
    """IdP on uvicorn, then the gateway on uvicorn forwarding to httpbin."""
    idp = IdP([keys["idp"]])
    with serve_asgi(idp.app) as idp_server:
        idp.url = idp_server.url
        if jwt_config is None:
            jwt_config = {
                "issuers": [
                    {"builtin": True},
                    {
                        "discovery_url": f"{idp.url}/.well-known/openid-configuration",
                        "audience": "tiergate-ext",
                        "algorithms": ["RS256", "PS256"],
                    },
                ],
                "scopes": ["orders:read"],
                "operation_scopes": {
                    "POST /post": ["orders:write"],
                    "GET /anything/{id}": ["things:read"],
                },
            }
        elif callable(jwt_config):
            jwt_config = jwt_config(idp)
        (tmp_path / "orders.yaml").write_text(CONTRACT)
        apis = [
            {
                "name": "orders",
                "contract": "orders.yaml",
                "upstream": {"targets": [httpbin_url]},
                "policies": {"jwt": jwt_config},
                **api,
            }
        ]
        with identity_gateway(tmp_path, apis) as gw:
            yield SimpleNamespace(
                idp=idp,
                gateway=gw.gateway,
                url=gw.url,
                key=gw.key,
                registry=gw.registry,
                call=partial(call, gw.url),
            )


def call(
    base: str,
    path: str,
    token: str | None = None,
    method: str = "GET",
    headers: dict | None = None,
    **kw: Any,
) -> httpx.Response:
    headers = dict(headers or {})
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{base}{ORDERS}{path}", headers=headers, timeout=10, **kw)


@pytest.fixture(scope="module")
def shared(tmp_path_factory, httpbin_url, keys):
    with estate(tmp_path_factory.mktemp("jwt"), httpbin_url, keys) as env:
        yield env


def builtin_token(env, **extra) -> str:
    """A token signed with the built-in server's own key (claims chosen by the test)."""
    return sign(env.key, claims(BUILTIN, **extra))


def idp_token(keys, env, key="idp", **extra) -> str:
    extra.setdefault("aud", "tiergate-ext")
    return sign(keys[key], claims(env.idp.issuer, **extra), typ="JWT")


def challenge(response: httpx.Response) -> dict[str, str]:
    header = response.headers["www-authenticate"]
    assert header.startswith('Bearer realm="tiergate"')
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def assert_invalid_token(response: httpx.Response, description: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    params = challenge(response)
    assert params["error"] == "invalid_token"
    assert params["error_description"] == description
    assert response.json()["detail"] == description


def test_builtin_token_reaches_upstream_with_identity_and_without_the_token(shared, keys):
    token = builtin_token(shared, tg_plan="gold", scope="orders:read extra")
    r = shared.call("/headers", token, headers={"x-before": "1", "x-after": "2"})
    assert r.status_code == 200, r.text
    sent = r.json()["headers"]
    assert (sent["X-Before"], sent["X-After"]) == ("1", "2")  # only the token is taken out
    assert sent["X-Consumer-Id"] == "client-1"
    assert sent["X-Client-Id"] == "client-1"
    assert sent["X-Consumer-Kind"] == "client"
    assert sent["X-Consumer-Plan"] == "gold"
    assert sent["X-Scopes"] == "extra orders:read"
    assert "Authorization" not in sent


def test_aud_may_be_a_list_holding_ours(shared, keys):
    assert shared.call("/get", builtin_token(shared, aud=["other", "tiergate"])).status_code == 200


def test_service_token_carries_its_api_and_tier(shared, keys):
    token = builtin_token(
        shared,
        tg_kind="service",
        tg_api="mobile",
        tg_tier="experience",
        sub="svc-mobile",
        client_id="svc-mobile",
    )
    sent = shared.call("/headers", token).json()["headers"]
    assert (sent["X-Consumer-Kind"], sent["X-Caller-Api"], sent["X-Caller-Tier"]) == (
        "service",
        "mobile",
        "experience",
    )


def test_service_token_without_api_is_refused(shared, keys):
    token = builtin_token(shared, tg_kind="service", tg_tier="process")
    assert_invalid_token(
        shared.call("/get", token), policy.MISSING_CLAIM.format(claim="tg_api/tg_tier")
    )


def test_no_token_is_401_without_an_error_code(shared):
    for headers in ({}, {"authorization": "Basic dTpw"}):
        r = shared.call("/get", headers=headers)
        assert r.status_code == 401
        # scope= says what a token needs (RFC 6750 §3); no error= since none was sent
        assert r.headers["www-authenticate"] == 'Bearer realm="tiergate", scope="orders:read"'
        assert r.headers["content-type"] == "application/problem+json"
        needs = authorize.NEEDS["bearer"]
        assert r.json()["detail"] == authorize.NO_CREDENTIALS.format(needs=needs)


def test_two_authorization_headers_are_invalid_request(shared, keys):
    token = builtin_token(shared)
    r = httpx.get(
        f"{shared.url}{ORDERS}/get",
        timeout=10,
        headers=[("authorization", f"Bearer {token}"), ("authorization", "Bearer x")],
    )
    assert r.status_code == 400
    assert challenge(r)["error"] == "invalid_request"


def _rejections(keys, env, attacker_url):
    b = env.key
    now = int(time.time())
    good = claims(BUILTIN)
    header = {"alg": "RS256", "typ": "JWT", "kid": "idp-1"}
    attacker, impostor = rsa_key("evil-1"), rsa_key("idp-1")
    ext = claims(env.idp.issuer, aud="tiergate-ext")
    hostile = partial(sign, attacker, ext, "JWT")
    return [
        (
            "alg none",
            forge({"alg": "none", "typ": "at+jwt", "kid": "gw-1"}, good),
            policy.BAD_ALGORITHM,
        ),
        (
            "HS256 keyed with the published RSA key",
            forge(
                {**header, "alg": "HS256"},
                claims(env.idp.issuer, aud="tiergate-ext"),
                keys["idp"].public_pem(),
            ),
            policy.BAD_ALGORITHM,
        ),
        ("expired", sign(b, claims(BUILTIN, exp=now - 120)), policy.EXPIRED),
        ("not yet valid", sign(b, claims(BUILTIN, nbf=now + 600)), policy.NOT_YET_VALID),
        ("untrusted iss", sign(b, claims("https://other.example")), policy.UNTRUSTED_ISSUER),
        ("wrong aud", sign(b, claims(BUILTIN, aud="someone-else")), policy.WRONG_AUDIENCE),
        (
            "missing aud",
            sign(b, claims(BUILTIN, aud=None)),
            policy.MISSING_CLAIM.format(claim="aud"),
        ),
        (
            "missing exp",
            sign(b, {k: v for k, v in good.items() if k != "exp"}),
            policy.MISSING_CLAIM.format(claim="exp"),
        ),
        (
            "missing sub",
            sign(b, {k: v for k, v in good.items() if k != "sub"}),
            policy.MISSING_CLAIM.format(claim="sub"),
        ),
        (
            "built-in token without jti",
            sign(b, {k: v for k, v in good.items() if k != "jti"}),
            policy.MISSING_CLAIM.format(claim="jti"),
        ),
        ("garbage", "not-a-jwt", policy.MALFORMED),
        ("oversized", sign(b, {**good, "pad": "x" * 9000}), policy.MALFORMED),
        ("critical extension", sign(b, good, crit=["exp"]), policy.MALFORMED),
        ("exp not a number", sign(b, {**good, "exp": "soon"}), policy.BAD_CLAIMS),
        ("issued in the future", sign(b, claims(BUILTIN, iat=now + 600)), policy.NOT_YET_VALID),
        ("aud list without us", sign(b, claims(BUILTIN, aud=["a", "b"])), policy.WRONG_AUDIENCE),
        ("three segments of nothing", "a.b.c", policy.MALFORMED),
        ("unknown kid (builtin)", sign(ec_key("gw-9"), good), policy.UNKNOWN_KEY),
        ("RS256 claiming the EC key's kid", sign(rsa_key("gw-1"), good), policy.UNKNOWN_KEY),
        ("unknown kid (external)", idp_token(keys, env, key="idp2"), policy.UNKNOWN_KEY),
        ("bad signature", _tamper(sign(b, good)), policy.BAD_SIGNATURE),
        ("id token type", sign(b, good, typ="JWT"), policy.WRONG_TYPE),
        ("jku to attacker", hostile(jku=f"{attacker_url}/jwks"), policy.UNKNOWN_KEY),
        ("x5u to attacker", hostile(x5u=f"{attacker_url}/x5u"), policy.UNKNOWN_KEY),
        # The embedded key claims a published kid: verified with the published key, it fails.
        ("embedded jwk", sign(impostor, ext, typ="JWT", jwk=impostor.jwk()), policy.BAD_SIGNATURE),
    ]


def _tamper(token: str) -> str:
    head, _, signature = token.split(".")
    forged = forge({}, {**claims(BUILTIN), "sub": "admin"}).split(".")[1]
    return f"{head}.{forged}.{signature}"


def test_every_bad_token_is_401_invalid_token(shared, keys):
    attacker_idp = IdP([rsa_key("evil-1")])
    with serve_asgi(attacker_idp.app) as attacker:
        attacker_idp.url = attacker.url
        for name, token, description in _rejections(keys, shared, attacker.url):
            r = shared.call("/get", token)
            assert r.status_code == 401, name
            assert_invalid_token(r, description)
    assert attacker_idp.jwks_fetches == 0  # never fetched from token content


def insufficient(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    params = challenge(response)
    assert params["error"] == "insufficient_scope"
    assert response.headers["content-type"] == "application/problem+json"
    if response.request.method != "HEAD":
        assert response.json()["required_scopes"] == params["scope"].split()
    return params["scope"]


def test_api_wide_scope_is_required(shared, keys):
    assert insufficient(shared.call("/get", builtin_token(shared, scope="other"))) == "orders:read"
    assert insufficient(shared.call("/get", builtin_token(shared, scope=None))) == "orders:read"


def test_operation_scopes(shared, keys):
    reader = builtin_token(shared, scope="orders:read")
    writer = builtin_token(shared, scope="orders:read orders:write")
    assert shared.call("/post", reader, method="POST", json={}).status_code == 403
    assert insufficient(shared.call("/post", reader, "POST", json={})) == "orders:read orders:write"
    assert shared.call("/post", writer, method="POST", json={"a": 1}).json()["json"] == {"a": 1}
    # Encoded spellings of the same path need the same scope.
    assert shared.call("/p%6Fst", reader, method="POST", json={}).status_code == 403
    assert shared.call("/post/", reader, method="POST", json={}).status_code == 403
    # Templates: GET /anything/{id} needs things:read; other paths do not.
    assert insufficient(shared.call("/anything/42", reader)) == "orders:read things:read"
    assert (
        insufficient(shared.call("/anything/42", reader, method="HEAD"))
        == "orders:read things:read"
    )
    both = builtin_token(shared, scope="orders:read things:read")
    assert shared.call("/anything/42", both).status_code == 200
    assert shared.call("/anything/42/more", reader).status_code == 200


def test_external_issuer_by_discovery(shared, keys):
    token = idp_token(
        keys,
        shared,
        sub="alice",
        client_id="spa",
        tg_kind="service",
        tg_api="customers",
        tg_tier="system",
        tg_plan="gold",
    )
    r = shared.call("/headers", token)
    assert r.status_code == 200, r.text
    sent = r.json()["headers"]
    assert (sent["X-Consumer-Id"], sent["X-Client-Id"], sent["X-Consumer-Kind"]) == (
        "alice",
        "spa",
        "user",
    )
    # An outside IdP cannot mint a service identity or a plan: tg_* claims are ignored.
    assert "X-Caller-Api" not in sent and "X-Consumer-Plan" not in sent
    # Tokens of this issuer are for its own audience and algorithms only.
    assert_invalid_token(
        shared.call("/get", idp_token(keys, shared, aud="tiergate")), policy.WRONG_AUDIENCE
    )
    ps = sign(rsa_key("idp-1", "PS256"), claims(shared.idp.issuer, aud="tiergate-ext"), typ=None)
    # The published JWK declares alg RS256: a PS256 signature may not use it.
    assert_invalid_token(shared.call("/get", ps), policy.UNKNOWN_KEY)


def _client_token(env, scope: str = "orders:read") -> tuple[str, tuple[str, str]]:
    """A real token from the built-in server's /oauth/token (client_credentials)."""

    async def create(registry):
        client, secret = await registry.create_client("shop-app", scope.split(), plan="gold")
        return client.client_id, secret

    credentials = env.registry(create)
    r = httpx.post(
        f"{env.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=credentials,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"], credentials


def test_a_real_client_token_is_cached_and_revocation_is_checked_on_every_hit(shared):
    token, credentials = _client_token(shared)
    r = shared.call("/headers", token)
    assert r.status_code == 200, r.text
    assert r.json()["headers"]["X-Consumer-Plan"] == "gold"
    jwt_policy = shared.gateway.table.routes[0].chain[0]
    assert token in jwt_policy.cache
    assert shared.call("/get", token).status_code == 200
    revoked = httpx.post(
        f"{shared.url}/oauth/revoke", data={"token": token}, auth=credentials, timeout=10
    )
    assert revoked.status_code == 200
    assert_invalid_token(shared.call("/get", token), policy.REVOKED)
    assert token not in jwt_policy.cache
    assert_invalid_token(shared.call("/get", token), policy.REVOKED)  # and on a fresh verify


def test_revocation_by_another_node_is_honoured_within_5s(shared):
    payload = claims(BUILTIN)
    token = sign(shared.key, payload)
    assert shared.call("/get", token).status_code == 200

    async def revoke(registry):  # what /oauth/revoke on another gateway node does
        await registry.revoke_token(payload["jti"], payload["exp"])

    shared.registry(revoke)
    started = time.monotonic()
    while shared.call("/get", token).status_code == 200:
        assert time.monotonic() - started < 5, "revocation not seen within 5 s"
        time.sleep(0.1)
    assert_invalid_token(shared.call("/get", token), policy.REVOKED)


def test_cached_token_stops_working_at_exp(tmp_path, httpbin_url, keys):
    def config(idp):
        return {"issuers": [{"builtin": True, "leeway": 0}]}

    with estate(tmp_path, httpbin_url, keys, config) as env:
        exp = int(time.time()) + 2
        token = sign(env.key, claims(BUILTIN, exp=exp))
        assert env.call("/get", token).status_code == 200
        assert token in env.gateway.table.routes[0].chain[0].cache
        time.sleep(max(0.0, exp - time.time()) + 0.05)
        assert_invalid_token(env.call("/get", token), policy.EXPIRED)


def _jwks_config(cooldown: float):
    def config(idp):
        return {
            "issuers": [
                {
                    "jwks_uri": f"{idp.url}/jwks",
                    "issuer": idp.url,
                    "audience": "tiergate-ext",
                    "refetch_cooldown": cooldown,
                }
            ]
        }

    return config


def test_jwks_rotation_picks_up_a_new_kid_once(tmp_path, httpbin_url, keys):
    with estate(tmp_path, httpbin_url, keys, _jwks_config(0.5)) as env:
        old_token = idp_token(keys, env)
        assert env.call("/get", old_token).status_code == 200
        assert env.idp.jwks_fetches == 1
        env.idp.keys = [keys["idp"], keys["idp2"]]  # the IdP rotates in a new key
        time.sleep(0.6)
        for _ in range(5):
            assert env.call("/get", idp_token(keys, env, key="idp2")).status_code == 200
        assert env.call("/get", old_token).status_code == 200  # the old key overlaps
        assert env.idp.jwks_fetches == 2
        # The IdP withdraws the old key; the next refetch (another unknown kid, after the
        # cooldown) learns it, and the old key's cached tokens stop at once.
        env.idp.keys = [keys["idp2"]]
        time.sleep(0.6)
        unknown = sign(rsa_key("idp-3"), claims(env.idp.issuer, aud="tiergate-ext"), typ=None)
        assert_invalid_token(env.call("/get", unknown), policy.UNKNOWN_KEY)
        assert env.idp.jwks_fetches == 3
        assert_invalid_token(env.call("/get", old_token), policy.UNKNOWN_KEY)
        assert env.call("/get", idp_token(keys, env, key="idp2")).status_code == 200


def test_a_storm_of_random_kids_fetches_the_jwks_at_most_once(tmp_path, httpbin_url, keys):
    cooldown = 1.5
    with estate(tmp_path, httpbin_url, keys, _jwks_config(cooldown)) as env:
        assert env.call("/get", idp_token(keys, env)).status_code == 200
        assert env.idp.jwks_fetches == 1
        fake = rsa_key("x")
        tokens = []
        for _ in range(200):
            fake.kid = uuid.uuid4().hex
            tokens.append(sign(fake, claims(env.idp.issuer, aud="tiergate-ext"), typ=None))

        async def storm(batch: list[str]) -> list[int]:
            async with httpx.AsyncClient(timeout=10) as client:

                async def one(token: str) -> int:
                    r = await client.get(
                        f"{env.url}{ORDERS}/get", headers={"authorization": f"Bearer {token}"}
                    )
                    return r.status_code

                return await asyncio.gather(*(one(t) for t in batch))

        time.sleep(cooldown + 0.05)  # the cooldown after the first fetch is over
        started = time.monotonic()
        assert set(asyncio.run(storm(tokens[:100]))) == {401}
        assert set(asyncio.run(storm(tokens[100:]))) == {401}
        elapsed = time.monotonic() - started
        refetches = env.idp.jwks_fetches - 1
        assert 1 <= refetches <= 1 + int(elapsed / cooldown), (refetches, elapsed)
        assert env.call("/get", idp_token(keys, env)).status_code == 200


def test_idp_down_keeps_the_last_good_keys(tmp_path, httpbin_url, keys):
    with estate(tmp_path, httpbin_url, keys, _jwks_config(0.2)) as env:
        assert env.call("/get", idp_token(keys, env)).status_code == 200
        env.idp.down = True
        time.sleep(0.3)
        # An unknown kid makes the policy refetch; the fetch fails...
        assert_invalid_token(env.call("/get", idp_token(keys, env, key="idp2")), policy.UNKNOWN_KEY)
        assert env.idp.jwks_fetches == 2
        # ...and known keys still verify fresh tokens.
        assert env.call("/get", idp_token(keys, env)).status_code == 200


def test_idp_down_from_the_start_is_503_not_a_storm(tmp_path, httpbin_url, keys):
    with estate(tmp_path, httpbin_url, keys, _jwks_config(30)) as env:
        env.idp.down = True
        for _ in range(5):
            r = env.call("/get", idp_token(keys, env))
            assert r.status_code == 503
            assert r.json()["detail"] == policy.KEYS_UNAVAILABLE
        assert env.idp.jwks_fetches == 1


def test_optional_lets_anonymous_requests_through_but_not_bad_tokens(tmp_path, httpbin_url, keys):
    with estate(tmp_path, httpbin_url, keys, lambda idp: {"optional": True}) as env:
        r = env.call("/headers")
        assert r.status_code == 200
        assert "X-Consumer-Id" not in r.json()["headers"]
        assert_invalid_token(env.call("/get", "junk"), policy.MALFORMED)


def test_a_discovery_document_naming_another_issuer_is_not_trusted(tmp_path, httpbin_url, keys):
    def config(idp):
        discovery = f"{idp.url}/.well-known/openid-configuration"
        issuer = {"discovery_url": discovery, "issuer": "https://elsewhere", "audience": "x"}
        return {"issuers": [issuer]}

    with estate(tmp_path, httpbin_url, keys, config) as env:
        token = sign(keys["idp"], claims("https://elsewhere", aud="x"), typ=None)
        r = env.call("/get", token)
        assert r.status_code == 503
        assert (env.idp.discovery_fetches, env.idp.jwks_fetches) == (1, 0)


def test_an_authlib_client_calls_the_api_end_to_end(shared):
    """A real OAuth2 client: authlib's AsyncOAuth2Client, client_credentials, then the API."""
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    async def create(registry):
        client, secret = await registry.create_client("mobile-app", ["orders:read"])
        return client.client_id, secret

    client_id, secret = shared.registry(create)

    async def run() -> httpx.Response:
        async with AsyncOAuth2Client(client_id, secret, scope="orders:read", timeout=10) as client:
            await client.fetch_token(f"{shared.url}/oauth/token", grant_type="client_credentials")
            return await client.get(f"{shared.url}{ORDERS}/headers")

    r = asyncio.run(run())
    assert r.status_code == 200, r.text
    sent = r.json()["headers"]
    assert (sent["X-Client-Id"], sent["X-Scopes"]) == (client_id, "orders:read")
    assert "Authorization" not in sent


async def test_the_token_is_taken_out_of_a_copy_of_the_request_headers():
    """The policy answers from its cache and forwards the other headers in their order;
    the client's own header list (the ASGI scope's) is left as it was."""
    from collections import OrderedDict

    from gateway.context import Identity

    jwt_policy = object.__new__(policy.JwtPolicy)
    issuer: Any = SimpleNamespace(publishes=lambda kid: True)
    verified = policy._Verified(Identity("client", "c-1"), time.time() + 60, None, issuer, None)
    jwt_policy.cache = OrderedDict({"tok": verified})
    jwt_policy.revocations, jwt_policy.hide, jwt_policy.cache_size = None, True, 10
    scope_headers = [(b"a", b"1"), (b"authorization", b"Bearer  tok "), (b"b", b"2")]
    ctx = SimpleNamespace(headers=scope_headers, credentials=None, auth_error=None)
    assert await jwt_policy(ctx) is None  # type: ignore[arg-type]
    assert ctx.headers == [(b"a", b"1"), (b"b", b"2")]
    assert scope_headers[1] == (b"authorization", b"Bearer  tok ")
    assert ctx.credentials == {"bearer": verified.identity}
