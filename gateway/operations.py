"""Which contract operation a request is: resolved once, before any policy runs.

An API with a contract gets its operation table (gateway/policies/_contract.py) at
start-up. Per request the gateway resolves the path relative to the API's base path:

- percent-decoded once, as UTF-8 (the listener already refused encoded `/`, `.`, `\\`,
  NUL and double encoding, so decoding cannot change the path's structure);
- one trailing slash is ignored: `/orders/` is the operation `/orders`, and the
  upstream gets `/orders`;
- matching is case-sensitive (RFC 3986 §6.2.2.1) and `;` is an ordinary character, so
  `/Orders` and `/orders;x` match nothing;
- HEAD resolves as GET when the contract declares no HEAD;
- a CORS preflight (OPTIONS with Access-Control-Request-Method) resolves as the method
  it asks about, so the cors policy answers it for that operation;
- no template matches → 404, the path has no such method → 405 with `Allow`.

The answer is `ctx.operation`, the only answer to "which operation is this" in the
gateway: policies read it and never look at the raw path. An API without a contract
keeps plain prefix forwarding (`ctx.operation` is None).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from gateway.config import contract_path
from gateway.config.models import ApiConfig, GatewayConfig
from gateway.policies._contract import Contract, Operation, load_contract
from gateway.problem import ProblemResponse

NO_OPERATION = "API '{api}' has no operation at '{path}'."
WRONG_METHOD = "'{path}' of API '{api}' does not accept {method}; allowed: {allow}."
NOT_UTF8 = "The request path is not valid UTF-8 once percent-decoded."
UNKNOWN_REFERENCE = "names no operation of {contract}{hint}"
NO_CONTRACT = "names an operation, but API {api!r} has no contract to name it in"


# Not frozen: built on most requests to templated paths, and frozen init costs more; one for
# a fixed path is shared by every request to it (resolve's memo), so nothing may change it.
@dataclass(slots=True)
class ResolvedOperation:
    """The request's operation, with what resolving it found out."""

    operation: Operation
    path: str  # relative to the API, decoded, without a trailing slash
    params: tuple[str, ...]  # path parameters in template order, decoded
    trimmed: bool  # a trailing slash was ignored (and is not forwarded)
    index: int  # the operation's position in the table: policies key their data by it
    name: str  # its operationId, else `METHOD /template`
    template: str  # its path template: the route label of metrics and logs


# Resolutions kept per route: (method, relative path) → its ResolvedOperation.
Memo = dict[tuple[str, str], ResolvedOperation]
MEMO_SIZE = 1024  # entries; only fixed paths are kept, so a contract rarely fills it


def resolve(
    contract: Contract,
    api: str,
    method: str,
    relative: str,
    preflight: bytes | None = None,
    memo: Memo | None = None,
) -> ResolvedOperation | ProblemResponse:
    """Resolve `method relative` (still percent-encoded) to one operation, or a problem.

    With a `memo` (one per route and contract), the answer for a path without parameters
    or escapes is kept and returned again, the same object: never mutate it.
    """
    if memo is not None:
        known = memo.get((method, relative))
        if known is not None and preflight is None:
            return known
    resolved = _resolve(contract, api, method, relative, preflight)
    if (
        memo is not None
        and isinstance(resolved, ResolvedOperation)
        and not resolved.params
        and preflight is None
        and "%" not in relative
        and len(memo) < MEMO_SIZE
    ):
        memo[(method, relative)] = resolved
    return resolved


def _resolve(
    contract: Contract, api: str, method: str, relative: str, preflight: bytes | None
) -> ResolvedOperation | ProblemResponse:
    if "%" in relative:
        try:
            path = unquote_to_bytes(relative).decode("utf-8")
        except UnicodeDecodeError:
            return ProblemResponse(400, NOT_UTF8)
    else:
        path = relative
    trimmed = len(path) > 1 and path.endswith("/")
    if trimmed:
        path = path[:-1]
    found = contract.match(path)
    if found is None:
        return ProblemResponse(404, NO_OPERATION.format(api=api, path=path))
    entry, params = found
    if method == "OPTIONS" and preflight is not None and "OPTIONS" not in entry.operations:
        method = preflight.decode("latin-1").strip()
    operation = entry.operations.get(method)
    if operation is None:
        detail = WRONG_METHOD.format(path=path, api=api, method=method, allow=entry.allow)
        return ProblemResponse(405, detail, headers=[("allow", entry.allow)])
    return ResolvedOperation(
        operation, path, params, trimmed, operation.index, operation.name, operation.template
    )


def load_route_contract(config: GatewayConfig, api: ApiConfig) -> Contract | None:
    """The API's compiled contract (at start-up), or None for an API without one."""
    if api.contract is None:
        return None
    return load_contract(contract_path(config, api.contract))


def reference_problem(contract: Contract | None, api: str, reference: str) -> str | None:
    """None when `reference` names an operation of the contract; else what is wrong."""
    if contract is None:
        return NO_CONTRACT.format(api=api)
    if contract.find(reference) is not None:
        return None
    close = difflib.get_close_matches(reference, contract.references(), n=1, cutoff=0.4)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return UNKNOWN_REFERENCE.format(contract=contract.source, hint=hint)


__all__ = ["Memo", "ResolvedOperation", "load_route_contract", "reference_problem", "resolve"]
