"""Wrapped request channels: how a policy acts on the request body while it streams.

A policy that must see the body (size and time limits, body validation) cannot read
it up front without buffering every request, so it adds a `ChannelWrapper` to
`ctx.channel_wrappers`; the gateway applies them just before forwarding.

A wrapped `receive` refuses a body by raising `RequestRejected(response)`. Whatever
reads the body then fails: the forwarder (buffered body), aiohttp while streaming
it upstream (reported as an upstream error) or an in-process app. In every case the
client gets the rejection, not the upstream error it caused, as long as no response
has started; the rejection asks for the connection to be closed, since the rest of
the body was never read.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.context import ChannelWrapper, RequestContext
from gateway.problem import ProblemResponse
from gateway.types import ASGIApp, Message, Receive, Send

CLOSE = (b"connection", b"close")


class RequestRejected(Exception):
    """Raised by a wrapped receive; `response` is what the client gets instead."""

    def __init__(self, response: ASGIApp) -> None:
        super().__init__(getattr(response, "status", "rejected"))
        self.response = response


class GuardedChannels:
    """Applies ctx.channel_wrappers and turns a rejection into the client's response."""

    __slots__ = ("_send", "ctx", "receive", "rejection", "send", "started")

    def __init__(self, ctx: RequestContext, receive: Receive, send: Send) -> None:
        self.ctx = ctx
        self.rejection: RequestRejected | None = None
        self.started = False
        self._send = send
        inner_receive: Receive = receive
        inner_send: Send = self._send_raw
        for wrap in ctx.channel_wrappers:
            inner_receive, inner_send = wrap(inner_receive, inner_send)
        self.receive: Receive = self._noting(inner_receive)
        self.send: Send = inner_send

    def _noting(self, receive: Receive) -> Receive:
        """Remember a rejection raised while reading, so the send side can substitute it."""

        async def receive_noting() -> Message:
            try:
                return await receive()
            except RequestRejected as rejection:
                self.rejection = rejection
                raise

        return receive_noting

    async def _send_raw(self, message: Message) -> None:
        if self.rejection is not None:
            if not self.started and message["type"] == "http.response.start":
                await self.send_rejection(self.rejection)
            return  # the upstream's answer to a refused body is not the client's business
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def send_rejection(self, rejection: RequestRejected) -> int:
        """Send the rejection (once) unless a response has already started."""
        self.rejection = rejection
        if self.started:
            return 499
        self.started = True
        extra = [(b"x-request-id", self.ctx.request_id.encode()), *self.ctx.response_headers]

        async def send_with_close(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *extra]
                if CLOSE not in headers:
                    headers.append(CLOSE)
                message = {**message, "headers": headers}
            await self._send(message)

        await rejection.response(self.ctx.scope, _disconnected, send_with_close)
        return int(getattr(rejection.response, "status", 400))


async def read_body(receive: Receive, limit: int, too_large: str) -> bytes:
    """The whole request body, for a check that needs it all before forwarding; more than
    `limit` bytes raises RequestRejected (413, `too_large`). A client that disconnects
    leaves the body short: the forwarder sees that."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(parts)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestRejected(ProblemResponse(413, too_large))
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def whole_body_check(limit: int, too_large: str, check: Callable[[bytes], None]) -> ChannelWrapper:
    """A wrapper that reads the whole body (at most `limit` bytes) on the first receive,
    hands it to `check` (which raises RequestRejected to refuse it) and passes it on as
    one message; later receives go straight through."""

    def wrap(receive: Receive, send: Send) -> tuple[Receive, Send]:
        checked = False

        async def receive_checked() -> Message:
            nonlocal checked
            if checked:
                return await receive()
            checked = True
            body = await read_body(receive, limit, too_large)
            check(body)
            return {"type": "http.request", "body": body, "more_body": False}

        return receive_checked, send

    return wrap


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


__all__ = ["GuardedChannels", "RequestRejected", "read_body", "whole_body_check"]
