from tests.support.databases import postgres_url, registry_url

__all__ = ["postgres_url", "registry_url"]
