"""The circuit breaker: clients cannot eject an API, the last target stays, one trial.

Real upstreams on real sockets: a client's requests that make the upstream answer 5xx
do not count, real failures do, the last target in rotation is never ejected, and after
the cooldown exactly one trial request reaches the ejected target.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.config.models import CircuitBreakerConfig, UpstreamConfig
from gateway.proxy.balancer import Target, TargetPool
from gateway.proxy.breaker import CLOSED, HALF_OPEN, OPEN
from gateway.proxy.errors import UPSTREAM_INVALID
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.faults import FaultInjector
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo, raw_server, read_head

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def gateway_for(tmp_path, targets, **upstream):
    api = {"name": "svc", "base_path": "/svc", "upstream": {"targets": targets, **upstream}}
    return serve_asgi(build_gateway(make_config(tmp_path, [api])))


def breakers(gw) -> list[str]:
    return [t["breaker"] for t in httpx.get(f"{gw.url}/readyz").json()["apis"]["svc"]]


@pytest.mark.parametrize("status", [502, 503])
def test_upstream_5xx_caused_by_requests_do_not_eject_by_default(tmp_path, status):
    first, second = FaultInjector(echo), FaultInjector(echo)
    for app in (first, second):
        app.fail("GET", "^/bad", status)  # as a tier API mapping its inner tier's 4xx
    with (
        serve_asgi(first) as a,
        serve_asgi(second) as b,
        gateway_for(tmp_path, [a.url, b.url]) as gw,
    ):
        for _ in range(20):
            response = httpx.get(f"{gw.url}/svc/bad")
            assert response.status_code == status
            assert response.json()["detail"] == "injected fault"  # the upstream's own answer
        assert breakers(gw) == [CLOSED, CLOSED]
        ports = {httpx.get(f"{gw.url}/svc/ok").json()["port"] for _ in range(4)}
    assert ports == {a.port, b.port}


def test_counting_5xx_is_opt_in_and_still_keeps_the_last_target(tmp_path):
    first, second = FaultInjector(echo), FaultInjector(echo)
    for app in (first, second):
        app.fail("GET", "^/bad", 503)
    breaker = {"failures": 2, "cooldown": 30, "count_5xx": True}
    with (
        serve_asgi(first) as a,
        serve_asgi(second) as b,
        gateway_for(tmp_path, [a.url, b.url], circuit_breaker=breaker) as gw,
    ):
        for _ in range(10):
            assert httpx.get(f"{gw.url}/svc/bad").status_code == 503
        assert sorted(breakers(gw)) == [CLOSED, OPEN]
        served = httpx.get(f"{gw.url}/svc/ok")
        assert served.status_code == 200


class Flaky:
    """A raw upstream: garbage while `broken`, else OK after `delay` seconds; counts requests."""

    def __init__(self) -> None:
        self.broken = True
        self.delay = 0.0
        self.hits = 0

    def __call__(self, conn) -> None:
        while head := read_head(conn):
            self.hits += 1
            if self.broken or b"/bad" in head:
                conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                return
            time.sleep(self.delay)
            conn.sendall(OK)


def test_a_single_target_is_never_ejected(tmp_path):
    flaky = Flaky()
    flaky.broken = False
    breaker = {"failures": 2, "cooldown": 30}
    with (
        raw_server(flaky) as url,
        gateway_for(tmp_path, [url], retries=0, circuit_breaker=breaker) as gw,
    ):
        for _ in range(10):
            response = httpx.get(f"{gw.url}/svc/bad")
            assert response.status_code == 502
            assert response.json()["detail"] == UPSTREAM_INVALID.format(api="svc")
        assert breakers(gw) == [CLOSED]
        assert httpx.get(f"{gw.url}/svc/ok").status_code == 200
    assert flaky.hits == 11


def test_half_open_admits_exactly_one_trial(tmp_path):
    flaky = Flaky()
    breaker = {"failures": 1, "cooldown": 2.0}
    with (
        raw_server(flaky) as bad,
        serve_asgi(echo) as good,
        gateway_for(tmp_path, [bad, good.url], retries=0, circuit_breaker=breaker) as gw,
    ):
        assert httpx.get(f"{gw.url}/svc/x").status_code == 502  # round-robin starts on it
        assert [httpx.get(f"{gw.url}/svc/x").status_code for _ in range(3)] == [200] * 3
        assert flaky.hits == 1
        assert breakers(gw) == [OPEN, CLOSED]
        time.sleep(2.1)
        assert breakers(gw) == [HALF_OPEN, CLOSED]
        flaky.broken = False
        flaky.delay = 1.5  # the trial stays in flight while the others arrive
        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda _: httpx.get(f"{gw.url}/svc/x").status_code, range(6)))
        assert statuses == [200] * 6
        assert flaky.hits == 2  # one trial, not half the traffic
        assert breakers(gw) == [CLOSED, CLOSED]
        flaky.delay = 0.0
        for _ in range(4):
            httpx.get(f"{gw.url}/svc/x")
        assert flaky.hits == 4  # closed again: back in rotation


def test_a_failed_trial_ejects_again():
    clock = [100.0]
    config = UpstreamConfig(
        targets=["http://a:1", "http://b:1"], circuit_breaker=CircuitBreakerConfig(failures=1)
    )
    a, b = Target("http://a:1", None), Target("http://b:1", None)  # type: ignore[arg-type]
    pool = TargetPool([a, b], config, clock=lambda: clock[0])
    pool.failed(a)
    assert [pool.pick() for _ in range(3)] == [b, b, b]
    clock[0] += 30
    assert [pool.pick() for _ in range(4)].count(a) == 1  # the trial, then b while in flight
    pool.failed(a)  # the trial failed: open for another cooldown
    assert pool.state()[0]["breaker"] == OPEN
    assert a not in [pool.pick() for _ in range(3)]
    clock[0] += 30
    assert a in [pool.pick() for _ in range(2)]
    pool.abandoned(a)  # the client went away: no verdict, so another trial may go
    assert a in [pool.pick() for _ in range(2)]
    pool.succeeded(a)
    assert pool.state()[0]["breaker"] == CLOSED


def test_panic_when_nothing_is_in_rotation():
    config = UpstreamConfig(targets=["http://a:1", "http://b:1"])
    a, b = Target("http://a:1", None), Target("http://b:1", None)  # type: ignore[arg-type]
    pool = TargetPool([a, b], config)
    a.healthy = b.healthy = False  # health checks fail everywhere
    assert {pool.pick().url for _ in range(4)} == {a.url, b.url}
    assert pool.pick(exclude=a) is b and pool.pick(exclude=b) is a
