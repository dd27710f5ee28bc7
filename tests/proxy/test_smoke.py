import httpx

from gateway.app import Gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi


def test_forwards_to_httpbin(tmp_path, httpbin_url):
    config = make_config(tmp_path, [{"name": "bin", "upstream": {"targets": [httpbin_url]}}])
    with serve_asgi(Gateway(config)) as gw:
        r = httpx.get(
            f"{gw.url}/experience/bin/v1/get?x=1&show_env=1", headers={"X-Consumer-ID": "evil"}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["args"] == {"x": "1", "show_env": "1"}
        assert "X-Consumer-Id" not in body["headers"]
        assert body["headers"]["X-Request-Id"] == r.headers["x-request-id"]
        r = httpx.post(f"{gw.url}/experience/bin/v1/post", json={"a": 1})
        assert r.json()["json"] == {"a": 1}
        r = httpx.get(f"{gw.url}/nothing")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
