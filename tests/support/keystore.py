"""API keys in a real SQLite database, answering the registry's agreed lookup
`api_key_by_hash(key_hash) -> record | None` until the registry branch is merged."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, prefix TEXT NOT NULL, key_hash TEXT UNIQUE NOT NULL,
    consumer_id TEXT NOT NULL, plan TEXT NOT NULL, apis TEXT NOT NULL,
    expires_at TEXT, revoked_at TEXT)"""


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    prefix: str
    consumer_id: str
    plan: str
    apis: frozenset[str]
    expires_at: datetime | None
    revoked_at: datetime | None


class SqliteKeys:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute(SCHEMA)
        self.lock = threading.Lock()
        self.lookups = 0

    def create(
        self, consumer: str, plan: str, apis: list[str], expires_at: datetime | None = None
    ) -> tuple[str, str]:
        prefix = secrets.token_urlsafe(6)
        key = f"tg_{prefix}_{secrets.token_urlsafe(32)}"
        key_id = secrets.token_hex(8)
        with self.lock:
            self.db.execute(
                "INSERT INTO api_keys VALUES (?,?,?,?,?,?,?,NULL)",
                (
                    key_id,
                    prefix,
                    hashlib.sha256(key.encode()).hexdigest(),
                    consumer,
                    plan,
                    ",".join(apis),
                    expires_at.isoformat() if expires_at else None,
                ),
            )
        return key_id, key

    def revoke(self, key_id: str) -> None:
        with self.lock:
            now = datetime.now(UTC).isoformat()
            self.db.execute("UPDATE api_keys SET revoked_at=? WHERE id=?", (now, key_id))

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        self.lookups += 1
        with self.lock:
            row = self.db.execute(
                "SELECT id, prefix, consumer_id, plan, apis, expires_at, revoked_at "
                "FROM api_keys WHERE key_hash=?",
                (key_hash,),
            ).fetchone()
        if row is None:
            return None
        key_id, prefix, consumer, plan, apis, expires, revoked = row
        return ApiKeyRecord(
            key_id,
            prefix,
            consumer,
            plan,
            frozenset(apis.split(",")),
            datetime.fromisoformat(expires) if expires else None,
            datetime.fromisoformat(revoked) if revoked else None,
        )
