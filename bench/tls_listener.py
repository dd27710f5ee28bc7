"""Server CPU per request of the public listener with and without TLS.

Not a test: prints numbers. A trivial ASGI app is served by uvicorn with the
gateway's listener protocol (gateway/listener.py) in a child process pinned to one
core, plainly and with the gateway's TLS context and response wrapper
(gateway/tls.py: HSTS, Secure cookies). This process sends sequential requests from
the other core, over one keep-alive connection and over a new connection (a full
TLS handshake) per request, and reads the child's CPU time from /proc.
Usage: .venv/bin/python bench/tls_listener.py [requests]
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.listener import REQUEST, cpu_seconds  # noqa: E402
from tests.support.certs import TestCA  # noqa: E402

SERVER = """
import sys, uvicorn
from pathlib import Path
sys.path.insert(0, {root!r})
from gateway.config.models import ListenerConfig
from gateway.config.tls import ListenerTLSConfig
from gateway.listener import listener_options
from gateway.tls import ListenerTLS, SecureResponses
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]}})
    await send({{"type": "http.response.body", "body": b"ok"}})
kind, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
options = {{"server_header": False, **listener_options(ListenerConfig.model_validate({{}}))}}
if kind == "https":
    config = ListenerTLSConfig(cert=cert, key=key, hsts=31536000)
    tls = ListenerTLS(config, Path("/"), "listeners.public.tls", "bench")
    options["ssl_context_factory"] = lambda _config, _default: tls.context
    app = SecureResponses(app, config.hsts)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options)
"""


def _connect(port: int, context: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context.wrap_socket(sock, server_hostname="127.0.0.1") if context else sock


def _exchange(sock: socket.socket) -> None:
    sock.sendall(REQUEST)
    if not sock.recv(4096):
        raise ConnectionError("closed")


def measure(kind: str, requests: int, pki: tuple[Path, Path, Path]) -> tuple[float, float]:
    """(µs per keep-alive request, µs per request on a new connection)."""
    ca, cert, key = pki
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = SERVER.format(root=str(ROOT))
    cmd = ["taskset", "-c", "0", sys.executable, "-c", code, kind, str(port), str(cert), str(key)]
    child = subprocess.Popen(cmd)
    context = ssl.create_default_context(cafile=str(ca)) if kind == "https" else None
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = _connect(port, context)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with sock:
            for _ in range(500):  # warm up
                _exchange(sock)
            before = cpu_seconds(child.pid)
            for _ in range(requests):
                _exchange(sock)
            kept = (cpu_seconds(child.pid) - before) / requests * 1e6
        fresh_count = max(requests // 10, 200)
        before = cpu_seconds(child.pid)
        for _ in range(fresh_count):
            with _connect(port, context) as fresh:
                _exchange(fresh)
        fresh_cost = (cpu_seconds(child.pid) - before) / fresh_count * 1e6
        return kept, fresh_cost
    finally:
        child.terminate()
        child.wait(10)


if __name__ == "__main__":
    os.sched_setaffinity(0, {1})
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory() as where:
        authority = TestCA(Path(where))
        leaf = authority.issue("server", "bench.test")
        pki = (authority.cert, leaf.cert, leaf.key)
        results = {kind: measure(kind, n, pki) for kind in ("http", "https")}
    plain_kept, plain_fresh = results["http"]
    for kind, (kept, fresh) in results.items():
        print(
            f"{kind:6s} keep-alive {kept:6.1f} µs/request ({kept / plain_kept:.2f}x http)   "
            f"new connection {fresh:7.1f} µs/request ({fresh / plain_fresh:.2f}x http)"
        )
