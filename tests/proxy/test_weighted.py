"""Smooth weighted round-robin, target sets and the canary rule, over real sockets."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from gateway.admin import create_admin_app
from gateway.config.models import UpstreamConfig
from gateway.config.targets import CanaryConfig
from gateway.context import Identity
from gateway.proxy.balancer import Target, TargetPool
from gateway.proxy.canary import Canary
from gateway.stack import build_gateway
from gateway.testing import request_context
from tests.support.configs import make_config
from tests.support.servers import free_port, serve_asgi
from tests.support.upstreams import echo


def _pool(weights: dict[str, int]) -> TargetPool:
    upstream = UpstreamConfig.model_validate(
        {"targets": [{"url": f"http://{name}:1", "weight": w} for name, w in weights.items()]}
    )
    pairs = zip(upstream.targets, upstream.weights, strict=True)
    targets = [Target(url, transport=None, weight=w) for url, w in pairs]  # type: ignore[arg-type]
    return TargetPool(targets, upstream)


def _names(pool: TargetPool, count: int, **kwargs) -> str:
    return "".join(pool.pick(**kwargs).url[7] for _ in range(count))


def test_smooth_order_is_nginx_s():
    # nginx's documented example: weights 5, 1, 1 give a a b a c a a, never five a's in a row.
    assert _names(_pool({"a": 5, "b": 1, "c": 1}), 14) == "aabacaa" * 2


def test_equal_weights_are_round_robin():
    assert _names(_pool({"a": 1, "b": 1, "c": 1}), 6) == "abcabc"


def test_a_target_out_of_rotation_is_skipped_and_the_rest_keep_their_ratio():
    pool = _pool({"a": 2, "b": 1, "c": 1})
    pool.targets[0].healthy = False
    assert Counter(_names(pool, 100)) == {"b": 50, "c": 50}
    pool.targets[0].healthy = True
    assert Counter(_names(pool, 400)) == {"a": 200, "b": 100, "c": 100}


def test_panic_rule_uses_every_target_by_weight():
    pool = _pool({"a": 3, "b": 1})
    for target in pool.targets:
        target.healthy = False
    assert Counter(_names(pool, 40)) == {"a": 30, "b": 10}


def test_a_retry_avoids_the_target_that_failed():
    pool = _pool({"a": 9, "b": 1})
    first = pool.pick()
    assert first.url == "http://a:1"
    assert pool.pick(exclude=first).url == "http://b:1"


def _api(targets, **upstream):
    return {
        "name": "svc",
        "tier": "system",
        "base_path": "/svc",
        "upstream": {"targets": targets, **upstream},
    }


def test_nine_to_one_over_two_thousand_requests(tmp_path):
    with serve_asgi(echo) as heavy, serve_asgi(echo) as light:
        targets = [{"url": heavy.url, "weight": 9}, {"url": light.url, "weight": 1}]
        config = make_config(tmp_path, [_api(targets)])
        with serve_asgi(build_gateway(config)) as gw, httpx.Client(base_url=gw.url) as client:
            ports = Counter(client.get("/svc/x").json()["port"] for _ in range(2000))
            state = client.get("/readyz").json()["apis"]["svc"]
    assert abs(ports[heavy.port] / 2000 - 0.9) <= 0.03, ports
    assert abs(ports[light.port] / 2000 - 0.1) <= 0.03, ports
    assert [(t["weight"], t["target_set"]) for t in state] == [(9, "default"), (1, "default")]


@pytest.fixture(scope="module")
def canary_gateway(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("canary")
    dead = f"http://127.0.0.1:{free_port()}"
    with serve_asgi(echo) as stable, serve_asgi(echo) as beta:
        api = _api(
            [stable.url],
            retries=1,
            circuit_breaker={"failures": 1, "cooldown": 60},
            target_sets={"beta": {"targets": [dead, beta.url]}},
            canary={
                "target_set": "beta",
                "header": {"name": "X-Canary", "value": "on"},
                "cookie": {"name": "track", "value": "beta"},
                "percent": 20,
            },
        )
        config = make_config(tmp_path, [api], trusted_proxies=["127.0.0.1/32"])
        gateway = build_gateway(config)
        with (
            serve_asgi(gateway) as gw,
            serve_asgi(create_admin_app(gateway), lifespan="off") as admin,
            httpx.Client(base_url=gw.url) as client,
        ):
            client.admin_url = admin.url  # type: ignore[attr-defined]
            yield client, stable.port, beta.port


def _side(client, stable, beta, **kwargs) -> str:
    response = client.get("/svc/x", **kwargs)
    assert response.status_code == 200, response.text
    return {stable: "stable", beta: "beta"}[response.json()["port"]]


def test_canary_by_header(canary_gateway):
    client, stable, beta = canary_gateway
    forwarded = {"x-forwarded-for": "203.0.113.1"}
    assert _side(client, stable, beta, headers=forwarded) == "stable"  # outside the 20 %
    for value, side in [("on", "beta"), ("off", "stable"), ("ON", "stable"), ("on,on", "stable")]:
        assert _side(client, stable, beta, headers={**forwarded, "x-canary": value}) == side
    repeated = [("x-forwarded-for", "203.0.113.1"), ("x-canary", "off"), ("x-canary", "on")]
    assert _side(client, stable, beta, headers=repeated) == "beta"  # any copy opts in


def test_canary_by_cookie(canary_gateway):
    client, stable, beta = canary_gateway
    forwarded = {"x-forwarded-for": "203.0.113.1"}
    cases = [
        ("track=beta", "beta"),
        ("a=1; track=beta; b=2", "beta"),
        ('track="beta"', "beta"),
        ("track=betax", "stable"),
        ("xtrack=beta", "stable"),
        ("track", "stable"),
    ]
    for cookie, side in cases:
        headers = {**forwarded, "cookie": cookie}
        assert _side(client, stable, beta, headers=headers) == side, cookie


def test_canary_by_stable_hash_of_the_consumer(canary_gateway):
    client, stable, beta = canary_gateway
    sides = {}
    for n in range(400):
        address = f"198.51.{n // 250}.{n % 250}"
        sides[address] = _side(client, stable, beta, headers={"x-forwarded-for": address})
    share = sum(side == "beta" for side in sides.values()) / len(sides)
    assert 0.14 <= share <= 0.26, share  # 20 % of consumers, give or take sampling
    # The same consumer lands on the same side every time.
    for address, side in list(sides.items())[:40]:
        assert _side(client, stable, beta, headers={"x-forwarded-for": address}) == side


def test_health_and_circuit_are_per_target_in_each_set(canary_gateway):
    client, stable, beta = canary_gateway
    for _ in range(4):  # the dead canary target fails once, is ejected, the retry succeeds
        assert _side(client, stable, beta, headers={"x-canary": "on"}) == "beta"
    state = {
        (t["target_set"], t["target"].rsplit(":", 1)[1]): t
        for t in client.get("/readyz").json()["apis"]["svc"]
    }
    assert state[("default", str(stable))]["breaker"] == "closed"
    assert state[("beta", str(beta))]["breaker"] == "closed"
    dead = [t for key, t in state.items() if key[0] == "beta" and key[1] != str(beta)]
    assert dead[0]["breaker"] == "open"


def test_metrics_label_the_target_set(canary_gateway):
    client, stable, beta = canary_gateway
    _side(client, stable, beta, headers={"x-canary": "on", "x-forwarded-for": "203.0.113.9"})
    _side(client, stable, beta, headers={"x-forwarded-for": "203.0.113.1"})
    text = httpx.get(client.admin_url + "/metrics").text
    lines = [
        line for line in text.splitlines() if "tiergate_upstream_duration_seconds_count" in line
    ]
    assert any('target_set="beta"' in line and f":{beta}" in line for line in lines), lines
    assert any('target_set="default"' in line and f":{stable}" in line for line in lines), lines


def test_consumer_hash_uses_the_identity_and_is_keyed_by_api():
    pool = _pool({"a": 1})
    rule = CanaryConfig(target_set="beta", percent=30)
    canary, other_api = Canary(rule, pool, "svc"), Canary(rule, pool, "other")
    chosen = 0
    same_in_both = 0
    for n in range(3000):
        ctx = request_context(client_ip="192.0.2.1")
        ctx.identity = Identity(kind="partner", consumer_id=f"consumer-{n}")
        chosen += canary.matches(ctx)
        assert canary.matches(ctx) == Canary(rule, pool, "svc").matches(ctx)
        same_in_both += canary.matches(ctx) == other_api.matches(ctx)
    assert abs(chosen / 3000 - 0.30) <= 0.03
    assert same_in_both < 2900  # another API puts other consumers in its canary
