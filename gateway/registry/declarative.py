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

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, select, update

from gateway.registry import schema as t
from gateway.registry.credentials import hash_credential, new_secret
from gateway.registry.end_users import CUSTOMER_ID, USERNAME
from gateway.registry.passwords import hash_password
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
BAD_USER = "users[{index}]: {problem}"


def _new_user(_: dict[str, Any]) -> dict[str, Any]:
    """A user the document lists and the registry lacks: a document never holds a password,
    so the user gets a new one, shown once (like a client's new secret)."""
    password = secrets.token_urlsafe(18)
    return {
        "created_at": time.time(),
        "password_hash": hash_password(password),
        "failed_attempts": 0,
        "_secret": password,
    }


def _users_section() -> Section | None:
    """End users, when the registry has them: name, customer and whether disabled; never
    the password hash or sign-in counters. A user `apply` creates gets a new password."""
    table = t.metadata.tables.get("users")
    if table is None:
        return None
    fields = (
        Field("username", "username"),
        Field("customer_id", "customer"),
        Field("disabled_at", "disabled_at"),
    )
    return Section("users", table, "username", fields, _new_user)


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
            if section.name == "users":
                problems += _user_problems(index, entry)
    return problems


def _user_problems(index: int, entry: dict[str, Any]) -> list[str]:
    """What `tiergate users create` would refuse, refused before anything is written."""
    problems = []
    if isinstance(entry.get("username"), str) and not USERNAME.fullmatch(entry["username"]):
        problems.append(BAD_USER.format(index=index, problem="username is not a valid name"))
    if not isinstance(entry.get("customer"), str) or not CUSTOMER_ID.fullmatch(entry["customer"]):
        problems.append(BAD_USER.format(index=index, problem="customer must be cus_NNNN"))
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
            if name not in have:
                changes.append(Change("create", section, name, None, entry))
            elif have[name] != entry:
                changes.append(Change("update", section, name, have[name], entry))
        if prune and section.name != "users":  # users are removed by disabling them
            for name in sorted(set(have) - set(want)):
                deletes.append(Change("delete", section, name, have[name], None))
    return changes + deletes[::-1]  # delete what depends on others first


async def apply_changes(registry: Registry, changes: list[Change]) -> list[tuple[str, str, str]]:
    """Make the changes in one transaction; returns (section, key, secret) of what was
    created with a new secret: clients' secrets and users' passwords, to show once."""
    shown: list[tuple[str, str, str]] = []
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
                shown.append((section.name, change.key, secret))
            await conn.execute(table.insert().values(**values, **extra))
    return shown
