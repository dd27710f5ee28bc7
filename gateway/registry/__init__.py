"""Registry: consumers, applications, OAuth clients, API keys, plans, signing keys.

SQLAlchemy Core (async); SQLite file by default, PostgreSQL by URL. Secrets are
stored as hashes only (`hash_credential`).
"""

from gateway.registry.credentials import api_key_prefix, hash_credential
from gateway.registry.records import (
    ApiKeyRecord,
    ApplicationRecord,
    ClientRecord,
    ConsumerRecord,
    SigningKeyRecord,
)
from gateway.registry.store import Conflict, NotFound, Registry, RegistryError

__all__ = [
    "ApiKeyRecord",
    "ApplicationRecord",
    "ClientRecord",
    "Conflict",
    "ConsumerRecord",
    "NotFound",
    "Registry",
    "RegistryError",
    "SigningKeyRecord",
    "api_key_prefix",
    "hash_credential",
]
