"""Several gateways sharing one Redis: exact limits across nodes, and what happens
when Redis goes away and comes back (each test runs its own redis-server)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from gateway.stack import build_gateway
from tests.limits.redis_server import RedisServer
from tests.limits.support import UPSTREAM, burst, timed_get
from tests.support.configs import make_config
from tests.support.servers import serve_asgi


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _config(tmp_path, storage: str, **settings):
    apis = [
        {
            "name": "open",
            "upstream": {"targets": [UPSTREAM]},
            "policies": {"rate-limit": {"anonymous": ["100/minute"]}},
        },
        {
            "name": "closed",
            "upstream": {"targets": [UPSTREAM]},
            "policies": {
                "rate-limit": {"anonymous": ["50/minute"], "on_storage_error": "fail_closed"}
            },
        },
    ]
    prefix = "t" + os.urandom(6).hex()
    return make_config(
        tmp_path, apis, limits_storage=storage, rate_limiting={"key_prefix": prefix, **settings}
    )


def test_two_gateways_sharing_redis_admit_exactly_100_in_total(http, tmp_path, redis_server):
    config = _config(tmp_path, redis_server.url, storage_timeout=10)  # exactness, not timeouts
    with serve_asgi(build_gateway(config)) as one, serve_asgi(build_gateway(config)) as two:
        urls = [f"{one.url}/experience/open/v1/x", f"{two.url}/experience/open/v1/x"]
        responses = burst(urls, 500)
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 100
    assert sum(r.status_code == 429 for r in responses) == 400
    by_node = {url: 0 for url in urls}
    for r in responses:
        by_node[r.url] += 1
    # Each node decided half of the burst; separate counters would admit 100 each.
    assert list(by_node.values()) == [250, 250], by_node
    # remaining is read after the atomic hit, so concurrent requests may see later counts
    assert all(0 <= int(r.headers["x-ratelimit-remaining"]) < 100 for r in ok)
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= int(refused.headers["x-ratelimit-reset"]) >= 1


def test_redis_outage_keeps_the_fail_mode_and_recovers(http, tmp_path, redis_server, caplog):
    caplog.set_level("WARNING", logger="tiergate.limits")
    timeout = 0.25
    config = _config(tmp_path, redis_server.url, storage_timeout=timeout, retry_after_error=0.2)
    gateway = build_gateway(config)
    with serve_asgi(gateway) as gw:
        open_url = f"{gw.url}/experience/open/v1/x"
        closed_url = f"{gw.url}/experience/closed/v1/x"
        for url, left in ((open_url, "99"), (closed_url, "49")):
            r = http.get(url)
            assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == left

        redis_server.stop()
        limiter = gateway.services.limiter
        for _ in range(5):
            r, took = timed_get(http, open_url)
            assert r.status_code == 200  # fail-open serves...
            assert "x-ratelimit-remaining" not in r.headers  # ...unlimited
            assert took < timeout + 0.5  # added latency bounded by the storage timeout
            r, took = timed_get(http, closed_url)
            assert r.status_code == 503  # fail-closed refuses
            assert r.headers["content-type"] == "application/problem+json"
            assert int(r.headers["retry-after"]) >= 1
            assert took < timeout + 0.5
        assert limiter.storage_errors >= 10  # counted for the metrics
        down = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(down) == 1, down  # logged once per outage, not once per request

        redis_server.start()  # same port
        deadline = time.monotonic() + 10
        while True:  # recovers by itself: no restart, no admin action
            r = http.get(closed_url)
            if r.status_code == 200:
                break
            assert time.monotonic() < deadline, "did not recover after Redis returned"
            time.sleep(0.1)
        assert any("storage is back" in r.getMessage() for r in caplog.records)
        # Counters restarted with the empty Redis: limits hold again, exactly.
        left = int(r.headers["x-ratelimit-remaining"])
        codes = [http.get(closed_url).status_code for _ in range(left + 1)]
        assert codes == [200] * left + [429]
        assert http.get(open_url).headers["x-ratelimit-remaining"] == "99"
