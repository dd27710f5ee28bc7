"""Tier lint for `tiergate check`: every API's contract is valid and agrees with the config.

Rules (each problem is one sentence naming the file and the fix):
- the contract exists, is YAML/JSON and passes openapi-spec-validator;
- its top-level `x-tier` equals the API's tier in the config;
- its `servers` list the API's base path;
- operationIds are unique across the whole estate.
`depends_on` direction and cycles are rules of the config models themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from gateway.config.models import ApiConfig, GatewayConfig

if TYPE_CHECKING:
    from gateway.policies._contract import Contract

MISSING = "{api}: contract {path} does not exist; write it or fix `contract` in the config"
UNREADABLE = "{api}: contract {path} is not valid YAML/JSON: {error}"
INVALID = "{api}: contract {path} is not a valid OpenAPI document: {error}"
TIER_MISMATCH = (
    "{api}: contract {path} declares x-tier {found!r} but the config says tier {tier!r}; "
    "make them agree"
)
SERVERS_MISMATCH = (
    "{api}: contract {path} servers {found} do not include the base path {expected!r}; "
    "add `servers: [{{url: {expected}}}]`"
)
DUPLICATE_OPERATION = (
    "{api}: operationId {op!r} in {path} is already used by API {other!r}; "
    "operationIds must be unique across the estate"
)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def contract_path(config: GatewayConfig, api: ApiConfig) -> Path:
    assert api.contract is not None, "only APIs with a contract are linted"
    base = config.source.parent if config.source is not None else Path.cwd()
    return base / api.contract


def load_contract(path: Path) -> dict[str, Any]:
    """Parse a contract; raises OSError or yaml.YAMLError."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise yaml.YAMLError("the document is not a mapping")
    return document


def operation_ids(document: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for item in (document.get("paths") or {}).values():
        for method in HTTP_METHODS:
            operation = (item or {}).get(method)
            if isinstance(operation, dict) and operation.get("operationId"):
                ids.append(str(operation["operationId"]))
    return ids


def lint_contracts(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    owners: dict[str, str] = {}
    for api in config.apis:
        if api.contract is None:
            continue  # forwarded by prefix; nothing to lint
        path = contract_path(config, api)
        if not path.is_file():
            problems.append(MISSING.format(api=api.name, path=path))
            continue
        try:
            document = load_contract(path)
        except (OSError, yaml.YAMLError) as error:
            problems.append(UNREADABLE.format(api=api.name, path=path, error=error))
            continue
        try:
            validate(document)
        except (OpenAPIValidationError, Exception) as error:  # the validator raises several kinds
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            problems.append(INVALID.format(api=api.name, path=path, error=first))
            continue
        found_tier = document.get("x-tier")
        if found_tier != api.tier:
            problems.append(
                TIER_MISMATCH.format(api=api.name, path=path, found=found_tier, tier=api.tier)
            )
        servers = [s.get("url") for s in document.get("servers") or [] if isinstance(s, dict)]
        if api.path not in [str(url).rstrip("/") for url in servers]:
            problems.append(
                SERVERS_MISMATCH.format(api=api.name, path=path, found=servers, expected=api.path)
            )
        for op in operation_ids(document):
            if op in owners:
                problems.append(
                    DUPLICATE_OPERATION.format(api=api.name, op=op, path=path, other=owners[op])
                )
            else:
                owners[op] = api.name
    return problems


# -- security schemes the gateway enforces -----------------------------------------------

UNDEFINED_SCHEME = (
    "{api}: {op} in {path} requires security scheme {scheme!r}, which "
    "components.securitySchemes does not define"
)
UNENFORCEABLE = (
    "{api}: security scheme {scheme!r} ({kind}) in {path} is not one the gateway can enforce; "
    "use an oauth2/openIdConnect/http bearer scheme (jwt policy), an apiKey in the X-API-Key "
    "header (api-key policy) or mutualTLS (mtls policy)"
)
POLICY_OFF = (
    "{api}: {path} accepts {scheme!r} ({kind}) but the {policy} policy is off for this API; "
    "configure {policy} or remove the scheme from the contract"
)
WRONG_KEY_PLACE = (
    "{api}: apiKey scheme {scheme!r} in {path} reads {where} {name!r}; the api-key policy reads "
    "the X-API-Key header{query}"
)
UNDECLARED_SCOPE = (
    "{api}: {op} in {path} requires scope {scope!r} of oauth2 scheme {scheme!r}, which its "
    "flows do not declare"
)
_POLICY_FOR = {"bearer": "jwt", "apiKey": "api-key", "mutualTLS": "mtls"}


def _compiled(config: GatewayConfig) -> Iterator[tuple[ApiConfig, Path, dict, Contract]]:
    """Each API's contract, parsed and compiled (problems kept); unreadable ones skipped
    (lint_contracts reports them)."""
    from gateway.policies._contract import ContractError
    from gateway.policies._contract import load_contract as compile_contract

    for api in config.apis:
        if api.contract is None:
            continue
        path = contract_path(config, api)
        try:
            document = load_contract(path)
            contract = compile_contract(path, validators=False, strict=False)
        except (OSError, yaml.YAMLError, ContractError):
            continue
        yield api, path, document, contract


def security_problems(config: GatewayConfig) -> list[str]:
    """Every scheme a contract's operations require exists and is one the API enforces."""
    problems: list[str] = []
    for api, path, document, contract in _compiled(config):
        schemes = (document.get("components") or {}).get("securitySchemes") or {}
        used: dict[str, str] = {}
        for operation in contract.operations:
            for alternative in operation.security or ():
                for requirement in alternative:
                    name = requirement.scheme
                    if name not in schemes:
                        problems.append(
                            UNDEFINED_SCHEME.format(
                                api=api.name, op=operation.name, path=path, scheme=name
                            )
                        )
                        continue
                    used[name] = requirement.kind
                    problems += _undeclared_scopes(api, path, operation.name, requirement, schemes)
        for name, kind in used.items():
            problems += _enforceable(api, path, name, kind, schemes[name])
    return problems


def _enforceable(api: ApiConfig, path: Path, name: str, kind: str, scheme: dict) -> list[str]:
    policy = _POLICY_FOR.get(kind)
    if policy is None:
        shown = kind if kind != "http" else f"http {scheme.get('scheme')}"
        return [UNENFORCEABLE.format(api=api.name, scheme=name, kind=shown, path=path)]
    configured = api.policy_configs.get(policy)
    if configured is None:
        return [POLICY_OFF.format(api=api.name, path=path, scheme=name, kind=kind, policy=policy)]
    if kind != "apiKey":
        return []
    where, key_name = scheme.get("in"), str(scheme.get("name", ""))
    if where == "header" and key_name.lower() == "x-api-key":
        return []
    allow_query = getattr(configured, "allow_query", False)
    query_param = getattr(configured, "query_param", None)
    if where == "query" and allow_query and key_name == query_param:
        return []
    query = f" (or the query parameter {query_param!r})" if allow_query else ""
    return [
        WRONG_KEY_PLACE.format(
            api=api.name, scheme=name, path=path, where=where, name=key_name, query=query
        )
    ]


def _undeclared_scopes(
    api: ApiConfig, path: Path, op: str, requirement: Any, schemes: dict
) -> list[str]:
    scheme = schemes.get(requirement.scheme) or {}
    if scheme.get("type") != "oauth2":
        return []  # other schemes' lists are role names (OpenAPI 3.1 §4.8.30)
    declared = {
        scope for flow in (scheme.get("flows") or {}).values() for scope in flow.get("scopes") or {}
    }
    return [
        UNDECLARED_SCOPE.format(api=api.name, op=op, path=path, scope=s, scheme=requirement.scheme)
        for s in sorted(requirement.scopes - declared)
    ]


# -- object-level bindings (x-tiergate-bind) ------------------------------------------------

BINDING_ANONYMOUS = (
    "{api}: {path}: operation {op} binds values to its caller (x-tiergate-bind) but its "
    "security lets anonymous requests in (an empty alternative); require a credential"
)
BINDING_OFF = (
    "{api}: {path} binds operations to their caller (x-tiergate-bind: {ops}) but nothing "
    "enforces it: configure an authentication policy (jwt or api-key) and do not turn "
    "object-binding off"
)


def binding_problems(config: GatewayConfig) -> list[str]:
    """Every x-tiergate-bind names parameters the operation has, and is enforced."""
    problems: list[str] = []
    for api, path, _, contract in _compiled(config):
        problems += [f"{api.name}: {problem}" for problem in contract.problems]
        problems += [
            BINDING_ANONYMOUS.format(api=api.name, path=path, op=op.name)
            for op in contract.operations
            if op.binding is not None and () in (op.security or ())
        ]
        bound = [op.name for op in contract.operations if op.binding is not None]
        if bound and "object-binding" not in api.policy_configs:
            problems.append(BINDING_OFF.format(api=api.name, path=path, ops=", ".join(bound)))
    return problems
