"""Every answer of the public listener carries X-Request-ID, the gateway's own included
(404 no API, 405, 400 bad path, the OAuth endpoints' 401 and 429, health), not only
proxied ones: the client's own id when it is a valid one, else a fresh one. Real uvicorn,
real sockets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.raw import raw_request
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo

FRESH = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("ids")
    with serve_asgi(echo) as upstream:
        target = {"targets": [upstream.url]}
        apis = [
            {"name": "open", "upstream": target, "methods": ["GET"]},
            {"name": "locked", "upstream": target, "policies": {"jwt": {}}},
            {
                "name": "fenced",
                "upstream": target,
                "policies": {"ip-restriction": {"deny": ["127.0.0.0/8"]}},
            },
            {
                "name": "small",
                "upstream": target,
                "policies": {"request-size": {"max_body_bytes": 10}},
            },
            {
                "name": "limited",
                "upstream": target,
                "policies": {"rate-limit": {"anonymous": ["1/minute"]}},
            },
        ]
        config = make_config(tmp, apis, rate_limiting={"token_endpoint_limit": "1/minute"})
        with serve_asgi(build_gateway(config)) as server:
            yield SimpleNamespace(url=server.url)


def _answers(gw: Any) -> dict[str, httpx.Response]:
    base = gw.url
    with httpx.Client(timeout=10) as http:
        http.post(f"{base}/oauth/token")  # the one token request the limit allows
        return {
            "404 no API": http.get(f"{base}/nowhere"),
            "405 API method": http.post(f"{base}/experience/open/v1/x"),
            "405 shell": http.get(f"{base}/oauth/introspect"),
            "401 OAuth": http.post(f"{base}/oauth/introspect", data={"token": "t"}),
            "429 token limit": http.post(f"{base}/oauth/token"),
            "200 health": http.get(f"{base}/healthz"),
            "200 JWKS": http.get(f"{base}/.well-known/jwks.json"),
            "401 policy": http.get(f"{base}/experience/locked/v1/x"),
            "403 policy": http.get(f"{base}/experience/fenced/v1/x"),
            "413 policy": http.post(f"{base}/experience/small/v1/x", content=b"x" * 100),
            "429 policy": [http.get(f"{base}/experience/limited/v1/x") for _ in range(2)][-1],
            "200 proxied": http.get(f"{base}/experience/open/v1/x"),
        }


def test_every_answer_has_a_fresh_request_id(gw):
    answers = _answers(gw)
    seen = set()
    for name, response in answers.items():
        assert name.split()[0] == str(response.status_code), (name, response.text)
        values = response.headers.get_list("x-request-id")
        assert len(values) == 1 and FRESH.match(values[0]), (name, values)
        seen.add(values[0])
    assert len(seen) == len(answers)  # one id per request


@pytest.mark.parametrize("path", ["/nowhere", "/healthz", "/oauth/token"])
def test_a_valid_client_id_is_echoed_and_an_invalid_one_replaced(gw, path):
    r = httpx.get(f"{gw.url}{path}", headers={"x-request-id": "abc-123.X:y_z"})
    assert r.headers.get_list("x-request-id") == ["abc-123.X:y_z"]
    for bad in ["has space", "x" * 129, "semi;colon", "é"]:
        r = httpx.get(f"{gw.url}{path}", headers={"x-request-id": bad.encode()})
        values = r.headers.get_list("x-request-id")
        assert len(values) == 1 and FRESH.match(values[0]), (bad, values)


def test_a_rejected_path_has_a_request_id_too(gw):
    r = raw_request(
        gw.url,
        b"GET /experience/open/v1/%2e%2e/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    assert r.status == 400
    assert FRESH.match(r.headers["x-request-id"])


def test_a_request_refused_for_its_framing_has_a_request_id_too(gw):
    r = raw_request(
        gw.url,
        b"GET /experience/open/v1/x HTTP/1.1\r\nHost: gw\r\nHost: other\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert r.status == 400
    assert FRESH.match(r.headers["x-request-id"])
