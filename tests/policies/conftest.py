from tests.limits.conftest import http
from tests.support.databases import postgres_url, registry_url

__all__ = ["http", "postgres_url", "registry_url"]
