import httpx

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi


def test_a_long_response_without_length_streams_to_the_end(tmp_path, httpbin_url):
    config = make_config(tmp_path, [{"name": "bin", "upstream": {"targets": [httpbin_url]}}])
    with serve_asgi(build_gateway(config)) as gw:
        # httpbin sends it chunked, in 100 chunks; the client's request had no body.
        r = httpx.get(f"{gw.url}/experience/bin/v1/stream-bytes/102400?chunk_size=1024&seed=7")
    assert r.status_code == 200
    assert len(r.content) == 102400
