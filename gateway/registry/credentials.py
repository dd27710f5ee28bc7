"""Credential formats and hashing: the only place that knows how secrets look.

API keys look like `tg_<8-char prefix>_<43 urlsafe chars>` (256 random bits); client
secrets are 43 urlsafe chars. Both are stored as SHA-256 hex digests: the values are
random and long, so a slow password hash adds nothing but latency on the request path.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

API_KEY_PATTERN = re.compile(r"^tg_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


def hash_credential(plaintext: str) -> str:
    """SHA-256 hex digest of a key or secret: what the registry stores and looks up."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def matches(plaintext: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_credential(plaintext), stored_hash)


def new_api_key() -> tuple[str, str]:
    """A fresh API key: (prefix, plaintext)."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    return prefix, f"tg_{prefix}_{secrets.token_urlsafe(32)}"


def api_key_prefix(plaintext: str) -> str | None:
    """The identifying prefix of a well-formed key, None for anything else."""
    match = API_KEY_PATTERN.fullmatch(plaintext)
    return match.group(1) if match else None


def certificate_credential(fingerprint: str) -> str:
    """What a client certificate registered as a key is stored as (hashed, like a key):
    its SHA-256 fingerprint (hex of the DER), tagged so it can never equal a key."""
    return f"x509-sha256:{fingerprint.lower()}"


def certificate_prefix(fingerprint: str) -> str:
    """The listed prefix of a certificate credential: `x509:` and 8 hex digits."""
    return f"x509:{fingerprint.lower()[:8]}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_id(kind: str) -> str:
    """Opaque identifiers: `key_...`, `app_...`, `cl_...`."""
    return f"{kind}_{secrets.token_hex(8)}"
