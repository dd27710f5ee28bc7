"""In-process upstreams: an ASGI app called directly, streaming both ways.

This is the embedded mode's transport: the tier APIs run in the gateway's process
and are reached without sockets, yet through the same seam and the same policies.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

from gateway.proxy.errors import UpstreamError, UpstreamProtocolError, UpstreamTimeout
from gateway.proxy.transport import UpstreamRequest
from gateway.types import ASGIApp, Message, RawHeaders

_END = object()
INTERNAL_HOST = b"tiergate.internal"


def load_asgi(target: str) -> ASGIApp:
    """Resolve `asgi:package.module:attribute` to the app object."""
    _, module_name, attribute = target.split(":", 2)
    module = importlib.import_module(module_name)
    app: ASGIApp = getattr(module, attribute)
    return app


class AsgiResponse:
    __slots__ = ("_closed", "_ended", "_queue", "_read_timeout", "_task", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: RawHeaders,
        queue: asyncio.Queue,
        task: asyncio.Task,
        read_timeout: float,
        closed: asyncio.Event,
    ) -> None:
        self._closed = closed
        self._ended = False
        self.status = status
        self.headers = headers
        self._queue = queue
        self._task = task
        self._read_timeout = read_timeout

    def buffered_body(self) -> None:
        return None  # read as it streams: iter_body

    async def iter_body(self) -> AsyncIterator[bytes]:
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), self._read_timeout)
            except TimeoutError:
                raise UpstreamTimeout("in-process app stalled while sending its body") from None
            if item is _END:
                self._ended = True
                return
            if isinstance(item, BaseException):
                raise UpstreamProtocolError(f"in-process app failed: {item!r}") from item
            yield item

    async def aclose(self) -> None:
        self._closed.set()
        # A finished body may still have background work to do (starlette runs
        # background tasks after the last body message): only cut short a stream.
        if not self._ended and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # being torn down
                await self._task


class AsgiTransport:
    """Call one in-process ASGI app. `state` is the app's lifespan state (ASGI spec)."""

    def __init__(self, app: ASGIApp, state: dict[str, Any] | None = None) -> None:
        self.app = app
        self.state = state if state is not None else {}
        self._lifespan: asyncio.Task | None = None
        self._lifespan_in: asyncio.Queue = asyncio.Queue()
        self._lifespan_out: asyncio.Queue = asyncio.Queue()

    async def startup(self) -> None:
        """Run the app's lifespan startup, if it speaks lifespan."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._lifespan = asyncio.create_task(
            self.app(scope, self._lifespan_in.get, self._lifespan_out.put)  # type: ignore[arg-type]
        )
        await self._lifespan_in.put({"type": "lifespan.startup"})
        message = await self._next_lifespan_message()
        if message and message["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"in-process app failed to start: {message.get('message', '')}")

    async def _next_lifespan_message(self) -> Message | None:
        assert self._lifespan is not None
        getter = asyncio.ensure_future(self._lifespan_out.get())
        done, _ = await asyncio.wait({getter, self._lifespan}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        # The app returned or raised without answering: it does not speak lifespan.
        return None

    async def aclose(self) -> None:
        if self._lifespan is None or self._lifespan.done():
            return
        await self._lifespan_in.put({"type": "lifespan.shutdown"})
        await self._next_lifespan_message()
        self._lifespan.cancel()

    async def send(self, request: UpstreamRequest) -> AsgiResponse:
        path, _, query = request.path_qs.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("ascii"),
            "root_path": "",
            "query_string": query.encode("latin-1"),
            # The gateway drops the client's Host; HTTP/1.1 apps expect one (aiohttp adds
            # the target's for HTTP upstreams).
            "headers": [(b"host", INTERNAL_HOST), *request.headers],
            "client": ("127.0.0.1", 0),
            "server": (INTERNAL_HOST.decode(), 80),
            "state": dict(self.state),
        }
        started: asyncio.Future = asyncio.get_running_loop().create_future()
        queue: asyncio.Queue = asyncio.Queue(maxsize=16)  # backpressure on the app
        closed = asyncio.Event()
        body_done = False
        ended = False
        body = request.body

        async def receive() -> Message:
            nonlocal body, body_done
            if not body_done:
                if body is None or isinstance(body, bytes):
                    chunk, body, body_done = body or b"", None, True
                    return {"type": "http.request", "body": chunk, "more_body": False}
                try:
                    chunk = await body.__anext__()
                    return {"type": "http.request", "body": chunk, "more_body": True}
                except StopAsyncIteration:
                    body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            await closed.wait()  # the forwarder closes the response when the client leaves
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.start":
                headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
                started.set_result((message["status"], headers))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    await queue.put(chunk)
                if not message.get("more_body", False):
                    ended = True
                    await queue.put(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(UpstreamProtocolError(f"in-process app failed: {exc!r}"))
                else:
                    await queue.put(exc)
                return
            if not started.done():
                started.set_exception(UpstreamProtocolError("in-process app sent no response"))
            elif not ended:
                await queue.put(_END)

        task = asyncio.create_task(run())
        try:
            status, headers = await asyncio.wait_for(asyncio.shield(started), request.read_timeout)
        except TimeoutError:
            task.cancel()
            raise UpstreamTimeout("in-process app did not answer in time") from None
        except UpstreamError:
            raise
        return AsgiResponse(status, headers, queue, task, request.read_timeout, closed)
