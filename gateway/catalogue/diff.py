"""Breaking-change report between two versions of an OpenAPI contract.

A change is breaking when a client written against OLD can fail against NEW:
an operation or response status disappears, a request needs something new or
accepts less than before, or a response drops or retypes what it promised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE = re.compile(r"\{[^}/]+\}")
# Limits where a larger value in NEW accepts less (request) or promises more (response).
_MIN_KEYS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_MAX_KEYS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")


@dataclass(frozen=True, order=True)
class Change:
    breaking: bool
    where: str
    message: str

    def __str__(self) -> str:
        label = "BREAKING" if self.breaking else "ok      "
        return f"{label}  {self.where}: {self.message}"


class Contract:
    """A contract with `$ref`s resolved on demand (local references only)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any, seen: frozenset[str] = frozenset()) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen or not ref.startswith("#/"):
                return {}
            seen = seen | {ref}
            target: Any = self.document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node = target
        return node

    def operations(self) -> dict[tuple[str, str], tuple[str, dict[str, Any], list[Any]]]:
        """(METHOD, normalised path) → (path as written, operation, path-level params)."""
        out = {}
        for path, item in (self.document.get("paths") or {}).items():
            item = self.resolve(item)
            if not isinstance(item, dict):
                continue
            for method in HTTP_METHODS:
                if isinstance(item.get(method), dict):
                    key = (method.upper(), _TEMPLATE.sub("{}", path))
                    out[key] = (path, item[method], item.get("parameters", []))
        return out


def diff_contracts(old_doc: dict[str, Any], new_doc: dict[str, Any]) -> list[Change]:
    old, new = Contract(old_doc), Contract(new_doc)
    old_ops, new_ops = old.operations(), new.operations()
    changes: list[Change] = []
    for key in sorted(old_ops.keys() - new_ops.keys()):
        changes.append(Change(True, f"{key[0]} {old_ops[key][0]}", "operation removed"))
    for key in sorted(new_ops.keys() - old_ops.keys()):
        changes.append(Change(False, f"{key[0]} {new_ops[key][0]}", "operation added"))
    for key in sorted(old_ops.keys() & new_ops.keys()):
        where = f"{key[0]} {new_ops[key][0]}"
        changes.extend(_operation(old, new, old_ops[key], new_ops[key], where))
    return sorted(changes, key=lambda c: (not c.breaking, c.where, c.message))


def _operation(old: Contract, new: Contract, o: tuple, n: tuple, where: str) -> list[Change]:
    changes = _parameters(old, new, o, n, where)
    changes += _request_body(old, new, o[1], n[1], where)
    changes += _responses(old, new, o[1], n[1], where)
    return changes


def _params(contract: Contract, op: tuple) -> dict[tuple[str, str], dict[str, Any]]:
    """Parameters keyed by (in, name); path parameters by position, since renaming
    `{id}` to `{customer_id}` changes nothing for a client."""
    positions = {name[1:-1]: str(i) for i, name in enumerate(_TEMPLATE.findall(op[0]))}
    merged = {}
    for raw in [*op[2], *op[1].get("parameters", [])]:
        param = contract.resolve(raw)
        if not isinstance(param, dict) or "name" not in param:
            continue
        where, name = param.get("in", "query"), str(param["name"])
        if where == "path":
            name = "#" + positions.get(name, name)
        elif where == "header":
            name = name.lower()
        merged[(where, name)] = param
    return merged


def _parameters(old: Contract, new: Contract, o: tuple, n: tuple, where: str) -> list[Change]:
    changes = []
    old_params, new_params = _params(old, o), _params(new, n)
    for key, param in new_params.items():
        label = f"{key[0]} parameter '{param['name']}'"
        before = old_params.get(key)
        if before is None:
            if param.get("required"):
                changes.append(Change(True, where, f"new required {label}"))
            else:
                changes.append(Change(False, where, f"new optional {label}"))
            continue
        if param.get("required") and not before.get("required"):
            changes.append(Change(True, where, f"{label} became required"))
        changes += _schema(
            old, new, before.get("schema", {}), param.get("schema", {}), where, label, request=True
        )
    for key in old_params.keys() - new_params.keys():
        changes.append(
            Change(
                False,
                where,
                f"{key[0]} parameter '{old_params[key]['name']}' "
                "removed (clients that send it are ignored)",
            )
        )
    return changes


def _json_schema(contract: Contract, holder: Any) -> dict[str, Any] | None:
    holder = contract.resolve(holder)
    if not isinstance(holder, dict):
        return None
    content = holder.get("content") or {}
    for media, body in content.items():
        if "json" in media:
            return contract.resolve((body or {}).get("schema", {})) or {}
    return None


def _request_body(old: Contract, new: Contract, o: dict, n: dict, where: str) -> list[Change]:
    before, after = old.resolve(o.get("requestBody")), new.resolve(n.get("requestBody"))
    if not after:
        return []
    if not before:
        return [
            Change(
                bool(after.get("required")),
                where,
                "request body added"
                + (" and required" if after.get("required") else " (optional)"),
            )
        ]
    changes = []
    if after.get("required") and not before.get("required"):
        changes.append(Change(True, where, "request body became required"))
    old_schema, new_schema = _json_schema(old, before), _json_schema(new, after)
    if old_schema is not None and new_schema is not None:
        changes += _schema(old, new, old_schema, new_schema, where, "request body", request=True)
    return changes


def _responses(old: Contract, new: Contract, o: dict, n: dict, where: str) -> list[Change]:
    changes = []
    old_r, new_r = o.get("responses") or {}, n.get("responses") or {}
    for status in sorted(set(old_r) - set(new_r), key=str):
        changes.append(Change(True, where, f"response {status} removed"))
    for status in sorted(set(new_r) - set(old_r), key=str):
        changes.append(Change(False, where, f"response {status} added"))
    for status in sorted(set(old_r) & set(new_r), key=str):
        old_schema, new_schema = _json_schema(old, old_r[status]), _json_schema(new, new_r[status])
        if old_schema is not None and new_schema is None:
            changes.append(Change(True, where, f"response {status} no longer returns JSON"))
        elif old_schema is not None and new_schema is not None:
            changes += _schema(
                old, new, old_schema, new_schema, where, f"response {status}", request=False
            )
    return changes


def _types(schema: dict[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    types = {kind} if isinstance(kind, str) else set(kind)
    if schema.get("nullable"):
        types.add("null")
    if "number" in types:
        types.add("integer")
    return types


def _schema(
    old: Contract,
    new: Contract,
    a: Any,
    b: Any,
    where: str,
    label: str,
    *,
    request: bool,
    depth: int = 0,
) -> list[Change]:
    """Compare two schemas; `request` says which direction narrowing hurts."""
    a, b = old.resolve(a), new.resolve(b)
    if not isinstance(a, dict) or not isinstance(b, dict) or depth > 12:
        return []
    changes = []
    ta, tb = _types(a), _types(b)
    if ta is not None and tb is not None and ta != tb:
        narrower = not ta <= tb if request else not tb <= ta
        changes.append(
            Change(
                narrower,
                where,
                f"{label}: type changed from {_fmt(a.get('type'))} to {_fmt(b.get('type'))}",
            )
        )
    if "enum" in a and "enum" in b:
        removed = [v for v in a["enum"] if v not in b["enum"]]
        added = [v for v in b["enum"] if v not in a["enum"]]
        if removed and request:
            changes.append(
                Change(True, where, f"{label}: enum values {removed} no longer accepted")
            )
        if added and not request:
            changes.append(Change(True, where, f"{label}: may now return enum values {added}"))
    changes += _limits(a, b, where, label, request)
    changes += _properties(old, new, a, b, where, label, request, depth)
    if isinstance(a.get("items"), dict) and isinstance(b.get("items"), dict):
        changes += _schema(
            old, new, a["items"], b["items"], where, f"{label}[]", request=request, depth=depth + 1
        )
    return changes


def _limits(a: dict, b: dict, where: str, label: str, request: bool) -> list[Change]:
    changes = []
    for key in _MIN_KEYS + _MAX_KEYS:
        if key not in b or a.get(key) == b[key]:
            continue
        tighter = key not in a or (b[key] > a[key] if key in _MIN_KEYS else b[key] < a[key])
        if tighter and request:
            changes.append(Change(True, where, f"{label}: {key} tightened to {b[key]}"))
    return changes


def _properties(
    old: Contract,
    new: Contract,
    a: dict,
    b: dict,
    where: str,
    label: str,
    request: bool,
    depth: int,
) -> list[Change]:
    changes = []
    pa, pb = a.get("properties") or {}, b.get("properties") or {}
    ra, rb = set(a.get("required") or []), set(b.get("required") or [])
    if request:
        for name in sorted(rb - ra):
            changes.append(Change(True, where, f"{label}: property '{name}' is now required"))
        if b.get("additionalProperties") is False and a.get("additionalProperties") is not False:
            changes.append(Change(True, where, f"{label}: no longer accepts extra properties"))
    else:
        for name in sorted(set(pa) - set(pb)):
            changes.append(Change(True, where, f"{label}: property '{name}' removed"))
        for name in sorted((ra - rb) & set(pb)):
            changes.append(
                Change(True, where, f"{label}: property '{name}' no longer always present")
            )
        for name in sorted(set(pb) - set(pa)):
            changes.append(Change(False, where, f"{label}: property '{name}' added"))
    for name in sorted(set(pa) & set(pb)):
        changes += _schema(
            old, new, pa[name], pb[name], where, f"{label}.{name}", request=request, depth=depth + 1
        )
    return changes


def _fmt(kind: Any) -> str:
    return "/".join(kind) if isinstance(kind, list) else str(kind)
