"""`object-binding`: a request may only name the objects its credential is bound to.

The contract declares, per operation, which path, query, header or JSON body value must
equal which token claim (or, for API keys, the partner's account): the `x-tiergate-bind`
extension, compiled into `Operation.binding` at start-up (gateway/policies/_binding.py).
This policy enforces it on `ctx.operation` after authentication, authorize and the tier
guard, before rate limits (OWASP API1:2023, broken object-level authorization).

Config (added by the loader to every API with an authentication policy; absent from the
chain when no operation of the API declares a binding):

    policies:
      object-binding:
        accounts: {acme: cus_0002}             # API-key consumer → the account it acts for
        own_accounts: "^cus_[0-9a-z]{4,32}$"   # a consumer named like an account is that account

Per request, with the identity `authorize` chose:

- the credential's subject: a token's claim (`claim`), or an API key's account or
  consumer (`key`). A credential without one (client_credentials, a key without an
  account) passes only with one of the operation's `bypass-scopes`; else 403.
- a credential with a subject is always held to it, bypass scopes or not: every bound
  value must equal it exactly (no case folding, no Unicode normalisation); a mismatch
  answers the operation's `mismatch` status (403, or 404 where existence must not leak).
  A bound query parameter or header sent more than once → 400.
- body values are checked on the JSON body before anything is forwarded (at most
  `max_body_bytes`); a body with a duplicate object key is refused (400), since
  parsers disagree on which copy counts.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from jsonpointer import JsonPointerException
from pydantic import Field, field_validator

from gateway import strict_json
from gateway.channels import RequestRejected, whole_body_check
from gateway.config.base import StrictModel
from gateway.context import ChannelWrapper, Identity, RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.policies._binding import Binding, BoundValue
from gateway.policies._contract import Contract
from gateway.problem import ProblemResponse


class ObjectBindingConfig(StrictModel):
    accounts: dict[str, str] = Field(
        default_factory=dict,
        description="API-key consumer id → the account it acts for (the value a `key: "
        "account` binding must equal).",
    )
    own_accounts: str | None = Field(
        None,
        description="Regular expression: a consumer whose id matches it (and is not in "
        "`accounts`) is that account itself.",
    )
    max_body_bytes: int = Field(
        1 << 20, ge=1, le=1 << 26, description="Largest body read to check bound body values."
    )

    @field_validator("own_accounts")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from None
        return value


# -- error texts ----------------------------------------------------------------------------

NO_IDENTITY = "This operation needs an authenticated caller."
NO_SUBJECT = (
    "This operation returns or changes one customer's data, and this credential acts for "
    "no customer; it needs one of the scopes: {scopes}."
)
NO_SUBJECT_NO_BYPASS = (
    "This operation returns or changes one customer's data, and this credential acts for "
    "no customer."
)
FORBIDDEN = "This credential may not use {what} '{value}'."
NOT_FOUND = "There is no {what} '{value}' for this caller."
ABSENT = "This request must name {what} its credential is bound to."
REPEATED = "Send the {place} parameter '{name}' once."
NOT_JSON = "The request body is not valid JSON: {error}."
DUPLICATE_KEY = "The request body repeats the key '{key}'; send each key once."
BODY_TOO_LARGE = "The request body exceeds {limit} bytes, the most checked for bound values."


class _DuplicateKey(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


_DECODER = strict_json.decoder(object_pairs_hook=_pairs)


class ObjectBindingPolicy:
    def __init__(self, config: ObjectBindingConfig, bindings: list[Binding | None]) -> None:
        self.bindings = bindings
        self.accounts = dict(config.accounts)
        self.own = re.compile(config.own_accounts) if config.own_accounts else None
        self.max_body = config.max_body_bytes

    async def __call__(self, ctx: RequestContext) -> Any:
        resolved = ctx.operation
        binding = self.bindings[resolved.index] if resolved is not None else None
        if binding is None:
            return None
        identity = ctx.identity
        if identity is None:
            return ProblemResponse(401, NO_IDENTITY)
        subjects = [self._subject(identity, value) for value in binding.values]
        if any(subject is None for subject in subjects):
            if identity.scopes & binding.bypass_scopes and not any(subjects):
                return None
            return _no_subject(binding)
        assert resolved is not None
        headers: dict[str, list[str]] | None = None
        query: dict[str, list[str]] | None = None
        body: list[tuple[BoundValue, str]] = []
        for value, subject in zip(binding.values, subjects, strict=True):
            assert subject is not None
            if value.place == "path":
                found: list[str] = [resolved.params[value.index]]
            elif value.place == "query":
                if query is None:
                    query = _query(ctx.query)
                found = query.get(value.name, [])
            elif value.place == "header":
                if headers is None:
                    headers = _headers(ctx)
                found = headers.get(value.name, [])
            else:
                body.append((value, subject))
                continue
            refused = _judge(binding, value, subject, found)
            if refused is not None:
                return refused
        if body:
            ctx.channel_wrappers.append(self._body_check(binding, body))
        return None

    def _subject(self, identity: Identity, value: BoundValue) -> str | None:
        """What the credential says the value must be, or None (it acts for nobody)."""
        if identity.claims is not None:
            found = identity.claims.get(value.claim) if value.claim else None
            return found if isinstance(found, str) and found else None
        if value.key == "consumer":
            return identity.consumer_id
        if value.key == "account":
            account = self.accounts.get(identity.consumer_id)
            if (
                account is None
                and self.own is not None
                and self.own.fullmatch(identity.consumer_id)
            ):
                account = identity.consumer_id
            return account
        return None

    def _body_check(self, binding: Binding, body: list[tuple[BoundValue, str]]) -> ChannelWrapper:
        def check(data: bytes) -> None:
            document = _document(data)
            for value, subject in body:
                assert value.pointer is not None
                try:
                    found = [value.pointer.resolve(document)]
                except JsonPointerException:
                    found = []
                refused = _judge(binding, value, subject, found)
                if refused is not None:
                    raise RequestRejected(refused)

        too_large = BODY_TOO_LARGE.format(limit=self.max_body)
        return whole_body_check(self.max_body, too_large, check)


def _judge(
    binding: Binding, value: BoundValue, subject: str, found: list[Any]
) -> ProblemResponse | None:
    what = f"{value.name.lstrip('/')}"
    if not found:
        return None if value.optional else ProblemResponse(binding.mismatch, _absent(what))
    if len(found) > 1:
        return ProblemResponse(400, REPEATED.format(place=value.place, name=value.name))
    actual = found[0]
    if isinstance(actual, str) and actual == subject:
        return None
    shown = actual if isinstance(actual, str) else json.dumps(actual)
    text = NOT_FOUND if binding.mismatch == 404 else FORBIDDEN
    return ProblemResponse(binding.mismatch, text.format(what=what, value=shown[:100]))


def _absent(what: str) -> str:
    return ABSENT.format(what=f"the {what}")


def _no_subject(binding: Binding) -> ProblemResponse:
    if binding.bypass_scopes:
        scopes = " or ".join(sorted(binding.bypass_scopes))
        return ProblemResponse(403, NO_SUBJECT.format(scopes=scopes))
    return ProblemResponse(403, NO_SUBJECT_NO_BYPASS)


def _query(raw: bytes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        found.setdefault(key, []).append(value)
    return found


def _headers(ctx: RequestContext) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in ctx.headers:
        found.setdefault(key.decode("latin-1"), []).append(value.decode("latin-1").strip())
    return found


def _document(data: bytes) -> Any:
    try:
        return strict_json.loads(data, _DECODER)
    except _DuplicateKey as duplicate:
        raise RequestRejected(ProblemResponse(400, DUPLICATE_KEY.format(key=duplicate))) from None
    except ValueError as error:
        raise RequestRejected(ProblemResponse(400, NOT_JSON.format(error=error))) from None


def build(config: ObjectBindingConfig, ctx: BuildContext) -> ObjectBindingPolicy | None:
    """None (absent from the chain) when no operation of the API declares a binding."""
    contract: Contract | None = ctx.contract
    bindings = [op.binding for op in contract.operations] if contract is not None else []
    if not any(bindings):
        return None
    return ObjectBindingPolicy(config, bindings)


SPEC = PolicySpec(
    name="object-binding",
    priority=PRIORITY["object-binding"],
    config_model=ObjectBindingConfig,
    build=build,
    description="Object-level authorization: request values bound to the credential's "
    "customer or account, from the contract's x-tiergate-bind.",
)
