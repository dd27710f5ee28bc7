"""Policy response-cache with `storage: redis`: config validation first, then two
gateways (real uvicorn) sharing a redis-server of this test's own."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from gateway.admin import create_admin_app
from gateway.config.errors import ConfigError
from gateway.listener import listener_options
from gateway.policies.response_cache import BAD_REDIS_URL, REDIS_URL_REQUIRED
from gateway.stack import build_gateway
from tests.limits.redis_server import RedisServer
from tests.policies.test_response_cache import ADMIN, Origin
from tests.support.configs import make_config
from tests.support.servers import serve_asgi

WHERE = "apis[0].policies.response-cache"


def _config(tmp_path, url, policy, **top):
    api = {"name": "shop", "upstream": {"targets": [url]}, "policies": {"response-cache": policy}}
    return make_config(tmp_path, [api], admin_token="s3cret-admin", **top)


def _policy(config):
    return config.apis[0].policy_configs["response-cache"]


def test_redis_url_is_required_when_limits_storage_is_not_redis(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", {"storage": "redis"})
    message = REDIS_URL_REQUIRED.format(storage="memory://").removeprefix("@redis_url: ")
    assert f"{WHERE}.redis_url: {message}" in str(error.value)


def test_redis_url_defaults_to_limits_storage(tmp_path):
    config = _config(
        tmp_path, "http://h:1", {"storage": "redis"}, limits_storage="async+redis://r:6390/2"
    )
    assert _policy(config).redis_url == "redis://r:6390/2"
    own = _config(
        tmp_path,
        "http://h:1",
        {"storage": "redis", "redis_url": "redis://own:1/0"},
        limits_storage="redis://r:6390/2",
    )
    assert _policy(own).redis_url == "redis://own:1/0"
    memory = _config(tmp_path, "http://h:1", {}, limits_storage="redis://r:6390/2")
    assert _policy(memory).storage == "memory" and _policy(memory).redis_url is None


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            {"storage": "redis", "redis_url": "http://r:6379"},
            f"{WHERE}.redis_url: "
            + BAD_REDIS_URL.format(url="http://r:6379").removeprefix("@redis_url: "),
        ),
        ({"storage": "disk"}, f"{WHERE}.storage: Input should be 'memory' or 'redis'"),
        ({"storage": "redis", "redis_timeout": 0}, f"{WHERE}.redis_timeout:"),
    ],
)
def test_bad_redis_settings_are_refused(tmp_path, policy, expected):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", policy, limits_storage="redis://r:1/0")
    assert expected in str(error.value)


@pytest.fixture
def two_nodes(tmp_path):
    """Gateways A and B (A with its admin listener) sharing one Redis of this test's own
    (which the test may stop and restart) and one origin."""
    redis_server = RedisServer(tmp_path).start()
    try:
        yield from _nodes(tmp_path, redis_server)
    finally:
        redis_server.stop()


def _nodes(tmp_path, redis_server: RedisServer) -> Iterator[dict]:
    origin = Origin()
    policy = {
        "storage": "redis",
        "redis_url": redis_server.url,
        "key_prefix": f"t{os.urandom(4).hex()}:",
    }
    with serve_asgi(origin, lifespan="off") as up:
        config = _config(tmp_path, up.url, policy)
        a, b = build_gateway(config), build_gateway(config)
        options = listener_options(config.listeners.public)
        with (
            serve_asgi(a, **options) as gw_a,
            serve_asgi(b, **options) as gw_b,
            serve_asgi(create_admin_app(a), lifespan="off") as admin_a,
        ):
            path = "/experience/shop/v1/items"
            yield {
                "a": gw_a.url + path,
                "b": gw_b.url + path,
                "admin_a": admin_a.url,
                "origin": origin,
                "gateways": (a, b),
                "redis": redis_server,
            }


def test_a_response_cached_through_a_is_a_hit_on_b(two_nodes):
    a, b, origin = two_nodes["a"], two_nodes["b"], two_nodes["origin"]
    q = {"cc": "public, max-age=60", "age": "30", "etag": '"v1"'}
    first = httpx.get(a, params=q, timeout=5)
    second = httpx.get(b, params=q, timeout=5)
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert second.json() == first.json() and origin.calls == 1
    assert 30 <= int(second.headers["age"]) < 35
    assert second.headers["etag"] == '"v1"' and second.headers["content-type"] == "application/json"
    r304 = httpx.get(b, params=q, headers={"If-None-Match": '"v1"'}, timeout=5)
    assert r304.status_code == 304 and origin.calls == 1
    head = httpx.head(a, params=q, timeout=5)
    assert head.headers["x-cache"] == "HIT" and head.content == b""


def test_vary_and_uncacheable_responses_on_redis(two_nodes):
    a, b, origin = two_nodes["a"], two_nodes["b"], two_nodes["origin"]
    q = {"cc": "max-age=60", "vary": "Accept-Language"}
    fr = httpx.get(a, params=q, headers={"Accept-Language": "fr"}, timeout=5).json()
    de = httpx.get(b, params=q, headers={"Accept-Language": "de"}, timeout=5).json()
    fr_b = httpx.get(b, params=q, headers={"Accept-Language": "fr"}, timeout=5)
    de_a = httpx.get(a, params=q, headers={"Accept-Language": "de"}, timeout=5)
    assert fr_b.headers["x-cache"] == "HIT" and fr_b.json() == fr
    assert de_a.headers["x-cache"] == "HIT" and de_a.json() == de
    assert origin.calls == 2
    private = {"cc": "private, max-age=60"}
    calls = [httpx.get(u, params=private, timeout=5).json()["call"] for u in (a, b)]
    assert calls == [3, 4]


def test_entries_expire_in_redis_with_their_freshness(two_nodes):
    import redis

    a, redis_server = two_nodes["a"], two_nodes["redis"]
    httpx.get(a, params={"cc": "max-age=60", "age": "20"}, timeout=5)
    client = redis.Redis.from_url(redis_server.url)
    try:
        keys = client.keys("*")
        assert len(keys) == 1
        assert 35 <= client.ttl(keys[0]) <= 40  # 60 - 20, not 60
    finally:
        client.close()


def test_a_purge_through_a_reaches_b(two_nodes):
    a, b, admin_a = two_nodes["a"], two_nodes["b"], two_nodes["admin_a"]
    q = {"cc": "max-age=60"}
    httpx.get(a, params=q, timeout=5)
    httpx.get(a, params={**q, "n": "2"}, timeout=5)
    assert httpx.get(b, params=q, timeout=5).headers["x-cache"] == "HIT"
    r = httpx.delete(f"{admin_a}/admin/cache/shop", headers=ADMIN, timeout=5)
    assert r.status_code == 200 and r.json() == {"api": "shop", "purged": 2}
    assert httpx.get(b, params=q, timeout=5).headers["x-cache"] == "MISS"
    assert httpx.get(a, params=q, timeout=5).headers["x-cache"] == "HIT"  # stored by B's miss
    assert httpx.delete(f"{admin_a}/admin/cache", headers=ADMIN, timeout=5).json() == {"purged": 1}
    assert httpx.get(b, params=q, timeout=5).headers["x-cache"] == "MISS"


def test_requests_succeed_from_upstream_while_redis_is_down(two_nodes):
    a, b, origin = two_nodes["a"], two_nodes["b"], two_nodes["origin"]
    redis_server = two_nodes["redis"]
    q = {"cc": "max-age=60"}
    httpx.get(a, params=q, timeout=5)
    assert httpx.get(b, params=q, timeout=5).headers["x-cache"] == "HIT"
    redis_server.stop()
    before = origin.calls
    for url in (a, b, a):
        r = httpx.get(url, params=q, timeout=5)
        assert r.status_code == 200 and r.headers["x-cache"] == "MISS"
    assert origin.calls == before + 3
    gateway_a, gateway_b = two_nodes["gateways"]
    assert gateway_a.services.response_cache.errors >= 2  # lookup and store, each request
    assert gateway_b.services.response_cache.errors >= 2
    purge = httpx.delete(f"{two_nodes['admin_a']}/admin/cache", headers=ADMIN, timeout=5)
    assert purge.status_code == 503
    assert purge.headers["content-type"] == "application/problem+json"
    redis_server.start()  # same port: the cache works again
    httpx.get(a, params=q, timeout=5)
    assert httpx.get(b, params=q, timeout=5).headers["x-cache"] == "HIT"
