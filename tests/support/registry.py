"""One registry call from synchronous test code, on a registry of its own."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.registry import Registry


def registry_call(url: str, method: str, *args: Any, **kwargs: Any) -> Any:
    async def call() -> Any:
        registry = Registry.from_url(url)
        try:
            await registry.start()
            return await getattr(registry, method)(*args, **kwargs)
        finally:
            await registry.aclose()

    return asyncio.run(call())
