"""The admin token when neither TIERGATE_ADMIN_TOKEN nor `admin_token` sets one:
`tiergate up` generates it at first start into var/admin-token (mode 0600), prints it
once and reuses it; the CLI commands that call the admin API read it from there."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from gateway.config.models import GatewayConfig
from gateway.loading import load_config

TOKEN_FILE = Path("var") / "admin-token"  # beside the default SQLite registry


def token_file(config: GatewayConfig) -> Path:
    """var/admin-token in the config file's folder (like its contracts): the same file
    whatever folder `up` or an admin command runs from."""
    return TOKEN_FILE if config.source is None else config.source.parent / TOKEN_FILE


GENERATED = (
    "tiergate: admin token generated and stored in {path} (mode 0600); shown once:\n  {token}"
)
NO_TOKEN = (
    "no admin token: set TIERGATE_ADMIN_TOKEN (or admin_token in the config), or run "  # noqa: S105
    "`tiergate up` once in this directory, which stores one in {path}"
)


def stored_admin_token(path: Path = TOKEN_FILE) -> str | None:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def admin_token(config: GatewayConfig, path: Path | None = None) -> str | None:
    """What an admin CLI command sends: the configured token, else the stored one."""
    return config.admin_token or stored_admin_token(path or token_file(config))


def ensure_admin_token(config: GatewayConfig, path: Path | None = None) -> GatewayConfig:
    """The config with an admin token: configured, stored, or generated and stored now."""
    if config.admin_token:
        return config
    path = path or token_file(config)
    token = stored_admin_token(path) or _generate(path)
    return config.model_copy(update={"admin_token": token})


def _generate(path: Path) -> str:
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Created 0600 from the start (never readable by others, not even briefly), and
        # only if absent: gateways started together in one folder agree on one token.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        time.sleep(0.2)  # another process is writing it
        existing = stored_admin_token(path)
        if existing is not None:
            return existing
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # an empty file: no token in it
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    print(GENERATED.format(path=path, token=token), flush=True)
    return token


def admin_call(config_file: str | None, admin_url: str | None, path: str) -> tuple[str, str] | None:
    """For commands that call a running gateway's admin API: (URL of `path`, token).
    The admin URL defaults to the config's admin listener; None (said on stderr) when
    there is no token."""
    import sys

    config = load_config(config_file)
    token = admin_token(config)
    if token is None:
        print(f"tiergate: {NO_TOKEN.format(path=token_file(config))}", file=sys.stderr)
        return None
    admin = config.listeners.admin
    base = admin_url or f"http://{admin.host}:{admin.port}"
    return f"{base.rstrip('/')}{path}", token
