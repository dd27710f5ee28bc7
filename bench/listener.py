"""Server CPU per request for the public listener's protocol choices.

Not a test: prints numbers. A trivial ASGI app is served by uvicorn in a child
process pinned to one core (httptools, our EdgeProtocol over httptools, h11);
this process sends sequential keep-alive requests over one raw socket from the
other core and reads the child's CPU time from /proc.
Usage: .venv/bin/python bench/listener.py [requests]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from gateway.config.models import ListenerConfig
from gateway.listener import listener_options
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]}})
    await send({{"type": "http.response.body", "body": b"ok"}})
kind = sys.argv[1]
edge = listener_options(ListenerConfig.model_validate({{}}))
options = {{"http": kind}} if kind != "edge" else edge
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", lifespan="off",
            **{{"server_header": False, **options}})
"""
REQUEST = b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"


def read_response(sock: socket.socket) -> None:
    """Read one whole response (the app's body is "ok"), so that requests never overlap:
    a server that writes the head and the body apart would otherwise be sent the next
    request before its body, and measured pipelining instead of one request at a time."""
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind: str, requests: int) -> float:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = SERVER.format(root=str(ROOT))
    cmd = ["taskset", "-c", "0", sys.executable, "-c", code, kind, str(port)]
    child = subprocess.Popen(cmd)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with sock:
            for _ in range(500):  # warm up
                sock.sendall(REQUEST)
                read_response(sock)
            before = cpu_seconds(child.pid)
            for _ in range(requests):
                sock.sendall(REQUEST)
                read_response(sock)
            return (cpu_seconds(child.pid) - before) / requests * 1e6
    finally:
        child.terminate()
        child.wait(10)


if __name__ == "__main__":
    os.sched_setaffinity(0, {1})
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    results = {kind: measure(kind, n) for kind in ("httptools", "edge", "h11")}
    for kind, cost in results.items():
        ratio = cost / results["httptools"]
        print(f"{kind:10s} {cost:6.1f} µs server CPU/request  ({ratio:.2f}x httptools)")
