"""Declarative registry state: one document of consumers (with their plans), applications,
OAuth clients and API keys, exported from a registry and applied to one.

The document never holds a secret: clients appear without their secret (a client created
by `apply` gets a new one, shown once), keys as metadata plus the SHA-256 of the key
(`key_sha256`), which lets a key issued by one registry work in another without the key
itself ever being written down. Applying computes a diff (create, update, delete) per
section; deletes happen only with `prune`. Applying a document and exporting gives the
same document back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, select, update

from gateway.registry import schema as t
from gateway.registry.credentials import hash_credential, new_secret
from gateway.registry.store import Registry

VERSION = 1
BAD_DOCUMENT = "the document {problem}"


def _text(value: Any) -> Any:
    return value


def _space(value: Any) -> Any:
    return sorted(value.split()) if isinstance(value, str) else value


def _comma(value: Any) -> Any:
    return sorted(filter(None, value.split(","))) if isinstance(value, str) else value


def _to_space(value: Any) -> Any:
    return " ".join(sorted(value)) if isinstance(value, list) else value


def _to_comma(value: Any) -> Any:
    return ",".join(sorted(value)) if isinstance(value, list) else value


@dataclass(frozen=True)
class Field:
    column: str
    name: str  # in the document
    out: Callable[[Any], Any] = _text  # row → document
    into: Callable[[Any], Any] = _text  # document → row


@dataclass(frozen=True)
class Section:
    name: str
    table: Table
    key: str  # the primary-key column
    fields: tuple[Field, ...]
    on_create: Callable[[dict[str, Any]], dict[str, Any]]  # columns a new row also needs

    def document(self, row: Any) -> dict[str, Any]:
        return {f.name: f.out(getattr(row, f.column)) for f in self.fields}

    def columns(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {f.column: f.into(entry.get(f.name)) for f in self.fields}

    def normalised(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An entry as export writes it (lists sorted, absent fields None)."""
        return {f.name: f.out(f.into(entry.get(f.name))) for f in self.fields}


def _created(_: dict[str, Any]) -> dict[str, Any]:
    return {"created_at": time.time()}


def _new_client(_: dict[str, Any]) -> dict[str, Any]:
    secret = new_secret()
    return {"created_at": time.time(), "secret_hash": hash_credential(secret), "_secret": secret}


SECTIONS: tuple[Section, ...] = (
    Section(
        "consumers",
        t.consumers,
        "id",
        (Field("id", "id"), Field("plan", "plan"), Field("description", "description")),
        _created,
    ),
    Section(
        "applications",
        t.applications,
        "id",
        (Field("id", "id"), Field("consumer_id", "consumer"), Field("name", "name")),
        _created,
    ),
    Section(
        "clients",
        t.oauth_clients,
        "client_id",
        (
            Field("client_id", "client_id"),
            Field("name", "name"),
            Field("consumer_id", "consumer"),
            Field("application_id", "application"),
            Field("kind", "kind"),
            Field("api", "api"),
            Field("tier", "tier"),
            Field("plan", "plan"),
            Field("scopes", "scopes", _space, _to_space),
            Field("grant_types", "grant_types", _space, _to_space),
            Field("revoked_at", "revoked_at"),
        ),
        _new_client,
    ),
    Section(
        "keys",
        t.api_keys,
        "id",
        (
            Field("id", "id"),
            Field("prefix", "prefix"),
            Field("key_hash", "key_sha256"),
            Field("consumer_id", "consumer"),
            Field("plan", "plan"),
            Field("apis", "apis", _comma, _to_comma),
            Field("scopes", "scopes", _space, _to_space),
            Field("operations", "operations", _comma, _to_comma),
            Field("expires_at", "expires_at"),
            Field("revoked_at", "revoked_at"),
            Field("replaced_by", "replaced_by"),
        ),
        _created,
    ),
)
USERS_CREATED_ELSEWHERE = (
    "users[{index}] {name!r} is not in the registry: create users with `tiergate users create` "
    "(a user needs a password, which a document never holds)"
)


def _users_section() -> Section | None:
    """End users, when the registry has them: name, customer and whether disabled; never
    the password hash or sign-in counters. `apply` updates users but cannot create them."""
    table = t.metadata.tables.get("users")
    if table is None:
        return None
    fields = (
        Field("username", "username"),
        Field("customer_id", "customer"),
        Field("disabled_at", "disabled_at"),
    )
    return Section("users", table, "username", fields, _created)


def sections() -> list[Section]:
    users = _users_section()
    return [*SECTIONS, users] if users is not None else list(SECTIONS)


async def export_state(registry: Registry) -> dict[str, Any]:
    document: dict[str, Any] = {"version": VERSION}
    async with registry.engine.connect() as conn:
        for section in sections():
            table = section.table
            rows = (await conn.execute(select(table).order_by(table.c[section.key]))).all()
            document[section.name] = [section.document(row) for row in rows]
    return document


@dataclass
class Change:
    verb: str  # create | update | delete
    section: Section
    key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def describe(self) -> list[str]:
        mark = {"create": "+", "update": "~", "delete": "-"}[self.verb]
        lines = [f"{mark} {self.section.name} {self.key}"]
        if self.verb == "update" and self.before is not None and self.after is not None:
            for name, value in self.after.items():
                if self.before.get(name) != value:
                    lines.append(f"    {name}: {self.before.get(name)!r} -> {value!r}")
        return lines


def check_document(document: Any) -> list[str]:
    if not isinstance(document, dict):
        return [BAD_DOCUMENT.format(problem="must be a mapping")]
    problems = []
    if document.get("version") != VERSION:
        problems.append(BAD_DOCUMENT.format(problem=f"must say version: {VERSION}"))
    for section in sections():
        entries = document.get(section.name, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            problems.append(BAD_DOCUMENT.format(problem=f"{section.name}: must be a list of maps"))
            continue
        key = next(f.name for f in section.fields if f.column == section.key)
        names = {f.name for f in section.fields}
        for index, entry in enumerate(entries):
            if not isinstance(entry.get(key), str):
                problems.append(f"{section.name}[{index}]: {key} is missing")
            for unknown in sorted(set(entry) - names):
                problems.append(f"{section.name}[{index}]: unknown field {unknown!r}")
    return problems


async def plan_changes(registry: Registry, document: dict[str, Any], prune: bool) -> list[Change]:
    current = await export_state(registry)
    changes: list[Change] = []
    deletes: list[Change] = []
    for section in sections():
        key = next(f.name for f in section.fields if f.column == section.key)
        have = {entry[key]: entry for entry in current[section.name]}
        want = {entry[key]: section.normalised(entry) for entry in document.get(section.name, [])}
        for name, entry in sorted(want.items()):
            if name not in have and section.name == "users":
                continue  # reported by check_users
            if name not in have:
                changes.append(Change("create", section, name, None, entry))
            elif have[name] != entry:
                changes.append(Change("update", section, name, have[name], entry))
        if prune and section.name != "users":  # users are removed by disabling them
            for name in sorted(set(have) - set(want)):
                deletes.append(Change("delete", section, name, have[name], None))
    return changes + deletes[::-1]  # delete what depends on others first


async def apply_changes(registry: Registry, changes: list[Change]) -> dict[str, str]:
    """Make the changes in one transaction; returns the secrets of clients created."""
    secrets: dict[str, str] = {}
    async with registry.engine.begin() as conn:
        for change in changes:
            section, table = change.section, change.section.table
            where = table.c[section.key] == change.key
            if change.verb == "delete":
                await conn.execute(delete(table).where(where))
                continue
            assert change.after is not None
            values = section.columns(change.after)
            if change.verb == "update":
                await conn.execute(update(table).where(where).values(**values))
                continue
            extra = section.on_create(change.after)
            secret = extra.pop("_secret", None)
            if secret is not None:
                secrets[change.key] = secret
            await conn.execute(table.insert().values(**values, **extra))
    return secrets


async def check_users(registry: Registry, document: dict[str, Any]) -> list[str]:
    """Users the document lists that the registry lacks: `apply` cannot create them."""
    if _users_section() is None:
        return []
    have = {entry["username"] for entry in (await export_state(registry)).get("users", [])}
    return [
        USERS_CREATED_ELSEWHERE.format(index=index, name=entry.get("username"))
        for index, entry in enumerate(document.get("users", []))
        if entry.get("username") not in have
    ]
