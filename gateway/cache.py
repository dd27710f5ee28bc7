"""Response cache storage (LRU bounded by bytes) and the component that owns it.

One `ResponseStore` per API that opts in (`response-cache` policy), all reachable
through `gateway.services["response-cache"]` (a `CacheRegistry`), so the admin
API can purge them: `DELETE /admin/cache` (every API) and `DELETE
/admin/cache/{api}`, with `Authorization: Bearer <admin_token>`. In-process
memory only: each gateway node caches on its own (a Redis-backed store is not
implemented; purge each node, or keep TTLs short).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin.auth import require_admin
from gateway.components import Component
from gateway.problem import ProblemResponse
from gateway.types import RawHeaders

UNKNOWN_API = "API '{api}' has no response cache."
SERVICE = "response-cache"


@dataclass(slots=True)
class Entry:
    status: int
    headers: RawHeaders
    body: bytes
    stored: float  # monotonic time the response was received
    initial_age: float  # Age the upstream reported
    lifetime: float  # seconds fresh, from s-maxage / max-age / the default
    vary: tuple[tuple[bytes, bytes | None], ...] = ()  # request header values it varies on
    size: int = field(default=0)

    def age(self, now: float) -> float:
        return self.initial_age + (now - self.stored)

    def fresh(self, now: float) -> bool:
        return self.age(now) < self.lifetime


class ResponseStore:
    """Variants per key, least recently used evicted first, bounded by bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple, list[Entry]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def get(self, key: tuple, headers: RawHeaders, now: float | None = None) -> Entry | None:
        variants = self._entries.get(key)
        if not variants:
            return None
        now = time.monotonic() if now is None else now
        for entry in variants:
            if all(_value(headers, name) == value for name, value in entry.vary):
                if not entry.fresh(now):
                    self._remove(key, entry)
                    return None
                self._entries.move_to_end(key)
                return entry
        return None

    def put(self, key: tuple, entry: Entry) -> None:
        entry.size = len(entry.body) + sum(len(k) + len(v) for k, v in entry.headers) + 200
        if entry.size > self.max_bytes:
            return
        variants = self._entries.setdefault(key, [])
        for old in [v for v in variants if v.vary == entry.vary]:
            self._remove(key, old)
        self._entries.setdefault(key, []).append(entry)
        self._entries.move_to_end(key)
        self.bytes += entry.size
        while self.bytes > self.max_bytes and self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            self._remove(oldest_key, oldest[0])

    def _remove(self, key: tuple, entry: Entry) -> None:
        variants = self._entries.get(key, [])
        if entry in variants:
            variants.remove(entry)
            self.bytes -= entry.size
        if not variants:
            self._entries.pop(key, None)

    def clear(self) -> int:
        count = len(self)
        self._entries.clear()
        self.bytes = 0
        return count


def _value(headers: RawHeaders, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


class CacheRegistry:
    """The stores of every API with a response cache, by API name."""

    def __init__(self) -> None:
        self.stores: dict[str, ResponseStore] = {}

    def store(self, api: str, max_bytes: int) -> ResponseStore:
        store = self.stores.get(api)
        if store is None or store.max_bytes != max_bytes:
            store = self.stores[api] = ResponseStore(max_bytes)
        return store

    def purge(self, api: str | None = None) -> int:
        if api is None:
            return sum(store.clear() for store in self.stores.values())
        return self.stores[api].clear()


class CacheComponent(Component):
    name = "response-cache"

    def __init__(self, gateway: object) -> None:
        super().__init__(gateway)  # type: ignore[arg-type]
        self.registry = CacheRegistry()
        self.gateway.services[SERVICE] = self.registry

    def admin_routes(self) -> list[BaseRoute]:
        token = self.gateway.config.admin_token
        return [
            Route("/admin/cache", require_admin(token, self._purge_all), methods=["DELETE"]),
            Route(
                "/admin/cache/{api}", require_admin(token, self._purge_api), methods=["DELETE"]
            ),
        ]

    async def _purge_all(self, request: Request) -> Response:
        return JSONResponse({"purged": self.registry.purge()})

    async def _purge_api(self, request: Request) -> Response:
        api = request.path_params["api"]
        if api not in self.registry.stores:
            return ProblemResponse(404, UNKNOWN_API.format(api=api))  # type: ignore[return-value]
        return JSONResponse({"api": api, "purged": self.registry.purge(api)})


__all__ = ["CacheComponent", "CacheRegistry", "Entry", "ResponseStore"]
