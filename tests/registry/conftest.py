import pytest

from gateway.registry import Registry
from tests.support.databases import postgres_url, registry_url

__all__ = ["postgres_url", "registry_url"]


@pytest.fixture
async def registry(registry_url):
    store = Registry.from_url(registry_url)
    await store.start()
    yield store
    await store.aclose()
