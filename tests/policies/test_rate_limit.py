"""The rate-limit policy on a real uvicorn: exactness under concurrency, headers,
plans by verified identity, per-operation overrides, quotas and usage."""

from __future__ import annotations

import json
import re
import time

from gateway.admin import create_admin_app
from gateway.cli import main
from gateway.stack import build_gateway
from tests.limits import conftest as limits_fixtures
from tests.limits.support import UPSTREAM, burst, with_test_identity
from tests.support.configs import make_config, write_contract
from tests.support.servers import serve_asgi

http = limits_fixtures.http  # one httpx client per test (no conftest here: shared dir)

POLICY_RE = re.compile(r'^"([^"]+)";q=(\d+);w=(\d+)$')
STATE_RE = re.compile(r'^"([^"]+)";r=(\d+);t=(\d+)$')


def _api(name="shop", **policy):
    return {"name": name, "upstream": {"targets": [UPSTREAM]}, "policies": {"rate-limit": policy}}


def _items(value: str, pattern: re.Pattern) -> list[tuple]:
    out = []
    for item in value.split(", "):
        match = pattern.match(item)
        assert match, f"not a structured-field item: {item!r} in {value!r}"
        out.append(match.groups())
    return out


def test_500_concurrent_requests_admit_exactly_100(http, tmp_path):
    config = make_config(tmp_path, [_api(anonymous=["100/minute"])])
    with serve_asgi(build_gateway(config)) as gw:
        responses = burst([f"{gw.url}/experience/shop/v1/items"], 500)
        body = http.get(f"{gw.url}/experience/shop/v1/items").json()
        assert body["status"] == 429 and "anonymous/minute" in body["detail"]
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) == 100
    assert len(refused) == 400
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in ok)
    assert remaining == list(range(100))  # each admitted request saw its own slot
    for r in ok[:5]:
        assert _items(r.headers["ratelimit-policy"], POLICY_RE) == [
            ("anonymous/minute", "100", "60")
        ]
        [(name, left, reset)] = _items(r.headers["ratelimit"], STATE_RE)
        assert name == "anonymous/minute" and left == r.headers["x-ratelimit-remaining"]
        assert r.headers["x-ratelimit-limit"] == "100"
        assert 0 < int(reset) <= 60
    for r in refused[:50]:
        assert r.headers["content-type"] == "application/problem+json"
        [(name, left, reset)] = _items(r.headers["ratelimit"], STATE_RE)
        assert (name, left) == ("anonymous/minute", "0")
        assert r.headers["x-ratelimit-remaining"] == "0"
        retry_after = int(r.headers["retry-after"])
        # Retry-After is never earlier than the reset the headers announce...
        assert retry_after >= int(reset) == int(r.headers["x-ratelimit-reset"]) >= 1
        # ...and the moving window frees its first slot about a minute after the burst.
        assert 50 <= retry_after <= 60


def test_sliding_window_counter_is_exact_within_a_window(http, tmp_path):
    api = _api(anonymous=["50/hour"], strategy="sliding-window-counter")
    config = make_config(tmp_path, [api])
    with serve_asgi(build_gateway(config)) as gw:
        responses = burst([f"{gw.url}/experience/shop/v1/items"], 200)
    assert sum(r.status_code == 200 for r in responses) == 50
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) == 150
    # From a cold start the current hour window holds all 50: capacity returns when it ends.
    window_ends = 3600 - time.time() % 3600
    for r in refused[:10]:
        retry_after = int(r.headers["retry-after"])
        assert retry_after >= int(r.headers["x-ratelimit-reset"])
        assert window_ends - 2 <= retry_after <= window_ends + 2


def test_plans_count_the_verified_consumer_and_operations_override(http, tmp_path):
    plans = {
        "free": {"limits": ["3/minute", "100/day"]},
        "gold": {"limits": ["10/minute"], "strategy": "sliding-window-counter"},
    }
    with with_test_identity():
        api = _api(default_plan="free", operations={"POST /orders": "1/minute"})
        api["contract"] = write_contract(tmp_path, "shop", ["GET /items", "POST /orders"])
        api["policies"]["test-identity"] = {}
        config = make_config(tmp_path, [api], plans=plans)
        with serve_asgi(build_gateway(config)) as gw:
            url = f"{gw.url}/experience/shop/v1/items"
            alice = {"x-test-consumer": "alice;free"}

            def statuses(n, headers, spoof=None):
                extra = {"x-consumer-id": spoof} if spoof else {}
                return [http.get(url, headers={**headers, **extra}).status_code for _ in range(n)]

            # A client-sent X-Consumer-ID never picks the counter: alice stays alice.
            assert statuses(3, alice, spoof="someone-else") == [200, 200, 200]
            r = http.get(url, headers=alice)
            assert r.status_code == 429
            assert _items(r.headers["ratelimit-policy"], POLICY_RE)[:2] == [
                ("free/minute", "3", "60"),
                ("free/day", "100", "86400"),
            ]
            # bob on gold has his own counters; carol without a plan gets default_plan.
            assert statuses(10, {"x-test-consumer": "bob;gold"}) == [200] * 10
            assert statuses(4, {"x-test-consumer": "carol"}) == [200, 200, 200, 429]
            # unknown plan → default_plan too
            assert statuses(4, {"x-test-consumer": "dave;platinum"}) == [200, 200, 200, 429]
            # anonymous callers are counted per IP with the anonymous limits
            assert http.get(url).headers["ratelimit-policy"].startswith('"anonymous/minute"')
            # POST /orders: the operation's own limit, on top of the plan
            orders = f"{gw.url}/experience/shop/v1/orders"
            erin = {"x-test-consumer": "erin;gold"}
            assert http.post(orders, headers=erin).status_code == 200
            r = http.post(orders, headers=erin)
            assert r.status_code == 429
            assert "shop POST /orders/minute" in r.json()["detail"]
            assert http.get(url, headers=erin).status_code == 200  # other operations go on


def test_quotas_usage_admin_route_and_cli(http, tmp_path, capsys):
    plans = {"metered": {"limits": ["1000/minute"], "quotas": {"daily": 3, "monthly": 1000}}}
    with with_test_identity():
        api = _api()
        api["policies"]["test-identity"] = {}
        config = make_config(tmp_path, [api], plans=plans, admin_token="s3cret")
        gateway = build_gateway(config)
        with (
            serve_asgi(gateway) as gw,
            serve_asgi(create_admin_app(gateway), lifespan="off") as adm,
        ):
            url = f"{gw.url}/experience/shop/v1/items"
            zoe = {"x-test-consumer": "zoe;metered"}
            codes = [http.get(url, headers=zoe) for _ in range(5)]
            assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
            refused = codes[3]
            assert "daily quota of 3 requests is used up" in refused.json()["detail"]
            state = dict(
                (n, (int(r), int(t))) for n, r, t in _items(refused.headers["ratelimit"], STATE_RE)
            )
            assert state["quota-daily"][0] == 0
            assert int(refused.headers["retry-after"]) == state["quota-daily"][1] > 0
            assert state["quota-monthly"] == (997, state["quota-monthly"][1])

            usage = f"{adm.url}/admin/usage/zoe"
            assert http.get(usage).status_code == 401
            r = http.get(
                usage, params={"plan": "metered"}, headers={"authorization": "Bearer s3cret"}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            # refused requests are given back: usage counts admitted ones only
            assert body["daily"]["used"] == 3 and body["daily"]["remaining"] == 0
            assert body["monthly"]["used"] == 3 and body["monthly"]["quota"] == 1000
            assert body["daily"]["period"] == time.strftime("%Y-%m-%d", time.gmtime())
            r = http.get(usage, params={"plan": "nope"}, headers={"authorization": "Bearer s3cret"})
            assert r.status_code == 404 and "metered" in r.json()["detail"]

            config_file = tmp_path / "tiergate.yaml"
            config_file.write_text(json.dumps({"admin_token": "s3cret", "apis": []}))
            args = ["usage", "zoe", "--config", str(config_file), "--admin-url", adm.url]
            assert main([*args, "--json", "--plan", "metered"]) == 0
            printed = json.loads(capsys.readouterr().out)
            assert printed["daily"]["used"] == 3 and printed["plan"] == "metered"
            assert main(args) == 0
            assert "daily" in capsys.readouterr().out
            config_file.write_text(json.dumps({"admin_token": "wrong", "apis": []}))
            assert main(args) == 1
            assert "admin token" in capsys.readouterr().err


def test_token_endpoint_is_limited_per_client_ip(http, tmp_path):
    config = make_config(tmp_path, [], rate_limiting={"token_endpoint_limit": "3/minute"})
    with serve_asgi(build_gateway(config)) as gw:
        token = f"{gw.url}/oauth/token"
        codes = [
            http.post(token, data={"grant_type": "client_credentials"}).status_code
            for _ in range(3)
        ]
        assert 429 not in codes
        r = http.post(token, data={"grant_type": "client_credentials"})
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= int(r.headers["x-ratelimit-reset"]) >= 1
        assert r.headers["ratelimit-policy"] == '"token/minute";q=3;w=60'
        assert http.get(f"{gw.url}/healthz").status_code == 200  # other shell paths are free


def test_token_endpoint_limit_can_be_turned_off(http, tmp_path):
    config = make_config(tmp_path, [], rate_limiting={"token_endpoint_limit": None})
    with serve_asgi(build_gateway(config)) as gw:
        codes = {http.post(f"{gw.url}/oauth/token").status_code for _ in range(40)}
        assert 429 not in codes
