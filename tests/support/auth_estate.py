"""A gateway with its real identity components (registry on SQLite or PostgreSQL, the
built-in OAuth server) on uvicorn, forwarding to httpbin; and direct registry access."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from gateway.registry import Registry
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.tokens import BUILTIN_ISSUER, SigningKey

T = TypeVar("T")


def with_registry(url: str, action: Callable[[Registry], Awaitable[T]]) -> T:
    """Run `action` against the registry the gateway uses (own engine, own event loop)."""

    async def run() -> T:
        registry = Registry.from_url(url)
        try:
            await registry.start()
            return await action(registry)
        finally:
            await registry.aclose()

    return asyncio.run(run())


@contextmanager
def identity_gateway(
    tmp_path: Path, apis: list[dict[str, Any]], database: str | None = None, **top: Any
) -> Iterator[Any]:
    url = database or f"sqlite:///{tmp_path}/registry.db"
    oauth = {"issuer": BUILTIN_ISSUER, "key_activation_delay": 0, "refresh_interval": 0.5}
    config = make_config(tmp_path, apis, registry_url=url, oauth=oauth, **top)
    gateway = build_gateway(config)
    with serve_asgi(gateway) as server:
        kid, alg, private = gateway.services.issuer.signing_key()
        yield SimpleNamespace(
            url=server.url,
            gateway=gateway,
            registry_url=url,
            key=SigningKey(kid, alg, private),  # the built-in server's own signing key
            registry=lambda action: with_registry(url, action),
        )
