"""What the catalogue shows, computed once at start-up from config and contracts."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from gateway.config import contract_path
from gateway.config.models import ApiConfig, GatewayConfig

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TIER_ORDER = ("experience", "process", "system")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    scopes: tuple[str, ...]
    deprecated: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "operationId": self.operation_id,
            "summary": self.summary,
            "scopes": list(self.scopes),
            "deprecated": self.deprecated,
        }


@dataclass(frozen=True)
class ApiEntry:
    name: str
    tier: str
    version: str
    title: str
    description: str
    owner: str
    tags: tuple[str, ...]
    lifecycle: str
    deprecated_since: date | None
    sunset: date | None
    base_path: str
    public: bool
    auth: tuple[str, ...]
    scopes: tuple[str, ...]
    plans: tuple[tuple[str, str], ...]
    operations: tuple[Operation, ...]
    depends_on: tuple[str, ...]
    used_by: tuple[str, ...] = ()
    document: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def matches(self, q: str, tier: str, owner: str, tag: str, lifecycle: str) -> bool:
        if tier and self.tier != tier:
            return False
        if owner and self.owner != owner:
            return False
        if tag and tag not in self.tags:
            return False
        if lifecycle and self.lifecycle != lifecycle:
            return False
        if q:
            haystack = " ".join((self.name, self.title, self.description, *self.tags)).lower()
            return all(word in haystack for word in q.lower().split())
        return True

    def summary_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "tier": self.tier,
            "version": self.version,
            "owner": self.owner,
            "tags": list(self.tags),
            "lifecycle": self.lifecycle,
            "sunset": self.sunset.isoformat() if self.sunset else None,
            "base_path": self.base_path,
            "description": self.description,
        }

    def detail_json(self, visible: set[str]) -> dict[str, Any]:
        return {
            **self.summary_json(),
            "deprecated_since": self.deprecated_since.isoformat()
            if self.deprecated_since
            else None,
            "authentication": list(self.auth),
            "scopes": list(self.scopes),
            "plans": [{"name": n, "limits": lim} for n, lim in self.plans],
            "operations": [op.as_json() for op in self.operations],
            "depends_on": [n for n in self.depends_on if n in visible],
            "used_by": [n for n in self.used_by if n in visible],
            "hidden_dependencies": sum(1 for n in self.depends_on if n not in visible)
            + sum(1 for n in self.used_by if n not in visible),
            "contract": {
                "json": f"/catalogue/apis/{self.name}/openapi.json",
                "yaml": f"/catalogue/apis/{self.name}/openapi.yaml",
            },
        }


class Catalogue:
    """All entries, in tier order then name."""

    def __init__(self, entries: list[ApiEntry]) -> None:
        users: dict[str, list[str]] = {e.name: [] for e in entries}
        for entry in entries:
            for dep in entry.depends_on:
                users.setdefault(dep, []).append(entry.name)
        self.entries = sorted(
            (_with_users(e, tuple(sorted(users.get(e.name, [])))) for e in entries),
            key=lambda e: (TIER_ORDER.index(e.tier), e.name),
        )
        self.by_name = {e.name: e for e in self.entries}

    def visible(self, internal: bool) -> list[ApiEntry]:
        return [e for e in self.entries if internal or (e.public and e.lifecycle != "draft")]

    def owners(self, entries: list[ApiEntry]) -> list[str]:
        return sorted({e.owner for e in entries})

    def tags(self, entries: list[ApiEntry]) -> list[str]:
        return sorted({t for e in entries for t in e.tags})


def _with_users(entry: ApiEntry, used_by: tuple[str, ...]) -> ApiEntry:
    return ApiEntry(**{**entry.__dict__, "used_by": used_by})


def build_catalogue(config: GatewayConfig) -> Catalogue:
    plans = _plans(config)
    return Catalogue([build_entry(config, api, plans) for api in config.apis])


def build_entry(
    config: GatewayConfig, api: ApiConfig, plans: tuple[tuple[str, str], ...]
) -> ApiEntry:
    document = load_contract(contract_path(config, api.contract)) if api.contract else {}
    info = document.get("info", {})
    operations = tuple(_operations(document))
    schemes = document.get("components", {}).get("securitySchemes", {})
    uses_key = any(s.get("type") == "apiKey" for s in schemes.values())
    return ApiEntry(
        name=api.name,
        tier=api.tier,
        version=api.version,
        title=str(info.get("title") or api.name),
        description=api.description or str(info.get("description", "")),
        owner=api.owner,
        tags=tuple(api.tags),
        lifecycle=api.lifecycle,
        deprecated_since=api.deprecated_since,
        sunset=api.sunset,
        base_path=api.path,
        public=api.is_public,
        auth=tuple(_auth_sentences(schemes)),
        scopes=tuple(sorted({s for op in operations for s in op.scopes})),
        plans=plans if uses_key else (),
        operations=operations,
        depends_on=tuple(api.depends_on),
        document=public_document(document, api),
    )


def load_contract(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    return loaded if isinstance(loaded, dict) else {}


def public_document(document: dict[str, Any], api: ApiConfig) -> dict[str, Any]:
    """The contract as a viewer sees it: servers point at the gateway, never upstreams."""
    public = copy.deepcopy(document)
    public["servers"] = [{"url": api.path, "description": "Through the Tiergate gateway"}]
    return public


def _operations(document: dict[str, Any]) -> list[Operation]:
    default_security = document.get("security", [])
    out = []
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            security = op.get("security", default_security) or []
            scopes = sorted({s for req in security for values in req.values() for s in values})
            out.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    operation_id=str(op.get("operationId", "")),
                    summary=str(op.get("summary", "")),
                    scopes=tuple(scopes),
                    deprecated=bool(op.get("deprecated", False)),
                )
            )
    return out


def _auth_sentences(schemes: dict[str, Any]) -> list[str]:
    sentences = []
    for scheme in schemes.values():
        kind = scheme.get("type")
        if kind == "http" and scheme.get("scheme", "").lower() == "bearer":
            sentences.append(
                "OAuth 2.0 bearer token (JWT): get one from POST /oauth/token with the "
                "client_credentials grant and send it as 'Authorization: Bearer <token>'."
            )
        elif kind == "oauth2" or kind == "openIdConnect":
            sentences.append("OAuth 2.0 access token sent as 'Authorization: Bearer <token>'.")
        elif kind == "apiKey":
            sentences.append(
                f"API key issued by the platform team, sent in the "
                f"'{scheme.get('name', 'X-API-Key')}' {scheme.get('in', 'header')}."
            )
    return sentences or ["No authentication."]


def _plans(config: GatewayConfig) -> tuple[tuple[str, str], ...]:
    return tuple((name, ", ".join(plan.limits)) for name, plan in config.plans.items())
