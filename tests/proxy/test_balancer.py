"""Round-robin, retries (idempotent only), passive circuit breaking."""

from __future__ import annotations

import time
from itertools import count

import httpx

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import free_port, serve_asgi
from tests.support.upstreams import echo, raw_server, read_head


def gateway_for(tmp_path, targets, **upstream):
    api = {"name": "svc", "base_path": "/svc", "upstream": {"targets": targets, **upstream}}
    return serve_asgi(build_gateway(make_config(tmp_path, [api])))


def test_round_robin_over_targets(tmp_path):
    with serve_asgi(echo) as a, serve_asgi(echo) as b, gateway_for(tmp_path, [a.url, b.url]) as gw:
        ports = [httpx.get(f"{gw.url}/svc/x").json()["port"] for _ in range(4)]
    assert ports == [a.port, b.port, a.port, b.port]


def test_get_is_retried_on_another_target_post_is_not(tmp_path):
    hits = count()

    def silent(conn):
        read_head(conn)
        next(hits)
        time.sleep(2)

    with raw_server(silent) as stuck, serve_asgi(echo) as good:
        timeouts = {"read": 0.4}
        with gateway_for(tmp_path, [stuck, good.url], timeouts=timeouts, retries=1) as gw:
            # Each request starts on the stuck target (the retry also advances the rotation).
            response = httpx.get(f"{gw.url}/svc/x")
            assert response.status_code == 200
            assert response.json()["port"] == good.port
            response = httpx.post(f"{gw.url}/svc/x", content=b"once")
            assert response.status_code == 504
    assert next(hits) == 2  # the GET and the POST each reached it once


def test_circuit_breaker_ejects_then_tries_again(tmp_path):
    refused = f"http://127.0.0.1:{free_port()}"
    breaker = {"failures": 2, "cooldown": 2.0}
    with (
        serve_asgi(echo) as good,
        gateway_for(tmp_path, [refused, good.url], retries=0, circuit_breaker=breaker) as gw,
    ):
        statuses = [httpx.get(f"{gw.url}/svc/x").status_code for _ in range(3)]
        assert statuses == [502, 200, 502]  # round-robin until the second failure
        assert [httpx.get(f"{gw.url}/svc/x").status_code for _ in range(4)] == [200] * 4
        state = httpx.get(f"{gw.url}/readyz").json()["apis"]["svc"][0]
        assert state["ejected_for"] > 0 and state["breaker"] == "open"
        time.sleep(2.1)
        statuses = [httpx.get(f"{gw.url}/svc/x").status_code for _ in range(2)]
        assert sorted(statuses) == [200, 502]  # one trial after the cooldown; it failed
        assert [httpx.get(f"{gw.url}/svc/x").status_code for _ in range(4)] == [200] * 4


def test_ejected_target_is_skipped_while_others_serve(tmp_path):
    refused = f"http://127.0.0.1:{free_port()}"
    breaker = {"failures": 1, "cooldown": 30}
    with (
        serve_asgi(echo) as good,
        gateway_for(tmp_path, [refused, good.url], retries=1, circuit_breaker=breaker) as gw,
    ):
        statuses = [httpx.get(f"{gw.url}/svc/x").status_code for _ in range(6)]
        assert statuses == [200] * 6
        targets = httpx.get(f"{gw.url}/readyz").json()["apis"]["svc"]
        assert targets[0]["ejected_for"] > 25
        assert targets[1]["ejected_for"] == 0


def test_retries_do_not_eject_the_only_target(tmp_path):
    refused = f"http://127.0.0.1:{free_port()}"
    breaker = {"failures": 1, "cooldown": 30}
    with gateway_for(tmp_path, [refused], retries=2, circuit_breaker=breaker) as gw:
        assert [httpx.get(f"{gw.url}/svc/x").status_code for _ in range(3)] == [502] * 3
        assert httpx.get(f"{gw.url}/readyz").json()["apis"]["svc"][0]["ejected_for"] == 0
