"""Where the gateway keeps the secrets of its embedded services' identities.

The registry stores only hashes, so the secret an in-process tier API uses must be kept
by the gateway itself to survive a restart: in `service-credentials.json` beside an
SQLite registry (`var/` otherwise), readable by the gateway's user only. A secret in the
file stays in use while the registry accepts it; it changes only when rotated
(`tiergate clients rotate svc-NAME` or the admin API), which also writes the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy.engine import make_url

FILE_NAME = "service-credentials.json"


def secrets_path(registry_url: str) -> Path:
    url = make_url(registry_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / FILE_NAME
    return Path("var") / FILE_NAME


def load_secrets(path: Path) -> dict[str, str]:
    """client_id → secret; empty when the file is missing or unreadable (then re-keyed)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def save_secrets(path: Path, secrets: dict[str, str]) -> None:
    """Replace the file atomically, created with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(secrets, out, indent=2, sort_keys=True)
    os.replace(temporary, path)


def remember_secret(registry_url: str, client_id: str, secret: str) -> bool:
    """After a rotation: update the file if it holds this client; True when it did."""
    path = secrets_path(registry_url)
    secrets = load_secrets(path)
    if client_id not in secrets:
        return False
    secrets[client_id] = secret
    save_secrets(path, secrets)
    return True
