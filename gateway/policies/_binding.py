"""`x-tiergate-bind`: an operation's object-level binding, read from the contract once.

    x-tiergate-bind:
      values:
      - in: path             # path | query | header | body
        name: customer_id    # the parameter's name; for `body`, a JSON pointer (/customer_id)
        claim: customer_id   # bearer tokens: the claim the value must equal
        key: account         # API keys: `account` (the consumer's account) or `consumer`
        optional: false      # query/header/body only: an absent value passes
      bypass-scopes: [mobile:support]
      mismatch: 404          # 403, or 404 where the object's existence must not leak

Compiled into `Operation.binding` (gateway/policies/_contract.py) when the contract is
loaded; `binding_problems` lists everything wrong with one operation's extension, for
start-up (first problem) and `tiergate check` (all of them). The `object-binding` policy
enforces it (gateway/policies/object_binding.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jsonpointer import JsonPointer, JsonPointerException

EXTENSION = "x-tiergate-bind"
PLACES = ("path", "query", "header", "body")
KEY_SOURCES = ("account", "consumer")
MISMATCH_STATUSES = (403, 404)
_CLAIM = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token
_FIELDS = frozenset({"values", "bypass-scopes", "mismatch"})
_VALUE_FIELDS = frozenset({"in", "name", "claim", "key", "optional"})

NOT_A_MAPPING = f"{EXTENSION} must be a mapping with `values` (and `bypass-scopes`, `mismatch`)"
UNKNOWN_FIELDS = f"{EXTENSION} has unknown fields {{fields}}; known: {', '.join(sorted(_FIELDS))}"
NO_VALUES = f"{EXTENSION}.values must be a non-empty list of bound values"
VALUE_NOT_A_MAPPING = f"{EXTENSION}.values[{{i}}] must be a mapping with `in`, `name` and a source"
VALUE_UNKNOWN_FIELDS = (
    f"{EXTENSION}.values[{{i}}] has unknown fields {{fields}}; "
    f"known: {', '.join(sorted(_VALUE_FIELDS))}"
)
BAD_PLACE = f"{EXTENSION}.values[{{i}}].in is {{found!r}}; use one of {', '.join(PLACES)}"
NO_SUCH_PARAMETER = (
    f"{EXTENSION}.values[{{i}}] names the {{place}} parameter {{name!r}}, which the operation "
    "does not have{hint}"
)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
BODY_ON_SAFE = (
    f"{EXTENSION}.values[{{i}}] binds a body value on a {{method}} operation; responses to "
    "such requests may be answered (cached) without the body being read: bind a parameter"
)
NO_BODY = (
    f"{EXTENSION}.values[{{i}}] binds a body value, but the operation declares no JSON request body"
)
BAD_POINTER = (
    f"{EXTENSION}.values[{{i}}].name {{name!r}} is not a JSON pointer (RFC 6901): {{error}}"
)
NO_SOURCE = (
    f"{EXTENSION}.values[{{i}}] names no source: set `claim` (a token claim) and/or `key` "
    f"({' or '.join(KEY_SOURCES)})"
)
BAD_CLAIM = f"{EXTENSION}.values[{{i}}].claim {{found!r}} is not a claim name"
BAD_KEY = f"{EXTENSION}.values[{{i}}].key is {{found!r}}; use one of {', '.join(KEY_SOURCES)}"
BAD_OPTIONAL = f"{EXTENSION}.values[{{i}}].optional must be true or false"
PATH_OPTIONAL = f"{EXTENSION}.values[{{i}}]: a path parameter is never absent; drop `optional`"
TWICE = f"{EXTENSION}.values[{{i}}] binds {{place}} {{name!r}} a second time"
BAD_SCOPES = f"{EXTENSION}.bypass-scopes must be a list of scope tokens, found {{found!r}}"
BAD_MISMATCH = f"{EXTENSION}.mismatch is {{found!r}}; use 403 or 404"


@dataclass(frozen=True, slots=True)
class BoundValue:
    """One request value that must equal what the credential says."""

    place: str  # path | query | header | body
    name: str  # parameter name (header names lower-case), or the body's JSON pointer
    claim: str | None  # bearer tokens: this claim
    key: str | None  # API keys: "account" or "consumer"
    optional: bool = False
    index: int = 0  # path parameters: position in the template
    pointer: JsonPointer | None = None  # body values


@dataclass(frozen=True, slots=True)
class Binding:
    values: tuple[BoundValue, ...]
    bypass_scopes: frozenset[str]
    mismatch: int  # 403 or 404

    @property
    def body(self) -> tuple[BoundValue, ...]:
        return tuple(v for v in self.values if v.place == "body")


@dataclass(frozen=True, slots=True)
class Declared:
    """What the operation declares, for checking the extension against it."""

    path: tuple[str, ...]  # path parameter names in template order
    query: frozenset[str]
    headers: frozenset[str]  # lower-case
    json_body: bool
    method: str = "POST"


def compile_binding(raw: Any, declared: Declared) -> tuple[Binding | None, list[str]]:
    """The binding of one operation's extension (None when absent), and every problem."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [NOT_A_MAPPING]
    problems: list[str] = []
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        problems.append(UNKNOWN_FIELDS.format(fields=unknown))
    entries = raw.get("values")
    if not isinstance(entries, list) or not entries:
        problems.append(NO_VALUES)
        entries = []
    values: list[BoundValue] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(entries):
        value = _value(i, entry, declared, problems)
        if value is None:
            continue
        if (value.place, value.name) in seen:
            problems.append(TWICE.format(i=i, place=value.place, name=value.name))
        seen.add((value.place, value.name))
        values.append(value)
    scopes = raw.get("bypass-scopes", [])
    if not isinstance(scopes, list) or not all(
        isinstance(s, str) and _SCOPE.fullmatch(s) for s in scopes
    ):
        problems.append(BAD_SCOPES.format(found=scopes))
        scopes = []
    mismatch = raw.get("mismatch", 403)
    if isinstance(mismatch, str) and mismatch.isascii() and mismatch.isdigit():
        mismatch = int(mismatch)
    if isinstance(mismatch, bool) or mismatch not in MISMATCH_STATUSES:
        problems.append(BAD_MISMATCH.format(found=mismatch))
        mismatch = 403
    if problems:
        return None, problems
    return Binding(tuple(values), frozenset(scopes), int(mismatch)), []


def _value(i: int, entry: Any, declared: Declared, problems: list[str]) -> BoundValue | None:
    if not isinstance(entry, dict):
        problems.append(VALUE_NOT_A_MAPPING.format(i=i))
        return None
    before = len(problems)
    unknown = sorted(set(entry) - _VALUE_FIELDS)
    if unknown:
        problems.append(VALUE_UNKNOWN_FIELDS.format(i=i, fields=unknown))
    place, name = entry.get("in"), entry.get("name")
    claim, key, optional = entry.get("claim"), entry.get("key"), entry.get("optional", False)
    if place not in PLACES:
        problems.append(BAD_PLACE.format(i=i, found=place))
    elif not isinstance(name, str) or not name:
        problems.append(VALUE_NOT_A_MAPPING.format(i=i))
    if claim is None and key is None:
        problems.append(NO_SOURCE.format(i=i))
    if claim is not None and not (isinstance(claim, str) and _CLAIM.fullmatch(claim)):
        problems.append(BAD_CLAIM.format(i=i, found=claim))
    if key is not None and key not in KEY_SOURCES:
        problems.append(BAD_KEY.format(i=i, found=key))
    if not isinstance(optional, bool):
        problems.append(BAD_OPTIONAL.format(i=i))
    elif optional and place == "path":
        problems.append(PATH_OPTIONAL.format(i=i))
    if len(problems) > before:
        return None
    assert isinstance(name, str) and isinstance(place, str)
    index, pointer = 0, None
    if place == "body":
        if declared.method not in BODY_METHODS:
            problems.append(BODY_ON_SAFE.format(i=i, method=declared.method))
            return None
        if not declared.json_body:
            problems.append(NO_BODY.format(i=i))
            return None
        try:
            pointer = JsonPointer(name)
        except JsonPointerException as error:
            problems.append(BAD_POINTER.format(i=i, name=name, error=error))
            return None
        if not pointer.parts:
            problems.append(BAD_POINTER.format(i=i, name=name, error="it names the whole body"))
            return None
    else:
        if place == "header":
            name = name.lower()
        names: dict[str, Any] = {
            "path": declared.path,
            "query": declared.query,
            "header": declared.headers,
        }
        known = names[place]
        if name not in known:
            hint = f"; it has {', '.join(sorted(known))}" if known else ""
            problems.append(NO_SUCH_PARAMETER.format(i=i, place=place, name=name, hint=hint))
            return None
        if place == "path":
            index = declared.path.index(name)
    return BoundValue(place, name, claim, key, optional, index, pointer)


__all__ = ["EXTENSION", "Binding", "BoundValue", "Declared", "compile_binding"]
