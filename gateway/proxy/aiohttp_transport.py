"""HTTP upstreams over aiohttp's pooled connector (the cheapest client measured)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from gateway.proxy.errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from gateway.proxy.transport import UpstreamRequest
from gateway.types import RawHeaders

# aiohttp would add these when the client did not send them; a proxy must not.
_SKIP_AUTO_HEADERS = ("Accept", "User-Agent", "Accept-Encoding", "Content-Type")


class AiohttpResponse:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: RawHeaders = [(k.lower(), v) for k, v in response.raw_headers]

    def buffered_body(self) -> None:
        return None  # read as it streams: iter_body

    async def iter_body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(str(exc)) from exc

    async def aclose(self) -> None:
        self._response.release() if self._response.content.at_eof() else self._response.close()


class AiohttpTransport:
    """One pooled session for every HTTP upstream; keep-alive, no redirects, no decoding."""

    def __init__(
        self,
        max_connections: int = 1000,
        max_per_host: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self._limit = max_connections
        self._per_host = max_per_host
        # An API's own TLS toward its targets (private CA, client certificate, SNI name).
        self._tls: dict[str, Any] = {}
        self.ssl_context = ssl_context
        if ssl_context is not None:
            self._tls["ssl"] = ssl_context
        if server_name is not None:
            self._tls["server_hostname"] = server_name
        self._session: aiohttp.ClientSession | None = None
        # One ClientTimeout per (connect, read) pair: building one costs ~2.5 µs.
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=self._per_host, ttl_dns_cache=60, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    async def send(self, request: UpstreamRequest) -> AiohttpResponse:
        session = self._session or self._open()
        url = URL(request.target + request.path_qs, encoded=True)
        # A list, not a generator: CIMultiDict builds from it in half the time.
        headers = CIMultiDict(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        )
        timeout = self._timeouts.get((request.connect_timeout, request.read_timeout))
        if timeout is None:
            timeout = self._timeout(request.connect_timeout, request.read_timeout)
        try:
            response = await session.request(
                request.method,
                url,
                headers=headers,
                data=request.body,
                allow_redirects=False,
                timeout=timeout,
                **self._tls,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamProtocolError(str(exc)) from exc
        return AiohttpResponse(response)

    def _timeout(self, connect: float, read: float) -> aiohttp.ClientTimeout:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
        self._timeouts[(connect, read)] = timeout
        return timeout

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
