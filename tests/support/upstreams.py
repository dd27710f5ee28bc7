"""Small purpose-built upstreams for proxy tests: plain ASGI apps and raw sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Answer with what arrived: method, raw path, query, headers and body size."""
    if scope["type"] != "http":
        return
    size = 0
    chunks = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        chunks += 1
        if not message.get("more_body", False):
            break
    body = json.dumps(
        {
            "method": scope["method"],
            "path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "size": size,
            "chunks": chunks,
            "port": scope["server"][1] if scope.get("server") else None,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def headers_of(body: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        out.setdefault(name, []).append(value)
    return out


class Recorder:
    """Remembers what happened inside an upstream app, across threads."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.done = threading.Event()

    def add(self, event: str) -> None:
        self.events.append(event)
        self.done.set()


@contextmanager
def raw_server(handler: Any) -> Iterator[str]:
    """A TCP server calling `handler(conn)` per connection in a thread; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=_serve_one, args=(handler, conn), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        # Wakes the accept() at once (Linux) rather than at its next 0.2 s timeout.
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        thread.join(5)
        sock.close()


def _serve_one(handler: Any, conn: socket.socket) -> None:
    with conn:
        conn.settimeout(10)
        with suppress(OSError):
            handler(conn)


def read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class Handshake:
    """Proves streaming: the upstream waits for the other side to see its first bytes.

    A gateway that buffered a body would never deliver the first chunk before the
    last, so the waiting side times out and the test fails.
    """

    def __init__(self) -> None:
        self.first_seen = threading.Event()  # set by whoever receives the first chunk
        self.events: list[str] = []
        self.disconnected = threading.Event()

    def reset(self) -> None:
        self.first_seen.clear()
        self.disconnected.clear()
        self.events.clear()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/upload"):
            await self._upload(receive, send)
        elif scope["path"].startswith("/forever"):
            await self._forever(receive, send)
        else:
            await self._download(send)

    async def _download(self, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        seen = await asyncio.to_thread(self.first_seen.wait, 5)
        self.events.append(f"client saw first chunk: {seen}")
        await send({"type": "http.response.body", "body": b"rest"})

    async def _upload(self, receive: Any, send: Any) -> None:
        size = 0
        while True:
            message = await receive()
            if size == 0 and message.get("body"):
                self.first_seen.set()
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = json.dumps({"size": size}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def _forever(self, receive: Any, send: Any) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()

        watcher = asyncio.ensure_future(watch())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * 65536
        try:
            for _ in range(100_000):  # ~6 GiB: far more than any test reads
                if self.disconnected.is_set():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                # uvicorn's send returns at once on a closed connection: let watch() run.
                await asyncio.sleep(0)
        finally:
            watcher.cancel()


# Importable by name for in-process targets: asgi:tests.support.upstreams:handshake
handshake = Handshake()
