"""One JSON line per request on `tiergate up`'s stdout, never a credential."""

from __future__ import annotations

import json
import time

import httpx

from tests.support.processes import tiergate_up, write_config
from tests.support.servers import free_port, serve_asgi
from tests.support.upstreams import echo

SECRETS = ("tok-SECRET-1", "key-SECRET-2", "query-SECRET-3", "cookie-SECRET-4")


def test_access_log_lines(tmp_path):
    with serve_asgi(echo) as upstream:
        apis = [
            {"name": "shop", "base_path": "/shop", "upstream": {"targets": [upstream.url]}},
            {
                "name": "down",
                "base_path": "/down",
                "upstream": {"targets": [f"http://127.0.0.1:{free_port()}"], "retries": 0},
            },
        ]
        with tiergate_up(write_config(tmp_path, apis)) as gateway:
            ok = httpx.get(
                f"{gateway.url}/shop/orders?api_key={SECRETS[2]}",
                headers={
                    "Authorization": f"Bearer {SECRETS[0]}",
                    "X-API-Key": SECRETS[1],
                    "Cookie": f"session={SECRETS[3]}",
                    "X-Request-ID": "log-test-1",
                },
            )
            assert ok.status_code == 200
            assert httpx.get(f"{gateway.url}/down/x").status_code == 502
            assert httpx.get(f"{gateway.url}/nowhere").status_code == 404
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # lines are written after the response
                text = gateway.log.read_text()
                if all(f'"path":"{p}"' in text for p in ("/shop/orders", "/down/x", "/nowhere")):
                    break
                time.sleep(0.05)
    for secret in SECRETS:
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    by_path = {line["path"]: line for line in lines}
    shop, down, missing = by_path["/shop/orders"], by_path["/down/x"], by_path["/nowhere"]
    assert len(lines) == 3 + sum(line["path"] == "/healthz" for line in lines)
    assert shop["request_id"] == "log-test-1"
    assert shop["api"] == "shop"
    assert shop["route"] == "other"  # the contract's path template; this one has none
    assert shop["path"] == "/shop/orders"
    assert shop["status"] == 200
    assert 0 < shop["upstream_ms"] <= shop["total_ms"]
    assert down["status"] == 502
    assert down["upstream_error"] == "UpstreamConnectError"
    assert len(down["request_id"]) == 32
    assert missing["status"] == 404
    assert missing["api"] is None
