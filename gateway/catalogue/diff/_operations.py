"""Breaking-change report between two versions of an OpenAPI contract.

A change is breaking when a client written against OLD can fail against NEW:
an operation, parameter, response status or response header disappears, a
request needs something new or accepts less than before, a response drops or
widens what it promised, or the security asks more of a client. Every other
change is listed as compatible.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.catalogue.diff._model import Change, Contract
from gateway.catalogue.diff._schemas import Side, compare
from gateway.catalogue.diff._security import scheme_changes, security_changes

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE = re.compile(r"\{[^}/]+\}")
# (path as written, operation, path-level parameters)
Operation = tuple[str, dict[str, Any], list[Any]]


def diff_contracts(old_doc: dict[str, Any], new_doc: dict[str, Any]) -> list[Change]:
    old, new = Contract(old_doc), Contract(new_doc)
    old_ops, new_ops = _operations(old), _operations(new)
    changes = scheme_changes(old, new)
    for key in sorted(old_ops.keys() - new_ops.keys()):
        changes.append(Change(True, f"{key[0]} {old_ops[key][0]}", "operation removed"))
    for key in sorted(new_ops.keys() - old_ops.keys()):
        changes.append(Change(False, f"{key[0]} {new_ops[key][0]}", "operation added"))
    for key in sorted(old_ops.keys() & new_ops.keys()):
        where = f"{key[0]} {new_ops[key][0]}"
        changes.extend(_operation(old, new, old_ops[key], new_ops[key], where))
    return sorted(changes, key=lambda c: (not c.breaking, c.where, c.message))


def _operations(contract: Contract) -> dict[tuple[str, str], Operation]:
    """(METHOD, normalised path) → operation."""
    out = {}
    for path, item in contract.mapping(contract.document.get("paths")).items():
        item = contract.mapping(item)
        for method in HTTP_METHODS:
            if isinstance(item.get(method), dict):
                key = (method.upper(), _TEMPLATE.sub("{}", path))
                params = item.get("parameters")
                out[key] = (path, item[method], params if isinstance(params, list) else [])
    return out


def _operation(old: Contract, new: Contract, o: Operation, n: Operation, where: str) -> list:
    changes = _parameters(old, new, o, n, where)
    changes += _request_body(Side(old, new, where, request=True), o[1], n[1])
    changes += _responses(Side(old, new, where, request=False), o[1], n[1])
    changes += security_changes(old, new, o[1], n[1], where)
    if n[1].get("deprecated") and not o[1].get("deprecated"):
        changes.append(Change(False, where, "operation deprecated"))
    return changes


def _params(contract: Contract, op: Operation) -> dict[tuple[str, str], dict[str, Any]]:
    """Parameters keyed by (in, name); path parameters by position, since renaming
    `{id}` to `{customer_id}` changes nothing for a client."""
    positions = {name[1:-1]: str(i) for i, name in enumerate(_TEMPLATE.findall(op[0]))}
    merged = {}
    own = op[1].get("parameters")
    for raw in [*op[2], *(own if isinstance(own, list) else [])]:
        param = contract.mapping(raw)
        if "name" not in param:
            continue
        where, name = str(param.get("in", "query")), str(param["name"])
        if where == "path":
            name = "#" + positions.get(name, name)
        elif where == "header":
            name = name.lower()
        merged[(where, name)] = param
    return merged


def _parameters(old: Contract, new: Contract, o: Operation, n: Operation, where: str) -> list:
    changes = []
    side = Side(old, new, where, request=True)
    old_params, new_params = _params(old, o), _params(new, n)
    for key, param in new_params.items():
        label = f"{key[0]} parameter '{param['name']}'"
        before = old_params.get(key)
        if before is None:
            required = bool(param.get("required"))
            kind = "required" if required else "optional"
            changes.append(Change(required, where, f"new {kind} {label}"))
            continue
        if bool(param.get("required")) != bool(before.get("required")):
            now = "became required" if param.get("required") else "became optional"
            changes.append(Change(bool(param.get("required")), where, f"{label} {now}"))
        changes += compare(side, before.get("schema"), param.get("schema"), label)
    for key in sorted(old_params.keys() - new_params.keys()):
        text = f"{key[0]} parameter '{old_params[key]['name']}' removed (clients that send it"
        changes.append(Change(True, where, text + " lose its effect)"))
    return changes


def _json_schema(contract: Contract, holder: Any) -> dict[str, Any] | None:
    content = contract.mapping(contract.mapping(holder).get("content"))
    for media, body in content.items():
        if "json" in media:
            return contract.mapping(contract.mapping(body).get("schema"))
    return None


def _request_body(side: Side, o: dict, n: dict) -> list[Change]:
    before, after = side.old.mapping(o.get("requestBody")), side.new.mapping(n.get("requestBody"))
    where = side.where
    if not after:
        return [Change(True, where, "request body removed")] if before else []
    if not before:
        required = bool(after.get("required"))
        text = "request body added" + (" and required" if required else " (optional)")
        return [Change(required, where, text)]
    changes = []
    if bool(after.get("required")) != bool(before.get("required")):
        now = "became required" if after.get("required") else "became optional"
        changes.append(Change(bool(after.get("required")), where, f"request body {now}"))
    old_schema, new_schema = _json_schema(side.old, before), _json_schema(side.new, after)
    if old_schema is not None and new_schema is None:
        changes.append(Change(True, where, "request body no longer accepts JSON"))
    elif old_schema is not None and new_schema is not None:
        changes += compare(side, old_schema, new_schema, "request body")
    return changes


def _responses(side: Side, o: dict, n: dict) -> list[Change]:
    changes, where = [], side.where
    old_r, new_r = side.old.mapping(o.get("responses")), side.new.mapping(n.get("responses"))
    for status in sorted(set(old_r) - set(new_r), key=str):
        changes.append(Change(True, where, f"response {status} removed"))
    for status in sorted(set(new_r) - set(old_r), key=str):
        changes.append(Change(False, where, f"response {status} added"))
    for status in sorted(set(old_r) & set(new_r), key=str):
        label = f"response {status}"
        old_schema, new_schema = (
            _json_schema(side.old, old_r[status]),
            _json_schema(side.new, new_r[status]),
        )
        if old_schema is not None and new_schema is None:
            changes.append(Change(True, where, f"{label} no longer returns JSON"))
        elif old_schema is not None and new_schema is not None:
            changes += compare(side, old_schema, new_schema, label)
        changes += _headers(side, old_r[status], new_r[status], label)
    return changes


def _headers(side: Side, old_response: Any, new_response: Any, label: str) -> list[Change]:
    """Response headers by case-insensitive name: removing one, or no longer
    always sending it, breaks clients that read it."""
    a, b = _header_map(side.old, old_response), _header_map(side.new, new_response)
    changes, where = [], side.where
    for name in sorted(a.keys() - b.keys()):
        changes.append(Change(True, where, f"{label} header '{name}' removed"))
    for name in sorted(b.keys() - a.keys()):
        changes.append(Change(False, where, f"{label} header '{name}' added"))
    for name in sorted(a.keys() & b.keys()):
        before, after = a[name], b[name]
        if bool(before.get("required")) != bool(after.get("required")):
            now = "always sent" if after.get("required") else "no longer always sent"
            changes.append(
                Change(not after.get("required"), where, f"{label} header '{name}' {now}")
            )
        changes += compare(
            side, before.get("schema"), after.get("schema"), f"{label} header '{name}'"
        )
    return changes


def _header_map(contract: Contract, response: Any) -> dict[str, dict[str, Any]]:
    headers = contract.mapping(contract.mapping(response).get("headers"))
    return {str(name).lower(): contract.mapping(header) for name, header in headers.items()}
