"""Registry: consumers, applications, OAuth clients, API keys, plans, signing keys, end
users, authorization codes and refresh-token families.

SQLAlchemy Core (async); SQLite file by default, PostgreSQL by URL. Secrets are
stored as hashes only (`hash_credential`).
"""

from gateway.registry.credentials import api_key_prefix, hash_credential
from gateway.registry.records import (
    ApiKeyRecord,
    ApplicationRecord,
    AuthorizationCodeRecord,
    ClientRecord,
    ConsumerRecord,
    RefreshFamilyRecord,
    SigningKeyRecord,
    UserRecord,
)
from gateway.registry.store import Conflict, NotFound, Registry, RegistryError

__all__ = [
    "ApiKeyRecord",
    "ApplicationRecord",
    "AuthorizationCodeRecord",
    "ClientRecord",
    "Conflict",
    "ConsumerRecord",
    "NotFound",
    "RefreshFamilyRecord",
    "Registry",
    "RegistryError",
    "SigningKeyRecord",
    "UserRecord",
    "api_key_prefix",
    "hash_credential",
]
