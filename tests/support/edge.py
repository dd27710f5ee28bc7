"""Helpers for edge tests: a counting upstream, raw-socket exchanges, a gateway with
the public listener's protocol."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gateway.config.models import GatewayConfig, ListenerConfig
from gateway.listener import listener_options
from gateway.stack import build_gateway
from tests.support.servers import UvicornThread, serve_asgi


async def read_body(receive: Any) -> bytes | None:
    """An ASGI app's whole request body, or None when the client went away first."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


class CountingUpstream:
    """An ASGI upstream that records every request it sees and echoes it as JSON."""

    def __init__(self, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None):
        self.requests: list[dict[str, Any]] = []
        self.status = status
        self.headers = headers or []
        self.url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await read_body(receive)
        if body is None:
            return
        seen = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "body": body.decode("latin-1"),
        }
        self.requests.append(seen)
        payload = json.dumps(seen).encode()
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *self.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@contextmanager
def serve_gateway(config: GatewayConfig, **options: Any) -> Iterator[UvicornThread]:
    """The gateway behind the public listener's own protocol, on a free port."""
    merged = {**listener_options(config.listeners.public), **options}
    with serve_asgi(build_gateway(config), **merged) as server:
        yield server


@contextmanager
def serve_edge(app: Any, **limits: Any) -> Iterator[int]:
    """A plain ASGI app behind the public listener's protocol with `limits`; its port."""
    options = listener_options(ListenerConfig.model_validate(limits))
    with serve_asgi(app, **options, lifespan="off", log_level="critical") as server:
        yield int(server.url.rsplit(":", 1)[1])


def exchange(port: int, raw: bytes, timeout: float = 3.0) -> tuple[bytes, bool]:
    """Send raw bytes, read until the server closes or `timeout`; (data, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return read_until_close(sock, timeout)


def read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Read one complete response (head + Content-Length body), or what came in time."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(body) >= length:
                return data
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def read_until_close(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def status_of(data: bytes) -> int:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0


@pytest.fixture(name="upstream")
def upstream_fixture() -> Iterator[CountingUpstream]:
    """A CountingUpstream on a real socket; its URL is `upstream.url`."""
    app = CountingUpstream()
    with serve_asgi(app) as server:
        app.url = server.url
        yield app


# An in-process upstream, reachable as the target `asgi:tests.support.edge:inprocess_upstream`.
inprocess_upstream = CountingUpstream()
