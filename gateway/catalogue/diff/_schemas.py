"""Schema comparison: each constraint says whether NEW accepts more or less.

Direction decides what breaks: a request schema may only widen (old clients keep
sending what they sent), a response schema may only narrow (old clients keep
understanding what they get). See `is_breaking`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.catalogue.diff._model import Change, Contract, Shift, is_breaking
from gateway.catalogue.diff._patterns import pattern_shift

# Limits where a larger value in NEW accepts less.
_MIN_KEYS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_MAX_KEYS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
# (old, new) format pairs where NEW accepts everything OLD did.
_WIDER_FORMATS = {("int32", "int64"), ("float", "double")}
_MAX_DEPTH = 12


@dataclass(frozen=True)
class Side:
    """Where a schema sits: which contracts, which operation, which direction."""

    old: Contract
    new: Contract
    where: str
    request: bool

    def change(self, shift: Shift, label: str, message: str) -> Change:
        return Change(is_breaking(shift, request=self.request), self.where, f"{label}: {message}")


def compare(side: Side, a: Any, b: Any, label: str, depth: int = 0) -> list[Change]:
    a, b = _flatten(side.old, a), _flatten(side.new, b)
    if (not a and not b) or depth > _MAX_DEPTH:
        return []
    changes = _types(side, a, b, label) + _nullable(side, a, b, label)
    changes += _enum(side, a, b, label) + _limits(side, a, b, label)
    changes += _pattern(side, a, b, label) + _format(side, a, b, label)
    changes += _properties(side, a, b, label, depth)
    if isinstance(a.get("items"), dict) and isinstance(b.get("items"), dict):
        changes += compare(side, a["items"], b["items"], f"{label}[]", depth + 1)
    extra_a, extra_b = a.get("additionalProperties"), b.get("additionalProperties")
    if isinstance(extra_a, dict) and isinstance(extra_b, dict):
        changes += compare(side, extra_a, extra_b, f"{label}.*", depth + 1)
    return changes


def _flatten(contract: Contract, schema: Any, depth: int = 0) -> dict[str, Any]:
    """`allOf` members merged into one schema: properties and required united,
    other keywords from the first member that has them."""
    schema = contract.mapping(schema)
    if depth > _MAX_DEPTH:  # an allOf that includes itself
        return {}
    if not isinstance(schema.get("allOf"), list):
        return schema
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    properties, required = dict(merged.get("properties") or {}), list(merged.get("required") or [])
    for member in schema["allOf"]:
        part = _flatten(contract, member, depth + 1)
        properties.update(part.get("properties") or {})
        required += [name for name in part.get("required") or [] if name not in required]
        for key, value in part.items():
            merged.setdefault(key, value)
    merged["properties"], merged["required"] = properties, required
    return merged


def _shift_of_sets(a: set, b: set) -> Shift | None:
    if a == b:
        return None
    return "widened" if a <= b else "narrowed" if b <= a else "changed"


def _types(side: Side, a: dict, b: dict, label: str) -> list[Change]:
    ta, tb = _type_set(a), _type_set(b)
    if ta == tb:
        return []
    if ta is None or tb is None:
        shift: Shift | None = "widened" if tb is None else "narrowed"
    else:
        shift = _shift_of_sets(ta, tb)
    if shift is None:
        return []
    message = f"type changed from {_fmt(a.get('type'))} to {_fmt(b.get('type'))}"
    return [side.change(shift, label, message)]


def _type_set(schema: dict) -> set[str] | None:
    """Declared non-null types (a number accepts integers too); None: any type."""
    kind = schema.get("type")
    if kind is None:
        return None
    types = {kind} if isinstance(kind, str) else set(kind)
    types.discard("null")
    if "number" in types:
        types.add("integer")
    return types


def _nullable(side: Side, a: dict, b: dict, label: str) -> list[Change]:
    na, nb = _is_nullable(a), _is_nullable(b)
    if na is None or nb is None or na == nb:
        return []
    if nb:
        message = "now accepts null" if side.request else "may now be null"
        return [side.change("widened", label, message)]
    message = "no longer accepts null" if side.request else "no longer null"
    return [side.change("narrowed", label, message)]


def _is_nullable(schema: dict) -> bool | None:
    """OpenAPI 3.0 `nullable`, a 3.1 type list with "null", or an `anyOf`/`oneOf`
    branch of type null; None when the schema says nothing about types."""
    kind = schema.get("type")
    branches = [s for key in ("anyOf", "oneOf") for s in schema.get(key) or []]
    null_branch = any(isinstance(s, dict) and s.get("type") == "null" for s in branches)
    if kind is None and not branches and "nullable" not in schema:
        return None
    listed = kind == "null" or (isinstance(kind, list) and "null" in kind)
    return schema.get("nullable") is True or listed or null_branch


def _enum(side: Side, a: dict, b: dict, label: str) -> list[Change]:
    ea, eb = _enum_values(a), _enum_values(b)
    if ea is None and eb is None:
        return []
    if ea is None or eb is None:
        shift: Shift = "narrowed" if ea is None else "widened"
        message = f"now limited to {eb}" if ea is None else "no longer limited to listed values"
        return [side.change(shift, label, message)]
    changes = []
    removed = [v for v in ea if v not in eb]
    added = [v for v in eb if v not in ea]
    if removed:
        verb = "no longer accepted" if side.request else "no longer returned"
        changes.append(side.change("narrowed", label, f"enum values {removed} {verb}"))
    if added:
        text = f"enum values {added} now accepted" if side.request else None
        message = text or f"may now return enum values {added}"
        changes.append(side.change("widened", label, message))
    return changes


def _enum_values(schema: dict) -> list | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def _limits(side: Side, a: dict, b: dict, label: str) -> list[Change]:
    changes = []
    for key in _MIN_KEYS + _MAX_KEYS:
        before, after = a.get(key), b.get(key)
        if before == after:
            continue
        if after is None:
            changes.append(side.change("widened", label, f"{key} {before} removed"))
            continue
        if isinstance(after, bool) or isinstance(before, bool):
            # OpenAPI 3.0 exclusiveMinimum/Maximum: a flag on minimum/maximum.
            shift: Shift = "narrowed" if after else "widened"
        elif before is None:
            shift = "narrowed"
        else:
            larger = after > before
            shift = "narrowed" if larger == (key in _MIN_KEYS) else "widened"
        verb = "tightened" if shift == "narrowed" else "relaxed"
        changes.append(side.change(shift, label, f"{key} {verb} to {after}"))
    changes += _multiple_of(side, a.get("multipleOf"), b.get("multipleOf"), label)
    if bool(a.get("uniqueItems")) != bool(b.get("uniqueItems")):
        shift = "narrowed" if b.get("uniqueItems") else "widened"
        verb = "now" if b.get("uniqueItems") else "no longer"
        changes.append(side.change(shift, label, f"items {verb} unique"))
    return changes


def _multiple_of(side: Side, before: Any, after: Any, label: str) -> list[Change]:
    if before == after:
        return []
    if after is None or before is None:
        shift: Shift = "widened" if after is None else "narrowed"
    elif after % before == 0:
        shift = "narrowed"
    else:
        shift = "widened" if before % after == 0 else "changed"
    return [side.change(shift, label, f"multipleOf changed from {before} to {after}")]


def _pattern(side: Side, a: dict, b: dict, label: str) -> list[Change]:
    before, after = a.get("pattern"), b.get("pattern")
    if before is None or after is None:
        return _keyword_presence(side, "pattern", before, after, label)
    if before == after:
        return []
    shift = pattern_shift(str(before), str(after))
    if shift is None:
        return [Change(False, side.where, f"{label}: pattern rewritten: {before!r} to {after!r}")]
    verb = "changed (neither accepts all the other does)" if shift == "changed" else shift
    return [side.change(shift, label, f"pattern {verb}: {before!r} to {after!r}")]


def _format(side: Side, a: dict, b: dict, label: str) -> list[Change]:
    before, after = a.get("format"), b.get("format")
    if before is None or after is None:
        return _keyword_presence(side, "format", before, after, label)
    if before == after:
        return []
    shift: Shift = "widened" if (before, after) in _WIDER_FORMATS else "changed"
    if (after, before) in _WIDER_FORMATS:
        shift = "narrowed"
    return [side.change(shift, label, f"format changed from {before!r} to {after!r}")]


def _keyword_presence(side: Side, key: str, before: Any, after: Any, label: str) -> list[Change]:
    """A restricting keyword added narrows; removed, it widens."""
    if before is None and after is None:
        return []
    if after is None:
        return [side.change("widened", label, f"{key} {before!r} removed")]
    return [side.change("narrowed", label, f"{key} {after!r} added")]


def _properties(side: Side, a: dict, b: dict, label: str, depth: int) -> list[Change]:
    pa, pb = a.get("properties") or {}, b.get("properties") or {}
    hidden = "readOnly" if side.request else "writeOnly"
    ra, rb = _required(side.old, a, hidden), _required(side.new, b, hidden)
    changes = _access(side, pa, pb, label, hidden)
    if side.request:
        changes += _request_properties(side, a, b, (set(pa), set(pb)), (ra, rb), label)
    else:
        changes += _response_properties(side, (set(pa), set(pb)), (ra, rb), label)
    for name in sorted(set(pa) & set(pb)):
        changes += compare(side, pa[name], pb[name], f"{label}.{name}", depth + 1)
    return changes


def _required(contract: Contract, schema: dict, hidden: str) -> set[str]:
    """Required names that apply in this direction: a readOnly property is never
    required in a request, a writeOnly one never in a response."""
    properties = schema.get("properties") or {}
    return {
        name
        for name in schema.get("required") or []
        if not contract.mapping(properties.get(name)).get(hidden)
    }


def _access(side: Side, pa: dict, pb: dict, label: str, hidden: str) -> list[Change]:
    """readOnly/writeOnly flips: setting the flag that hides a property in this
    direction breaks, clearing it is compatible; the other flag is listed only."""
    changes = []
    for name in sorted(set(pa) & set(pb)):
        before, after = side.old.mapping(pa[name]), side.new.mapping(pb[name])
        for flag in ("readOnly", "writeOnly"):
            was, now = bool(before.get(flag)), bool(after.get(flag))
            if was == now:
                continue
            state = f"became {flag}" if now else f"no longer {flag}"
            if flag != hidden:
                changes.append(Change(False, side.where, f"{label}: property '{name}' {state}"))
                continue
            # Hiding a property breaks both ways: clients send it, or read it.
            if side.request:
                effect = "no longer accepted in requests" if now else "now accepted in requests"
            else:
                effect = "no longer returned" if now else "now returned"
            message = f"{label}: property '{name}' {state} ({effect})"
            changes.append(Change(now, side.where, message))
    return changes


def _request_properties(
    side: Side, a: dict, b: dict, names: tuple[set, set], required: tuple[set, set], label: str
) -> list[Change]:
    (na, nb), (ra, rb) = names, required
    closed = b.get("additionalProperties") is False
    changes = [
        Change(True, side.where, f"{label}: property '{n}' is now required")
        for n in sorted(rb - ra)
    ]
    changes += [
        Change(False, side.where, f"{label}: property '{n}' no longer required")
        for n in sorted(ra - rb)
    ]
    changes += [
        Change(False, side.where, f"{label}: property '{n}' added") for n in sorted(nb - na - rb)
    ]
    for name in sorted(na - nb):
        effect = "and no longer accepted" if closed else "(ignored if sent)"
        changes.append(Change(closed, side.where, f"{label}: property '{name}' removed {effect}"))
    if closed and a.get("additionalProperties") is not False:
        changes.append(Change(True, side.where, f"{label}: no longer accepts extra properties"))
    if not closed and a.get("additionalProperties") is False:
        changes.append(Change(False, side.where, f"{label}: now accepts extra properties"))
    return changes


def _response_properties(
    side: Side, names: tuple[set, set], required: tuple[set, set], label: str
) -> list[Change]:
    (na, nb), (ra, rb) = names, required
    where = side.where
    changes = [Change(True, where, f"{label}: property '{n}' removed") for n in sorted(na - nb)]
    changes += [
        Change(True, where, f"{label}: property '{n}' no longer always present")
        for n in sorted((ra - rb) & nb)
    ]
    changes += [
        Change(False, where, f"{label}: property '{n}' now always present")
        for n in sorted((rb - ra) & na)
    ]
    changes += [Change(False, where, f"{label}: property '{n}' added") for n in sorted(nb - na)]
    return changes


def _fmt(kind: Any) -> str:
    return "/".join(kind) if isinstance(kind, list) else str(kind)
