"""The public ASGI app on a real uvicorn: path attacks, routing answers, health."""

from __future__ import annotations

import httpx
import pytest

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.raw import get
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("app")
    with serve_asgi(echo) as upstream:
        target = {"targets": [upstream.url]}
        apis = [
            {"name": "shop", "base_path": "/v1", "upstream": target},
            {"name": "orders", "base_path": "/v1/orders", "upstream": target},
            {"name": "local", "base_path": "/h", "hosts": ["[::1]"], "upstream": target},
            {"name": "writes", "base_path": "/w", "methods": ["POST"], "upstream": target},
        ]
        with serve_asgi(build_gateway(make_config(tmp_path, apis))) as gw:
            yield gw.url


ATTACKS = [
    "/v1/../admin",
    "/v1/%2e%2e/admin",
    "/v1/%2E%2e/admin",
    "/v1/.%2E/admin",
    "/v1/%252e%252e/admin",
    "/v1/%25%32%65%25%32%65/admin",
    "/v1//x",
    "/v1/a%00b",
    "/v1/a\\b",
    "/v1/a%5Cb",
    "/v1/a%2Fb",
    "/v1/./x",
    "/v1/..;/admin",
]


@pytest.mark.parametrize("target", ATTACKS)
def test_path_attacks_get_400_problem(gateway, target):
    response = get(gateway, target)
    assert response.status == 400, target
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("The request path is not allowed")


def test_raw_nul_never_reaches_an_upstream(gateway):
    # uvicorn's parser refuses a raw NUL in the request line itself.
    response = get(gateway, "/v1/a\x00b")
    assert response.status == 400


def test_longest_prefix_and_segment_boundary(gateway):
    assert httpx.get(f"{gateway}/v1/orders/7").json()["path"] == "/7"
    assert httpx.get(f"{gateway}/v1/ordersx").json()["path"] == "/ordersx"
    assert httpx.get(f"{gateway}/v1").json()["path"] == "/"
    response = httpx.get(f"{gateway}/v10/x")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "No API is published at '/v10/x'."


def test_percent_encoding_is_forwarded_as_sent(gateway):
    body = httpx.get(f"{gateway}/v1/caf%C3%A9/a%20b?q=%2F&x=1").json()
    assert body["path"] == "/caf%C3%A9/a%20b"
    assert body["query"] == "q=%2F&x=1"


def test_host_matching_with_ipv6_host_header(gateway):
    assert get(gateway, "/h/x", host="[::1]:8080").json()["path"] == "/x"
    assert get(gateway, "/h/x", host="[::1]").status == 200
    assert get(gateway, "/h/x", host="example.com").status == 404


def test_method_matching_gives_405_with_allow(gateway):
    assert httpx.post(f"{gateway}/w/x").status_code == 200
    response = httpx.get(f"{gateway}/w/x")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/problem+json"


def test_request_id_generated_kept_or_replaced(gateway):
    generated = httpx.get(f"{gateway}/v1/x")
    assert len(generated.headers["x-request-id"]) == 32
    sent = dict(generated.json()["headers"])
    assert sent["x-request-id"] == generated.headers["x-request-id"]
    kept = httpx.get(f"{gateway}/v1/x", headers={"X-Request-ID": "abc-123.x:y"})
    assert kept.headers["x-request-id"] == "abc-123.x:y"
    replaced = httpx.get(f"{gateway}/v1/x", headers={"X-Request-ID": "bad id\twith space"})
    assert replaced.headers["x-request-id"] != "bad id\twith space"
    assert len(replaced.headers["x-request-id"]) == 32


def test_health_endpoints(gateway):
    assert httpx.get(f"{gateway}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway}/readyz").json()
    assert ready["status"] == "ready"
    assert ready["apis"]["shop"][0]["healthy"] is True
    assert httpx.head(f"{gateway}/healthz").status_code == 200


def test_readyz_is_503_before_start_up(tmp_path):
    app = build_gateway(make_config(tmp_path, []))
    with serve_asgi(app, lifespan="off") as gw:
        response = httpx.get(f"{gw.url}/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_a_policy_that_fails_answers_500_problem_and_the_next_request_is_served(
    tmp_path, monkeypatch, caplog
):
    """A bug in a policy (a plugin's, say) is the gateway's failure: the client gets a
    problem+json 500 with its request id, the traceback goes to the log, and the
    gateway goes on serving."""
    from pydantic import BaseModel

    from gateway.pipeline import PRIORITY, PolicySpec
    from gateway.policies import POLICIES

    class Empty(BaseModel):
        pass

    class Failing:
        async def __call__(self, ctx):
            if ctx.header(b"x-fail"):
                raise RuntimeError("a bug in the policy")
            return None

    spec = PolicySpec("test-failing", 800, Empty, lambda config, ctx: Failing())
    monkeypatch.setitem(POLICIES, "test-failing", spec)
    monkeypatch.setitem(PRIORITY, "test-failing", 800)
    with serve_asgi(echo) as upstream:
        api = {"name": "shop", "upstream": {"targets": [upstream.url]}}
        api["policies"] = {"test-failing": {}}
        config = make_config(tmp_path, [api])
        with serve_asgi(build_gateway(config)) as gw, caplog.at_level("ERROR"):
            failed = httpx.get(f"{gw.url}/experience/shop/v1/x", headers={"x-fail": "1"})
            served = httpx.get(f"{gw.url}/experience/shop/v1/x")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["status"] == 500 and failed.headers["x-request-id"]
    assert "a bug in the policy" not in failed.text  # no internals to the client
    assert any("a bug in the policy" in r.getMessage() or r.exc_info for r in caplog.records)
    assert served.status_code == 200
