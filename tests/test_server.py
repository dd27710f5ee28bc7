import httpx

from gateway.server import uvicorn_options
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi


def test_a_local_client_cannot_spoof_its_address(tmp_path, httpbin_url):
    config = make_config(tmp_path, [{"name": "bin", "upstream": {"targets": [httpbin_url]}}])
    options = {k: v for k, v in uvicorn_options(config).items() if k != "timeout_graceful_shutdown"}
    with serve_asgi(build_gateway(config), **options) as gw:
        r = httpx.get(
            f"{gw.url}/experience/bin/v1/headers?show_env=1",
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
    assert r.status_code == 200
    assert r.json()["headers"]["X-Forwarded-For"] == "127.0.0.1"
