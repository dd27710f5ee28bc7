"""Drift between a contract and what an in-process API really serves.

For `asgi:` targets the app is imported (as `tiergate up` would) and its routes are
compared with the contract's operations. Parameter names and convertors do not
count (`{id}` and `{order_id:order_ref}` are the same segment); HEAD comes with GET.
APIs behind `http://` targets are checked at run time by `tiergate contract-test`.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.config.models import ApiConfig, GatewayConfig
from gateway.contracts.lint import HTTP_METHODS, api_contract_path, load_contract
from gateway.proxy.inprocess import load_asgi

UNDOCUMENTED = (
    "{api}: the app serves {method} {path}, which contract {contract} does not document; "
    "add the operation or remove the route"
)
UNSERVED = (
    "{api}: contract {contract} documents {method} {path}, which the app does not serve; "
    "implement it or remove it from the contract"
)
_PARAM = re.compile(r"\{[^}]*\}")
MAX_WRAPPERS = 8  # middleware layers to look through for the routed app


def _normal(path: str) -> str:
    return _PARAM.sub("{}", path.rstrip("/") or "/")


def served_operations(app: Any) -> set[tuple[str, str]] | None:
    """(METHOD, normalised path) of a Starlette app, looking through wrappers."""
    for _ in range(MAX_WRAPPERS):
        routes = getattr(app, "routes", None)
        if routes is not None:
            return {
                (method, _normal(route.path))
                for route in routes
                if getattr(route, "methods", None) and getattr(route, "path", None)
                for method in route.methods
                if method != "HEAD"
            }
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def documented_operations(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    out = {}
    for path, item in (document.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if isinstance((item or {}).get(method), dict) and method != "head":
                out[(method.upper(), _normal(path))] = path
    return out


def api_drift(config: GatewayConfig, api: ApiConfig) -> list[str]:
    target = next((t for t in api.upstream.targets if t.startswith("asgi:")), None)
    if target is None or api.contract is None:
        return []
    path = api_contract_path(config, api)
    try:
        documented = documented_operations(load_contract(path))
        served = served_operations(load_asgi(target))
    except Exception:  # the lint and start-up report these precisely
        return []
    if served is None:
        return []
    problems = [
        UNDOCUMENTED.format(api=api.name, method=m, path=p, contract=api.contract)
        for m, p in sorted(served - documented.keys())
    ]
    problems += [
        UNSERVED.format(api=api.name, method=m, path=documented[(m, p)], contract=api.contract)
        for m, p in sorted(documented.keys() - served)
    ]
    return problems


def check_drift(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    for api in config.apis:
        problems.extend(api_drift(config, api))
    return problems
