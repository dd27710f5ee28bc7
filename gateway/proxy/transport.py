"""The upstream seam: every byte to or from an upstream goes through a Transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from gateway.config.models import MAX_RESPONSE_HEADER_BYTES, MAX_RESPONSE_HEADERS
from gateway.types import RawHeaders

# Methods a retry may resend (RFC 9110 §9.2.2): forward's retries and the pool's replay
# of a request a stale connection dropped.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    target: str  # base URL such as http://10.0.0.5:8000/prefix (no trailing slash)
    path_qs: str  # percent-encoded path plus "?query" when present
    headers: RawHeaders
    body: bytes | AsyncIterator[bytes] | None  # bytes: replayable, sent with its length
    connect_timeout: float
    read_timeout: float
    max_response_headers: int = MAX_RESPONSE_HEADERS  # fields; more → UpstreamHeadersTooLarge
    max_response_header_bytes: int = MAX_RESPONSE_HEADER_BYTES


class UpstreamResponse(Protocol):
    status: int
    headers: RawHeaders

    def iter_body(self) -> AsyncIterator[bytes]: ...

    def buffered_body(self) -> bytes | None:
        """The whole body if it has all arrived already (b"" for none), taken from the
        response; None when it must be read with iter_body."""
        ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    """Send one request. Raise only gateway.proxy.errors.UpstreamError subclasses."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...
