"""Policy response-cache: config validation, then caching behaviour over real sockets."""

import json
from urllib.parse import parse_qsl

import httpx
import pytest

from gateway.admin import create_admin_app
from gateway.config.errors import ConfigError
from gateway.context import Identity
from gateway.listener import listener_options
from gateway.pipeline import PRIORITY, PolicySpec
from gateway.policies import POLICIES
from gateway.policies.response_cache import ENTRY_TOO_BIG
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi


class Origin:
    """Upstream whose caching headers come from the query: ?cc=max-age%3D60&vary=...&etag=..."""

    def __init__(self):
        self.calls = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.calls += 1
        query = dict(parse_qsl(scope["query_string"].decode()))
        headers = dict(scope["headers"])
        body = json.dumps(
            {
                "call": self.calls,
                "lang": headers.get(b"accept-language", b"").decode(),
                "pad": "x" * int(query.get("pad", "0")),
            }
        ).encode()
        out = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        for name in ("cc", "vary", "etag", "age", "set-cookie"):
            if name in query:
                out.append(
                    # latin-1: a test can send any byte an upstream might (obs-text)
                    (
                        b"cache-control" if name == "cc" else name.encode(),
                        query[name].encode("latin-1"),
                    )
                )
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body})


class _TestIdentity:
    """Stands in for the auth policies (another branch): Authorization: Consumer <id>."""

    async def __call__(self, ctx):
        value = ctx.header(b"authorization")
        if value and value.startswith(b"Consumer "):
            ctx.identity = Identity(kind="partner", consumer_id=value[9:].decode())


@pytest.fixture
def identity_policy(monkeypatch):
    from pydantic import BaseModel

    class Empty(BaseModel):
        pass

    spec = PolicySpec("test-identity", 800, Empty, lambda config, ctx: _TestIdentity())
    monkeypatch.setitem(POLICIES, "test-identity", spec)
    monkeypatch.setitem(PRIORITY, "test-identity", 800)


ADMIN = {"Authorization": "Bearer s3cret-admin"}


def _config(tmp_path, url, policy, extra=None):
    policies = {"response-cache": policy, **(extra or {})}
    api = {"name": "shop", "upstream": {"targets": [url]}, "policies": policies}
    return make_config(tmp_path, [api], admin_token="s3cret-admin")


def test_config_is_validated(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", {"max_bytes": 2048, "max_entry_bytes": 4096})
    text = str(error.value)
    assert (
        f"apis[0].policies.response-cache: {ENTRY_TOO_BIG.format(entry=4096, total=2048)}" in text
    )
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", {"ttl": 5})
    assert "apis[0].policies.response-cache.ttl: unknown key" in str(error.value)


@pytest.fixture
def served(tmp_path, request):
    policy = getattr(request, "param", {})
    origin = Origin()
    with serve_asgi(origin, lifespan="off") as up:
        extra = {"test-identity": {}} if "test-identity" in POLICIES else None
        gateway = build_gateway(_config(tmp_path, up.url, policy, extra))
        options = listener_options(gateway.config.listeners.public)
        with (
            serve_asgi(gateway, **options) as gw,
            serve_asgi(create_admin_app(gateway), lifespan="off") as admin,
        ):
            yield f"{gw.url}/experience/shop/v1/items", origin, admin.url, gateway


def test_fresh_responses_are_served_from_cache_with_age(served):
    url, origin, _, _ = served
    q = {"cc": "public, max-age=60", "age": "30"}
    first = httpx.get(url, params=q)
    second = httpx.get(url, params=q)
    head = httpx.head(url, params=q)
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert second.json() == first.json() and origin.calls == 1
    assert int(second.headers["age"]) >= 30
    assert head.status_code == 200 and head.headers["x-cache"] == "HIT" and head.content == b""
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert httpx.get(url, params=q, headers={"Cache-Control": "no-store"}).json()["call"] == 2


@pytest.mark.parametrize(
    "query",
    [
        {"cc": "no-store"},
        {"cc": "private, max-age=60"},
        {"cc": "no-cache, max-age=60"},
        {},  # no freshness given and default_ttl 0
        {"cc": "max-age=60", "vary": "*"},
        {"cc": "max-age=60", "set-cookie": "s=1"},
        {"cc": "max-age=60", "age": "61"},  # already stale
    ],
)
def test_uncacheable_responses_are_not_served_from_cache(served, query):
    url, _origin, _, _ = served
    assert [httpx.get(url, params=query).json()["call"] for _ in range(2)] == [1, 2]


@pytest.mark.parametrize("query", [{"cc": "max-age=\u00b2"}, {"cc": "max-age=60", "age": "\u00b3"}])
def test_a_superscript_digit_from_the_upstream_is_not_a_number(served, query):
    """Latin-1 superscripts are digits to str.isdigit() but not to int(): an upstream
    sending one in max-age or Age must not turn every answer into an error."""
    url, _origin, _, _ = served
    answers = [httpx.get(url, params=query) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["call"] == 1


def test_vary_keeps_variants_apart(served):
    url, origin, _, _ = served
    q = {"cc": "max-age=60", "vary": "Accept-Language"}
    fr = [httpx.get(url, params=q, headers={"Accept-Language": "fr"}).json() for _ in range(2)]
    de = [httpx.get(url, params=q, headers={"Accept-Language": "de"}).json() for _ in range(2)]
    assert [r["lang"] for r in fr + de] == ["fr", "fr", "de", "de"]
    assert origin.calls == 2


def test_etag_revalidation_is_answered_304_from_cache(served):
    url, origin, _, _ = served
    q = {"cc": "max-age=60", "etag": '"v1"'}
    httpx.get(url, params=q)
    r = httpx.get(url, params=q, headers={"If-None-Match": 'W/"v1"'})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == '"v1"'
    assert httpx.get(url, params=q, headers={"If-None-Match": '"v0"'}).status_code == 200
    assert origin.calls == 1


def test_authenticated_requests_bypass_the_cache(served):
    url, _origin, _, _ = served
    q = {"cc": "public, max-age=60"}
    for headers in ({"Authorization": "Bearer a"}, {"X-API-Key": "k"}):
        calls = [httpx.get(url, params=q, headers=headers).json()["call"] for _ in range(2)]
        assert calls[0] != calls[1]
    assert httpx.get(url, params=q).headers["x-cache"] == "MISS"  # nothing stored by the above


@pytest.mark.parametrize("served", [{"shareable_per_consumer": True}], indirect=True)
def test_shareable_per_consumer_keys_by_verified_consumer(identity_policy, served):
    url, origin, _, _ = served
    q = {"cc": "max-age=60"}
    a = [httpx.get(url, params=q, headers={"Authorization": "Consumer a"}).json() for _ in range(2)]
    b = [httpx.get(url, params=q, headers={"Authorization": "Consumer b"}).json() for _ in range(2)]
    assert a[0] == a[1] and b[0] == b[1] and a[0] != b[0]
    assert origin.calls == 2
    # an Authorization no auth policy verified is never cached
    calls = {
        httpx.get(url, params=q, headers={"Authorization": "Bearer x"}).json()["call"]
        for _ in range(2)
    }
    assert len(calls) == 2


@pytest.mark.parametrize("served", [{"max_bytes": 4096, "max_entry_bytes": 2048}], indirect=True)
def test_memory_is_bounded_least_recently_used_first(served):
    url, _origin, _, gateway = served
    store = gateway.services.response_cache.stores["shop"]
    for i in range(6):
        httpx.get(url, params={"cc": "max-age=60", "pad": "1000", "n": str(i)})
    assert store.bytes <= 4096 and 0 < len(store) < 6
    assert (
        httpx.get(url, params={"cc": "max-age=60", "pad": "1000", "n": "5"}).headers["x-cache"]
        == "HIT"
    )
    assert (
        httpx.get(url, params={"cc": "max-age=60", "pad": "1000", "n": "0"}).headers["x-cache"]
        == "MISS"
    )
    big = httpx.get(url, params={"cc": "max-age=60", "pad": "3000"})
    assert (
        httpx.get(url, params={"cc": "max-age=60", "pad": "3000"}).json()["call"]
        != big.json()["call"]
    )


def test_purge_through_the_admin_api(served):
    url, _origin, admin, _ = served
    q = {"cc": "max-age=60"}
    httpx.get(url, params=q)
    assert httpx.get(url, params=q).headers["x-cache"] == "HIT"
    assert httpx.delete(f"{admin}/admin/cache/shop").status_code == 401
    assert (
        httpx.delete(f"{admin}/admin/cache", headers={"Authorization": "Bearer no"}).status_code
        == 401
    )
    assert httpx.get(url, params=q).headers["x-cache"] == "HIT"  # refused purges purged nothing
    r = httpx.delete(f"{admin}/admin/cache/shop", headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"api": "shop", "purged": 1}
    assert httpx.get(url, params=q).headers["x-cache"] == "MISS"
    assert httpx.delete(f"{admin}/admin/cache", headers=ADMIN).json() == {"purged": 1}
    assert httpx.delete(f"{admin}/admin/cache/nope", headers=ADMIN).status_code == 404
