"""https:// targets are reached over TLS (aiohttp), plain http:// ones by the lean client."""

import socket
import threading

import httpx

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi


def test_an_https_target_gets_a_tls_handshake(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    first_bytes: list[bytes] = []

    def accept() -> None:
        conn, _ = listener.accept()
        conn.settimeout(5)
        with conn:
            first_bytes.append(conn.recv(5))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    target = f"https://127.0.0.1:{port}"
    config = make_config(tmp_path, [{"name": "tls", "upstream": {"targets": [target]}}])
    try:
        with serve_asgi(build_gateway(config)) as gw:
            r = httpx.get(f"{gw.url}/experience/tls/v1/x", timeout=30)
        thread.join(10)
    finally:
        listener.close()
    assert r.status_code in (502, 504)  # the fake server never finishes the handshake
    assert first_bytes and first_bytes[0][:2] == b"\x16\x03"  # a TLS handshake record
