"""`authorize`: the operation's security requirement, decided on verified credentials.

Added by the loader to every API with an authentication policy (`jwt`, `api-key`, `mtls`);
it has no settings of its own. The authentication policies only verify what was sent
(`ctx.credentials`, `ctx.auth_error`); this one decides, once, on `ctx.operation`:

- The contract's `security` for the operation is a list of alternatives, each an AND
  of schemes with scopes; the request must satisfy one. A bearer scheme (oauth2,
  openIdConnect, http bearer) is satisfied by a verified token holding the scopes; an
  apiKey scheme by a verified key whose grants hold the scopes (and, when the key is
  limited to operations, this operation). An empty alternative lets anyone in.
- Config only narrows: `jwt.scopes` and `jwt.operation_scopes` add scopes to every bearer
  scheme of the operation.
- Where the contract declares no security (or the API has no contract), the
  alternatives come from config: a token; with `jwt.optional`, a key (when api-key is
  configured) or nobody.
- 401 carries one `WWW-Authenticate` challenge per scheme the operation accepts
  (RFC 9110 §11.6.1); the bearer challenge has `scope=` when scopes are required and
  `error=` when a token was sent (RFC 6750 §3). A credential that holds too little → 403.

Everything per operation is computed when the chain is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.models import ApiConfig, StrictModel
from gateway.context import Identity, RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.policies._contract import Alternative, Contract, Operation, Requirement
from gateway.problem import ProblemResponse

BEARER = "bearer"
API_KEY = "apiKey"
MUTUAL_TLS = "mutualTLS"
REALM = 'realm="tiergate"'
NEEDS = {
    BEARER: "an OAuth2 access token sent as Authorization: Bearer <token>",
    API_KEY: "an API key sent in the X-API-Key header",
    MUTUAL_TLS: "a registered client certificate (mutual TLS)",
}
NO_CREDENTIALS = "This operation needs {needs}."
NOT_ACCEPTED = "This operation does not accept {sent}; it needs {needs}."
SENT = {BEARER: "OAuth2 access tokens", API_KEY: "API keys", MUTUAL_TLS: "client certificates"}
_NONE: dict[str, Identity] = {}  # no credentials (never written to)
INSUFFICIENT_SCOPE = "This operation needs the scopes: {scopes}."
KEY_NOT_GRANTED = "This API key is not granted operation {operation}."
KEY_SCOPES = "This API key is not granted the scopes this operation needs: {scopes}."
NOBODY = "No credential this gateway can verify is accepted by this operation."


class AuthorizeConfig(StrictModel):
    """No settings: the contract and the jwt/api-key configs decide."""


@dataclass(frozen=True, slots=True)
class _Decision:
    """What one operation accepts, precomputed."""

    name: str  # operationId or METHOD /template (key grants name either)
    key: str
    alternatives: tuple[Alternative, ...]
    kinds: tuple[str, ...]  # accepted credential kinds, in contract order
    bearer_scopes: frozenset[str]  # of the first alternative with a bearer scheme
    single: Requirement | None = None  # set when there is one alternative of one scheme

    def satisfied_by(self, alternative: Alternative, credentials: dict[str, Identity]) -> bool:
        for requirement in alternative:
            identity = credentials.get(requirement.kind)
            if identity is None or not requirement.scopes <= identity.scopes:
                return False
            grants = identity.operations
            if grants is not None and self.name not in grants and self.key not in grants:
                return False
        return True

    def challenges(self, error: tuple[str, str] | None) -> list[tuple[str, str]]:
        headers = []
        for kind in self.kinds:
            if kind == BEARER:
                challenge = f"Bearer {REALM}"
                if self.bearer_scopes:
                    challenge += f', scope="{" ".join(sorted(self.bearer_scopes))}"'
                if error is not None and error[0] == BEARER:
                    challenge += f', error="invalid_token", error_description="{error[1]}"'
                headers.append(("www-authenticate", challenge))
            elif kind == API_KEY:
                headers.append(("www-authenticate", f'APIKey {REALM}, header="X-API-Key"'))
        return headers


class Authorize:
    def __init__(self, decisions: list[_Decision], default: _Decision) -> None:
        self.decisions = decisions
        self.default = default

    async def __call__(self, ctx: RequestContext) -> ProblemResponse | None:
        resolved = ctx.operation
        decision = self.decisions[resolved.index] if resolved is not None else self.default
        credentials = ctx.credentials or _NONE
        error = ctx.auth_error
        if error is not None and error[0] in decision.kinds:
            return ProblemResponse(401, error[1], headers=decision.challenges(error))
        single = decision.single
        if single is not None:  # the common case: one scheme, one alternative
            identity = credentials.get(single.kind)
            if identity is not None and decision.satisfied_by(
                decision.alternatives[0], credentials
            ):
                ctx.identity = identity
                return None
            return _refusal(decision, credentials)
        for alternative in decision.alternatives:
            if decision.satisfied_by(alternative, credentials):
                first = alternative[0].kind if alternative else next(iter(credentials), None)
                ctx.identity = credentials.get(first) if first is not None else None
                return None
        return _refusal(decision, credentials)


def _refusal(decision: _Decision, credentials: dict[str, Identity]) -> ProblemResponse:
    # 403 when every credential of some alternative is there but holds too little;
    # 401 when a credential is missing (or of a kind this operation does not accept).
    for alternative in decision.alternatives:
        if alternative and all(r.kind in credentials for r in alternative):
            return _forbidden(decision, alternative, credentials)
    needs = " or ".join(NEEDS.get(kind, f"the {kind} scheme") for kind in decision.kinds)
    if credentials:
        sent = " or ".join(SENT.get(kind, kind) for kind in credentials)
        detail = NOT_ACCEPTED.format(sent=sent, needs=needs)
    else:
        detail = NO_CREDENTIALS.format(needs=needs) if decision.kinds else NOBODY
    return ProblemResponse(401, detail, headers=decision.challenges(None))


def _forbidden(
    decision: _Decision, alternative: Alternative, credentials: dict[str, Identity]
) -> ProblemResponse:
    failing = next(r for r in alternative if not decision.satisfied_by((r,), credentials))
    kind, wanted, identity = failing.kind, failing.scopes, credentials[failing.kind]
    if kind == BEARER:
        scopes = " ".join(sorted(wanted))
        detail = INSUFFICIENT_SCOPE.format(scopes=scopes)
        challenge = (
            f'Bearer {REALM}, error="insufficient_scope", error_description="{detail}", '
            f'scope="{scopes}"'
        )
        return ProblemResponse(
            403, detail, headers=[("www-authenticate", challenge)], required_scopes=sorted(wanted)
        )
    grants = identity.operations
    if grants is not None and decision.name not in grants and decision.key not in grants:
        return ProblemResponse(403, KEY_NOT_GRANTED.format(operation=decision.name))
    return ProblemResponse(403, KEY_SCOPES.format(scopes=" ".join(sorted(wanted))))


# -- building -------------------------------------------------------------------------------


def _configured(api: ApiConfig) -> tuple[Any, Any, Any]:
    configs = api.policy_configs
    return configs.get("jwt"), configs.get("api-key"), configs.get("mtls")


def _from_config(jwt: Any, api_key: Any, mtls: Any = None) -> tuple[Alternative, ...]:
    """The alternatives when the contract is silent: what the config asks for."""
    others: list[Alternative] = [
        (Requirement(kind, kind),)
        for kind, configured in ((API_KEY, api_key), (MUTUAL_TLS, mtls))
        if configured is not None
    ]
    if jwt is None:
        return tuple(others) or ((),)
    token: Alternative = (Requirement(BEARER, BEARER),)
    if not jwt.optional:
        return (token,)
    return (token, *others) if others else (token, ())


def _narrowed(alternatives: tuple[Alternative, ...], extra: frozenset[str]) -> tuple:
    """Config adds scopes to every bearer scheme; it never widens the contract."""
    if not extra:
        return alternatives
    return tuple(
        tuple(
            Requirement(r.scheme, r.kind, r.scopes | extra) if r.kind == BEARER else r
            for r in alternative
        )
        for alternative in alternatives
    )


def _config_scopes(operation: Operation | None, jwt: Any, contract: Contract | None) -> frozenset:
    """The scopes jwt config adds: `scopes` everywhere, `operation_scopes` where named."""
    if jwt is None:
        return frozenset()
    extra = frozenset(jwt.scopes)
    if operation is None or contract is None:
        return extra
    for reference, scopes in jwt.operation_scopes.items():
        if contract.find(reference) is operation:
            extra |= frozenset(scopes)
    return extra


def _decision(
    operation: Operation | None,
    jwt: Any,
    api_key: Any,
    contract: Contract | None,
    mtls: Any = None,
) -> _Decision:
    security = operation.security if operation is not None else None
    alternatives = security if security is not None else _from_config(jwt, api_key, mtls)
    alternatives = _narrowed(alternatives, _config_scopes(operation, jwt, contract))
    kinds: list[str] = []
    for alternative in alternatives:
        for requirement in alternative:
            if requirement.kind not in kinds:
                kinds.append(requirement.kind)
    bearer = next((r.scopes for alt in alternatives for r in alt if r.kind == BEARER), frozenset())
    return _Decision(
        name=operation.name if operation is not None else "",
        key=operation.key if operation is not None else "",
        alternatives=alternatives,
        kinds=tuple(kinds),
        bearer_scopes=bearer,
        single=alternatives[0][0] if len(alternatives) == 1 and len(alternatives[0]) == 1 else None,
    )


def build(config: AuthorizeConfig, ctx: BuildContext) -> Authorize:
    jwt, api_key, mtls = _configured(ctx.api)
    contract: Contract | None = ctx.contract
    operations = contract.operations if contract is not None else []
    decisions = [_decision(op, jwt, api_key, contract, mtls) for op in operations]
    return Authorize(decisions, _decision(None, jwt, api_key, None, mtls))


SPEC = PolicySpec(
    name="authorize",
    priority=PRIORITY["authorize"],
    config_model=AuthorizeConfig,
    build=build,
    description="The operation's security alternatives and scopes, from the contract.",
)
