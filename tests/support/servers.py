"""Real servers on real sockets for tests: uvicorn for ASGI apps, werkzeug for httpbin."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import uvicorn


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP; with proto 0, keep-alive responses waited ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.set_inheritable(True)
    return sock


def free_port() -> int:
    with free_socket() as sock:
        return int(sock.getsockname()[1])


# Below the kernel's ephemeral range (32768-60999 by default), where outgoing
# connections of other tests can't take a port between this check and the bind.
_BLOCK_RANGE = range(20000, 32000)


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive free ports: `up --workers N` gives worker i the
    admin port + i, so a test that takes one free port can find the next one in use."""
    for _ in range(200):
        first = random.randrange(_BLOCK_RANGE.start, _BLOCK_RANGE.stop - count)
        if all(_bindable(host, port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports on {host}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class Server(uvicorn.Server):
    """uvicorn's server without its signal handlers, which `exit()` stops at once: its
    main loop otherwise looks at `should_exit` only every 0.1 s, and its shutdown sleeps
    0.1 s more; tests stop servers hundreds of times a run."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None

    def capture_signals(self) -> Any:
        return _no_signals_cm()

    async def main_loop(self) -> None:
        # uvicorn's own loop (on_tick keeps the Date header fresh), with a sleep that
        # `exit()` cuts short.
        self._woken = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's shutdown, step by step, polling every 5 ms where uvicorn sleeps 0.1 s
        # at least once (for closed connections to go) and then 0.1 s at a time.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                while (state.connections or state.tasks) and not self.force_exit:
                    await asyncio.sleep(0.005)
        except TimeoutError:
            for task in state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def exit(self) -> None:
        """Ask the server to stop, from any thread."""
        self.should_exit = True
        loop, woken = self._loop, self._woken
        if loop is not None and woken is not None:
            with suppress(RuntimeError):  # the loop is closed: it has stopped already
                loop.call_soon_threadsafe(woken.set)


class UvicornThread:
    """A uvicorn server in a thread of its own, with its own event loop."""

    def __init__(self, app: Any, **options: Any) -> None:
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        options.setdefault("log_level", "warning")
        options.setdefault("lifespan", "on")
        options.setdefault("proxy_headers", False)  # as `tiergate up`: the gateway decides
        self.config = uvicorn.Config(app, **options)
        self.server = Server(self.config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))
        finally:  # an unclosed loop leaks its self-pipe sockets (ResourceWarning)
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self, timeout: float = 20.0) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn stopped during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.exit()
        self.thread.join(timeout)
        self.sock.close()


@contextmanager
def _no_signals_cm() -> Iterator[None]:
    yield


@contextmanager
def serve_asgi(app: Any, **options: Any) -> Iterator[UvicornThread]:
    server = UvicornThread(app, **options).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def serve_httpbin() -> Iterator[str]:
    """The httpbin service on a real socket (werkzeug's threaded HTTP/1.1 server)."""
    import httpbin
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, httpbin.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
