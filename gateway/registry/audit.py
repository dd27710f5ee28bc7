"""The audit trail: who changed what in the registry or the gateway, and when.

Entries are only ever appended: this module has no update and no delete, and neither
the admin API nor the CLI offers one. Before/after documents are stored with every
secret replaced by "[redacted]".
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from gateway.registry import schema as t
from gateway.registry.store import Registry

REDACTED = "[redacted]"
# Fields that hold a secret or a credential (or a hash of one) wherever they appear.
SECRET_FIELDS = frozenset(
    {
        "client_secret",
        "secret",
        "secret_hash",
        "previous_secret_hash",
        "key",
        "key_hash",
        "password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "private_pem",
        "code",
    }
)
MAX_PAGE = 500


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if k.lower() in SECRET_FIELDS and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    target: str | None
    before: Any
    after: Any

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
        }


async def append(
    registry: Registry,
    actor: str,
    action: str,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    async with registry.engine.begin() as conn:
        await conn.execute(
            t.audit_log.insert().values(
                at=time.time(),
                actor=actor[:160],
                action=action[:200],
                target=target[:256] if target else None,
                before=_dump(before),
                after=_dump(after),
            )
        )


async def entries(
    registry: Registry,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: float | None = None,
    until: float | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Newest first; `before_id` pages on (the last id of the previous page)."""
    table = t.audit_log
    query = select(table).order_by(table.c.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    if actor is not None:
        query = query.where(table.c.actor == actor)
    if action is not None:
        query = query.where(table.c.action.startswith(action, autoescape=True))
    if target is not None:
        query = query.where(table.c.target == target)
    if since is not None:
        query = query.where(table.c.at >= since)
    if until is not None:
        query = query.where(table.c.at < until)
    if before_id is not None:
        query = query.where(table.c.id < before_id)
    async with registry.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        AuditEntry(
            row.id, row.at, row.actor, row.action, row.target, _load(row.before), _load(row.after)
        )
        for row in rows
    ]


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(redact(value), sort_keys=True, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
