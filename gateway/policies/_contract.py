"""An API's OpenAPI 3.1 contract compiled into request checks, once, at start-up.

Each operation becomes one Draft 2020-12 validator (jsonschema_rs: ~1 µs for a
small document, ~170 µs with the pure-Python `jsonschema`) over one instance
`{"path": {...}, "query": {...}, "headers": {...}, "body": ...}`, so every error
carries a JSON pointer into that instance: `/query/limit`, `/body/items/0/qty`.
The contract's `components` are copied into each schema, so `#/components/...`
references resolve unchanged. Parameters are coerced from strings by their
declared type before validation (an uncoercible value keeps its string form and
fails the type check with a precise message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema_rs
import yaml

from gateway.policies._binding import EXTENSION, Binding, Declared, compile_binding

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_INT = re.compile(r"-?[0-9]+")  # ASCII digits only: int() also takes other scripts' digits
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
Coerce = Callable[[str], Any]


class ContractError(Exception):
    """The contract cannot be compiled; the message says where and why."""


def _coercer(schema: dict[str, Any], components: dict[str, Any]) -> Coerce:
    schema = _resolve(schema, components)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        return lambda v: int(v) if _INT.fullmatch(v) else v
    if kind == "number":
        return lambda v: float(v) if _NUMBER.fullmatch(v) else v
    if kind == "boolean":
        return lambda v: {"true": True, "false": False}.get(v, v)
    return str


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 16:
        ref = schema["$ref"]
        if not ref.startswith("#/components/"):
            return schema
        node: Any = {"components": components}
        for part in ref[2:].split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
        schema, seen = node, seen + 1
    return schema


@dataclass(slots=True)
class Param:
    name: str  # as the instance uses it (header names lower-cased)
    coerce: Coerce
    array: bool = False
    item: Coerce = str


@dataclass(frozen=True, slots=True)
class Requirement:
    """One security scheme of an alternative, with the scopes it needs."""

    scheme: str  # its name in components.securitySchemes
    kind: str  # "bearer", "apiKey", "mutualTLS", or "<type>" for schemes the gateway lacks
    scopes: frozenset[str] = frozenset()


Alternative = tuple[Requirement, ...]  # all of them (AND); () lets anonymous requests in


@dataclass(slots=True)
class Operation:
    method: str
    template: str
    path_names: tuple[str, ...]
    path: dict[str, Coerce]
    query: list[Param]
    headers: list[Param]
    validator: Any
    body_required: bool = False
    media: tuple[str, ...] = ()  # accepted request media types; () = no body declared
    json_body: bool = False  # a JSON schema applies to the body
    responses: dict[str, Any] = field(default_factory=dict)
    components: dict[str, Any] = field(default_factory=dict)
    operation_id: str | None = None
    # The contract's alternatives (OR of ANDs); None when it declares no security at all.
    security: tuple[Alternative, ...] | None = None
    index: int = 0  # position in the contract's table: policies key precomputed data by it
    key: str = ""  # `METHOD /template`, the operation's name in logs and config
    name: str = ""  # the operationId, else `key`
    binding: Binding | None = None  # x-tiergate-bind (gateway/policies/_binding.py)
    _response_validators: dict[tuple[str, str], Any] = field(default_factory=dict)

    def response_validator(self, status: str, media: str) -> Any | None:
        """Validator of the declared JSON response body (compiled on first use), or None."""
        key = (status, media)
        if key not in self._response_validators:
            spec = self.responses.get(status) or self.responses.get(status[0] + "XX")
            spec = _resolve(spec or self.responses.get("default") or {}, self.components)
            schema = ((spec.get("content") or {}).get(media) or {}).get("schema")
            validator = None
            if schema is not None and _is_json(media):
                body = {"$ref": "#/x-body", "x-body": schema, "components": self.components}
                validator = jsonschema_rs.Draft202012Validator(body)
            self._response_validators[key] = validator
        return self._response_validators[key]

    def declares(self, status: str) -> bool:
        r = self.responses
        return status in r or status[0] + "XX" in r or "default" in r

    def instance(self, params: Iterable[str], query: bytes, headers: list) -> dict:
        """The validation instance; `params` are the path parameters, already decoded."""
        path = {n: c(v) for (n, c), v in zip(self.path.items(), params, strict=True)}
        out: dict[str, Any] = {"path": path, "query": {}, "headers": {}}
        if self.query and query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            found: dict[str, list[str]] = {}
            for key, value in pairs:
                found.setdefault(key, []).append(value)
            out["query"] = _coerce_all(self.query, found)
        if self.headers:
            found = {}
            for key, value in headers:
                found.setdefault(key.decode("latin-1"), []).append(value.decode("latin-1"))
            out["headers"] = _coerce_all(self.headers, found)
        return out


def _coerce_all(params: list[Param], found: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for param in params:
        values = found.get(param.name)
        if values is None:
            continue
        if param.array:
            out[param.name] = [param.item(v) for p in values for v in p.split(",")]
        else:
            out[param.name] = param.coerce(values[0]) if len(values) == 1 else values
    return out


@dataclass(slots=True)
class PathEntry:
    regex: re.Pattern[str] | None  # None for a template without parameters
    template: str
    operations: dict[str, Operation]
    allow: str


class Contract:
    """Every operation of one contract, matched by path template and method.

    Templates are compared without a trailing slash (`/orders/` is `/orders`); templates
    without parameters are looked up exactly, the others tried in order, fewest
    parameters first, so `/orders/bulk` beats `/orders/{order_id}`.
    """

    def __init__(
        self,
        document: dict[str, Any],
        source: str = "contract",
        validators: bool = True,
        strict: bool = True,
    ) -> None:
        self.source = source
        self.problems: list[str] = []  # what is wrong with its extensions (strict: raised)
        components = document.get("components") or {}
        schemes = components.get("securitySchemes") or {}
        default_security = document.get("security")
        self.operations: list[Operation] = []
        self.exact: dict[str, PathEntry] = {}
        templated: list[tuple[int, int, PathEntry]] = []
        seen: dict[str, str] = {}
        for raw_template, item in (document.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            template = raw_template.rstrip("/") or "/"
            if template in seen:
                raise ContractError(
                    f"{source}: paths {seen[template]!r} and {raw_template!r} differ only by a "
                    "trailing slash, which the gateway ignores; keep one"
                )
            seen[template] = raw_template
            regex, names = _template_regex(template)
            shared = item.get("parameters", [])
            operations = {}
            for method in METHODS:
                op = item.get(method)
                if isinstance(op, dict):
                    compiled = _operation(
                        method.upper(), raw_template, names, shared, op, components, validators
                    )
                    compiled.operation_id = op.get("operationId")
                    compiled.key = f"{method.upper()} {raw_template}"
                    compiled.name = compiled.operation_id or compiled.key
                    security = op.get("security", default_security)
                    compiled.security = _security(security, schemes)
                    compiled.index = len(self.operations)
                    compiled.binding = self._binding(compiled, op.get(EXTENSION))
                    self.operations.append(compiled)
                    operations[method.upper()] = compiled
            if "GET" in operations and "HEAD" not in operations:
                operations["HEAD"] = operations["GET"]
            allow = ", ".join(sorted(operations))
            if not names:
                self.exact[template] = PathEntry(None, raw_template, operations, allow)
            else:
                entry = PathEntry(regex, raw_template, operations, allow)
                templated.append((len(names), -len(template), entry))
        templated.sort(key=lambda e: (e[0], e[1]))
        self.templated = [entry for _, _, entry in templated]
        if strict and self.problems:
            raise ContractError(self.problems[0])

    def _binding(self, op: Operation, raw: Any) -> Binding | None:
        declared = Declared(
            path=op.path_names,
            query=frozenset(p.name for p in op.query),
            headers=frozenset(p.name for p in op.headers),
            json_body=op.json_body,
            method=op.method,
        )
        binding, problems = compile_binding(raw, declared)
        where = f"{self.source}: operation {op.name}" + (f" ({op.key})" if op.operation_id else "")
        self.problems.extend(f"{where}: {problem}" for problem in problems)
        return binding

    def match(self, path: str) -> tuple[PathEntry, tuple[str, ...]] | None:
        """The entry for a decoded path without a trailing slash, and its parameters."""
        entry = self.exact.get(path)
        if entry is not None:
            return entry, ()
        for entry in self.templated:
            assert entry.regex is not None
            found = entry.regex.match(path)
            if found is not None:
                return entry, found.groups()
        return None

    def find(self, reference: str) -> Operation | None:
        """The operation a config key names: its operationId or `METHOD /template`."""
        method, _, template = reference.partition(" ")
        template = template.rstrip("/") or "/"
        for op in self.operations:
            if op.operation_id == reference:
                return op
            if op.method == method and (op.template.rstrip("/") or "/") == template:
                return op
        if method == "HEAD":
            return self.find(f"GET {template}")
        return None

    def references(self) -> list[str]:
        """Every name config may use for an operation."""
        names = [op.key for op in self.operations]
        return names + [op.operation_id for op in self.operations if op.operation_id]


def _security(requirements: Any, schemes: dict[str, Any]) -> tuple[Alternative, ...] | None:
    """Compile `security` (a list of alternatives, each {scheme: [scopes]}) once."""
    if requirements is None:
        return None
    if requirements == []:
        return ((),)  # `security: []`: the operation needs no credentials
    alternatives: list[Alternative] = []
    for requirement in requirements if isinstance(requirements, list) else []:
        if not isinstance(requirement, dict):
            continue
        alternatives.append(
            tuple(
                Requirement(name, scheme_kind(schemes.get(name)), frozenset(scopes or ()))
                for name, scopes in requirement.items()
            )
        )
    return tuple(alternatives)


def scheme_kind(scheme: Any) -> str:
    """What a security scheme asks for, in the gateway's terms."""
    if not isinstance(scheme, dict):
        return "undefined"
    kind = scheme.get("type")
    if kind in ("oauth2", "openIdConnect"):
        return "bearer"
    if kind == "http":
        return "bearer" if str(scheme.get("scheme", "")).lower() == "bearer" else "http"
    return str(kind)


def load_contract(path: Path, validators: bool = True, strict: bool = True) -> Contract:
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: cannot read the contract: {exc}") from None
    if not isinstance(document, dict):
        raise ContractError(f"{path}: the contract is not an OpenAPI document")
    return Contract(document, str(path), validators, strict)


def _template_regex(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    names: list[str] = []
    pattern = ""
    for literal, name in re.findall(r"([^{]*)(?:\{([^}]+)\})?", template):
        pattern += re.escape(literal)
        if name:
            names.append(name)
            pattern += "([^/]+)"
    return re.compile(f"^{pattern}$"), tuple(names)


def _operation(
    method: str,
    template: str,
    names: tuple[str, ...],
    shared: list[Any],
    op: dict[str, Any],
    components: dict[str, Any],
    validators: bool = True,
) -> Operation:
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in [*shared, *op.get("parameters", [])]:
        param = _resolve(raw, components)
        if isinstance(param, dict) and "name" in param and "in" in param:
            params[(param["in"], param["name"])] = param
    groups: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "headers": {}}
    required: dict[str, list[str]] = {"path": [], "query": [], "headers": []}
    coercers: dict[str, Coerce] = {}
    query: list[Param] = []
    headers: list[Param] = []
    for (where, name), param in params.items():
        schema = param.get("schema", {})
        group = {"header": "headers"}.get(where, where)
        if group not in groups:
            continue  # cookie parameters are not checked
        key = name.lower() if group == "headers" else name
        groups[group][key] = schema
        if param.get("required") or where == "path":
            required[group].append(key)
        resolved = _resolve(schema, components)
        if group == "path":
            coercers[name] = _coercer(schema, components)
        else:
            array = resolved.get("type") == "array"
            item = _coercer(resolved.get("items", {}), components) if array else str
            entry = Param(key, _coercer(schema, components), array, item)
            (query if group == "query" else headers).append(entry)
    path_coercers = {name: coercers.get(name, str) for name in names}
    properties: dict[str, Any] = {
        group: {"type": "object", "properties": props, "required": required[group]}
        for group, props in groups.items()
    }
    body = _resolve(op.get("requestBody") or {}, components)
    content = body.get("content") or {}
    media = tuple(m.lower() for m in content)
    json_media = next((m for m in content if _is_json(m) and "schema" in content[m]), None)
    if json_media is not None:
        properties["body"] = content[json_media]["schema"]
    schema = {
        "type": "object",
        "properties": properties,
        "components": components,
    }
    try:
        validator = jsonschema_rs.Draft202012Validator(schema) if validators else None
    except Exception as exc:  # jsonschema_rs raises ValueError or its own errors
        raise ContractError(f"{method} {template}: invalid schema: {exc}") from None
    return Operation(
        method=method,
        template=template,
        path_names=names,
        path=path_coercers,
        query=query,
        headers=headers,
        validator=validator,
        body_required=bool(body.get("required")),
        media=media,
        json_body=json_media is not None,
        responses=op.get("responses") or {},
        components=components,
    )


def _is_json(media: str) -> bool:
    media = media.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def errors_of(validator: Any, instance: Any) -> list[dict[str, str]]:
    """Every violation as {pointer, detail}; a missing property points at itself."""
    out = []
    for error in validator.iter_errors(instance):
        parts = [str(p) for p in error.instance_path]
        kind = error.kind
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            parts.append(str(kind.property))
        pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)
        out.append({"pointer": pointer or "/", "detail": error.message})
    return out


__all__ = [
    "Alternative",
    "Contract",
    "ContractError",
    "Operation",
    "Requirement",
    "errors_of",
    "load_contract",
    "scheme_kind",
]
