"""Policy `request-size`: body size (413) and body deadline (408) per API.

A declared `Content-Length` over the limit is refused before a byte of the body is
read. A chunked body (or one that lies about its length) is counted while it
streams, and the deadline runs from the moment the policy admits the request to
the last body byte. Either violation ends the request with the connection closed
(see gateway/channels.py). Header size, URL length and the header deadline are
listener settings (`listeners.public`, gateway/listener.py), not per-API ones.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import Field

from gateway.channels import CLOSE, RequestRejected
from gateway.config.base import StrictModel
from gateway.context import RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.problem import ProblemResponse
from gateway.types import Message, Receive, Send

BODY_TOO_LARGE = "The request body exceeds {limit} bytes, the limit of API '{api}'."
BODY_TOO_SLOW = "The request body did not arrive within {limit:g} seconds."
BAD_LENGTH = "Content-Length must be a non-negative integer."


class RequestSizeConfig(StrictModel):
    max_body_bytes: int = Field(
        1 << 20, ge=0, le=1 << 34, description="Largest request body in bytes; larger → 413."
    )
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds to receive the whole body; slower → 408."
    )


class RequestSizePolicy:
    __slots__ = ("api", "limit", "name", "timeout")  # name: set by build_chain

    def __init__(self, config: RequestSizeConfig, api: str) -> None:
        self.limit = config.max_body_bytes
        self.timeout = config.body_timeout
        self.api = api

    async def __call__(self, ctx: RequestContext) -> ProblemResponse | None:
        length = ctx.header(b"content-length")
        if length is not None:
            if not length.isdigit():
                return ProblemResponse(400, BAD_LENGTH, headers=[_CLOSE])
            if int(length) > self.limit:
                return self._too_large()
            if length == b"0":
                return None
        elif ctx.header(b"transfer-encoding") is None:
            return None  # no body
        ctx.channel_wrappers.append(self._wrap)
        return None

    def _too_large(self) -> ProblemResponse:
        return ProblemResponse(
            413, BODY_TOO_LARGE.format(limit=self.limit, api=self.api), headers=[_CLOSE]
        )

    def _wrap(self, receive: Receive, send: Send) -> tuple[Receive, Send]:
        deadline = time.monotonic() + self.timeout
        received = 0
        done = False

        async def limited() -> Message:
            nonlocal received, done
            if done:
                return await receive()  # after the body: only a disconnect can come
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    message = await receive()
            except TimeoutError:
                raise RequestRejected(
                    ProblemResponse(408, BODY_TOO_SLOW.format(limit=self.timeout))
                ) from None
            received += len(message.get("body", b""))
            if received > self.limit:
                raise RequestRejected(self._too_large())
            done = not message.get("more_body", False)
            return message

        return limited, send


_CLOSE = (CLOSE[0].decode(), CLOSE[1].decode())


def build(config: RequestSizeConfig, ctx: BuildContext) -> RequestSizePolicy:
    return RequestSizePolicy(config, ctx.api.name)


SPEC = PolicySpec(
    name="request-size",
    priority=PRIORITY["request-size"],
    config_model=RequestSizeConfig,
    build=build,
    description="Request body size (413) and body deadline (408).",
)
