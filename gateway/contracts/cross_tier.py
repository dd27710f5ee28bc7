"""Cross-tier check for `tiergate check`: what a caller accepts, its callee accepts too.

A process or experience API passes parameters down by name (a cursor, ids, enums): the
client's value reaches the tier below unchanged. If the caller's contract accepts a
value the callee's refuses, a request the outer contract promises to serve fails below
(as a 4xx the caller did not expect, or worse a 5xx). So for every `depends_on` edge,
each query or path parameter of the caller whose name a callee operation also takes
must be accepted by the callee with the caller's schema: a wider type, a missing or
longer `maxLength`, a bigger `maximum`, extra or missing `enum` values, or a `pattern`
admitting strings the callee's refuses, is an error naming both contracts and the
parameter. Patterns are compared by searching (hypothesis, derandomized) for a string
the caller's pattern admits and the callee's refuses; the error quotes it.

Array parameters (`sku=A&sku=B`) flow item by item: their items are compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from gateway.config.models import ApiConfig, GatewayConfig
from gateway.contracts.lint import HTTP_METHODS, api_contract_path

LOCATIONS = ("query", "path")
WIDER = (
    "{caller} ({caller_path}) {where} parameter {name!r} accepts more than {callee} "
    "({callee_path}) {callee_where} parameter {name!r} it is passed to: {why}; narrow "
    "the caller's schema or widen the callee's"
)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SEARCH_EXAMPLES = 300  # strings drawn from the caller's pattern (no shrinking: ~0.1 s)
Schema = dict[str, Any]


def _resolve(node: Any, document: dict[str, Any]) -> Any:
    for _ in range(16):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return node
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        node = target
    return node


def _flatten(schema: Any, document: dict[str, Any]) -> Schema:
    """The schema with `$ref`s and `allOf` merged into one mapping of keywords."""
    schema = _resolve(schema, document)
    if not isinstance(schema, dict):
        return {}
    out: Schema = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf") or []:
        for key, value in _flatten(part, document).items():
            out.setdefault(key, value)
    if isinstance(out.get("items"), dict):
        out["items"] = _flatten(out["items"], document)
    return out


def parameters(document: dict[str, Any]) -> Iterator[tuple[str, str, Schema]]:
    """(location, name, flattened schema) of every query/path parameter, per operation."""
    for item in (document.get("paths") or {}).values():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            for raw in [*shared, *(operation.get("parameters") or [])]:
                param = _resolve(raw, document)
                if isinstance(param, dict) and param.get("in") in LOCATIONS:
                    yield param["in"], str(param["name"]), _flatten(param.get("schema"), document)


def _types(schema: Schema) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    kinds = set(kind) if isinstance(kind, list) else {kind}
    return kinds | ({"integer"} if "number" in kinds else set())


def _upper(schema: Schema) -> float | None:
    bounds = [
        schema[k] for k in ("maximum", "exclusiveMaximum") if isinstance(schema.get(k), int | float)
    ]
    return min(bounds) if bounds else None


def _lower(schema: Schema) -> float | None:
    bounds = [
        schema[k] for k in ("minimum", "exclusiveMinimum") if isinstance(schema.get(k), int | float)
    ]
    return max(bounds) if bounds else None


def _pattern_gap(caller: Schema, callee_pattern: str) -> str | None:
    """Why the caller's strings may break the callee's pattern, or None if they cannot."""
    pattern = caller.get("pattern")
    if pattern == callee_pattern:
        return None
    if "enum" in caller:
        bad = [v for v in caller["enum"] if not re.search(callee_pattern, str(v))]
        return f"enum values {bad} do not match pattern {callee_pattern!r}" if bad else None
    if pattern is None:
        return f"it has no pattern, the callee's is {callee_pattern!r}"
    example = _counterexample(
        pattern, callee_pattern, caller.get("minLength", 0), caller.get("maxLength")
    )
    if example is None:
        return None
    return f"pattern {pattern!r} admits {example!r}, which the callee's {callee_pattern!r} refuses"


def _counterexample(pattern: str, callee_pattern: str, low: int, high: int | None) -> str | None:
    """A string of `pattern` (length low..high) that `callee_pattern` refuses, if found.

    hypothesis is imported here, only when two patterns differ (it takes ~2 s to load).
    """
    # Optional heavy dependency (contract-test extra; ~2 s to load), see the docstring.
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    search = settings(
        max_examples=SEARCH_EXAMPLES,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    strings = st.from_regex(pattern, fullmatch=True).filter(
        lambda s: len(s) >= low and (high is None or len(s) <= high)
    )
    try:
        return str(find(strings, lambda s: re.search(callee_pattern, s) is None, settings=search))
    except (NoSuchExample, Unsatisfiable):
        return None


def wider(caller: Schema, callee: Schema) -> list[str]:
    """Why `caller` accepts values `callee` refuses (empty when it cannot, as far as the
    keywords compared here tell)."""
    if _types(callee) == {"array"} or "array" not in (_types(caller) or set()):
        pass
    elif isinstance(caller.get("items"), dict):
        caller = caller["items"]  # items flow down one by one
    why: list[str] = []
    caller_types, callee_types = _types(caller), _types(callee)
    if callee_types is not None and (caller_types is None or caller_types - callee_types):
        why.append(f"type {caller.get('type', 'any')!r} is wider than {callee.get('type')!r}")
    if "enum" in callee:
        extra = [v for v in caller.get("enum", []) if v not in callee["enum"]]
        if "enum" not in caller:
            why.append(f"it has no enum, the callee allows only {callee['enum']}")
        elif extra:
            why.append(f"enum values {extra} are not in the callee's {callee['enum']}")
    for keyword in ("maxLength", "maxItems"):
        limit = callee.get(keyword)
        if limit is not None and caller.get(keyword, float("inf")) > limit:
            why.append(f"{keyword} {caller.get(keyword, 'unbounded')} exceeds {limit}")
    for keyword in ("minLength", "minItems"):
        limit = callee.get(keyword)
        if limit is not None and caller.get(keyword, 0) < limit:
            why.append(f"{keyword} {caller.get(keyword, 0)} is below {limit}")
    high, low = _upper(callee), _lower(callee)
    if high is not None and (_upper(caller) is None or _upper(caller) > high):  # type: ignore[operator]
        why.append(f"maximum {_upper(caller) or 'unbounded'} exceeds {high}")
    if low is not None and (_lower(caller) is None or _lower(caller) < low):  # type: ignore[operator]
        why.append(f"minimum {_lower(caller) or 'unbounded'} is below {low}")
    if isinstance(callee.get("pattern"), str):
        gap = _pattern_gap(caller, callee["pattern"])
        if gap:
            why.append(gap)
    return why


def _load(path: Path) -> dict[str, Any] | None:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506
    except (OSError, yaml.YAMLError):
        return None  # the tier lint reports unreadable contracts
    return document if isinstance(document, dict) else None


def check_edge(
    caller: ApiConfig,
    caller_path: Path,
    caller_doc: dict[str, Any],
    callee: ApiConfig,
    callee_path: Path,
    callee_doc: dict[str, Any],
) -> list[str]:
    below: dict[str, list[tuple[str, Schema]]] = {}
    for where, name, schema in parameters(callee_doc):
        if (where, schema) not in below.setdefault(name, []):
            below[name].append((where, schema))
    problems: list[str] = []
    seen: list[tuple[str, str, Schema]] = []
    for where, name, schema in parameters(caller_doc):
        if (where, name, schema) in seen:
            continue
        seen.append((where, name, schema))
        for callee_where, callee_schema in below.get(name, []):
            why = wider(schema, callee_schema)
            if why:
                problems.append(
                    WIDER.format(
                        caller=caller.name,
                        caller_path=caller_path,
                        where=where,
                        name=name,
                        callee=callee.name,
                        callee_path=callee_path,
                        callee_where=callee_where,
                        why="; ".join(why),
                    )
                )
    return problems


def check_cross_tier(config: GatewayConfig) -> list[str]:
    """Every `depends_on` edge: parameters passed down are accepted below."""
    documents = {}
    for api in config.apis:
        if api.contract is None:
            continue  # forwarded by prefix: no parameters are known to compare
        path = api_contract_path(config, api)
        documents[api.name] = (path, _load(path))
    problems: list[str] = []
    for api in config.apis:
        caller_path, caller_doc = documents.get(api.name, (None, None))
        for name in api.depends_on:
            callee_path, callee_doc = documents.get(name, (None, None))
            if (
                caller_path is None
                or callee_path is None
                or caller_doc is None
                or callee_doc is None
            ):
                continue
            problems += check_edge(
                api, caller_path, caller_doc, config.api(name), callee_path, callee_doc
            )
    return problems
