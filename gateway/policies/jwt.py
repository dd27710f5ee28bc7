"""`jwt`: OAuth2 bearer tokens (RFC 6750) as JWTs, from the built-in server or external issuers.

Config:

    policies:
      jwt:
        issuers:
          - builtin: true                       # tokens of the gateway's own /oauth/token
          - discovery_url: https://idp.example.com/.well-known/openid-configuration
            audience: tiergate
            algorithms: [RS256]
        scopes: [orders:read]                   # added to every operation's bearer scopes
        operation_scopes:
          createOrder: [orders:audit]           # operationId or "METHOD /template"

This policy verifies a bearer token when one is sent and records it in
`ctx.credentials["bearer"]`; whether the operation needed one, with which scopes, is
decided by the `authorize` policy from the contract (gateway/policies/authorize.py).
A token that is sent and fails is recorded in `ctx.auth_error`, and authorize answers
401 with the challenges of every scheme the operation accepts.

A verified token is cached until its `exp` (bounded LRU keyed by the token string);
revocation (`Services.revocations.is_revoked(jti)`) is checked on every request.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import jwt as pyjwt
from pydantic import Field, field_validator, model_validator

from gateway import strict_json
from gateway.config.base import StrictModel
from gateway.context import EndUser, Identity, RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.policies._jwks import (
    ASYMMETRIC_ALGORITHMS,
    JwksKeys,
    KeysUnavailable,
    VerificationKey,
    key_fits,
    secure_url,
    shared_keys,
)
from gateway.problem import ProblemResponse
from gateway.services import Services
from gateway.types import ASGIApp

if TYPE_CHECKING:
    from gateway.oauth.keys import KeyRing

OIDC_SUFFIX = "/.well-known/openid-configuration"
RFC8414_SUFFIX = "/.well-known/oauth-authorization-server"
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
MAX_TOKEN_LENGTH = 8192
_ALGORITHMS = {name: pyjwt.PyJWS().get_algorithm_by_name(name) for name in ASYMMETRIC_ALGORITHMS}
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token


def _check_scopes(scopes: list[str]) -> list[str]:
    bad = [s for s in scopes if not _SCOPE_TOKEN.fullmatch(s)]
    if bad:
        raise ValueError(f"{bad} are not scope tokens (printable ASCII, no spaces, quotes or \\)")
    return scopes


class IssuerConfig(StrictModel):
    """One trusted token issuer: the built-in server, or an external one by URL."""

    builtin: bool = Field(
        False, description="Trust the gateway's own authorization server (keys held in memory)."
    )
    discovery_url: str | None = Field(
        None, description="OIDC discovery document (or RFC 8414 metadata) giving `jwks_uri`."
    )
    jwks_uri: str | None = Field(None, description="The issuer's JWKS, when there is no discovery.")
    issuer: str | None = Field(
        None,
        description="Expected `iss`. Required with `jwks_uri`; derived from a discovery URL "
        "ending in /.well-known/openid-configuration; the built-in server's own otherwise.",
    )
    audience: list[str] | None = Field(
        None,
        description="Accepted `aud` values (one must match). Required for external issuers; "
        "the built-in server's audience (`tiergate`) by default.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        description="Accepted signing algorithms; asymmetric only (RS*, PS*, ES*, EdDSA).",
    )
    token_type: str | None = Field(
        None,
        description="Required `typ` header, e.g. `at+jwt` (RFC 9068); default `at+jwt` for the "
        "built-in server, not checked for external issuers.",
    )
    leeway: float = Field(30.0, ge=0, le=300, description="Seconds of clock skew allowed.")
    refresh_interval: float = Field(
        300.0, ge=10, le=86400, description="Seconds before cached JWKS keys are refreshed."
    )
    refetch_cooldown: float = Field(
        30.0,
        ge=0.1,
        le=3600,
        description="An unknown kid fetches the JWKS at once unless another unknown kid did "
        "within this many seconds; also the pause between routine fetches and retries.",
    )

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(
                f"algorithms {bad} are not allowed; use asymmetric ones "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}). HMAC (HS*) with published keys "
                "allows key-confusion forgeries, and 'none' is never accepted"
            )
        if not algorithms:
            raise ValueError("list at least one algorithm")
        return algorithms

    @field_validator("discovery_url", "jwks_uri")
    @classmethod
    def _https(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if secure_url(url):
            return url
        raise ValueError(f"{url!r} must be an https:// URL (plain http only on loopback)")

    @model_validator(mode="after")
    def _one_source(self) -> IssuerConfig:
        sources = [self.builtin, self.discovery_url is not None, self.jwks_uri is not None]
        if sum(sources) != 1:
            raise ValueError("set exactly one of builtin: true, discovery_url or jwks_uri")
        if self.builtin:
            return self
        if self.issuer is None:
            if self.jwks_uri is not None:
                raise ValueError("jwks_uri needs `issuer` (the expected `iss` claim)")
            assert self.discovery_url is not None
            if not self.discovery_url.endswith((OIDC_SUFFIX, RFC8414_SUFFIX)):
                raise ValueError(
                    "set `issuer`: it cannot be derived from a discovery_url that does not end "
                    f"in {OIDC_SUFFIX}"
                )
        if not self.audience:
            raise ValueError("external issuers need `audience` (the `aud` this gateway accepts)")
        return self

    @property
    def expected_issuer(self) -> str | None:
        if self.issuer is not None or self.discovery_url is None:
            return self.issuer
        for suffix in (OIDC_SUFFIX, RFC8414_SUFFIX):
            if self.discovery_url.endswith(suffix):
                return self.discovery_url[: -len(suffix)]
        return None


class JwtConfig(StrictModel):
    issuers: list[IssuerConfig] = Field(
        default_factory=lambda: [IssuerConfig.model_validate({"builtin": True})],
        min_length=1,
        description="Trusted issuers; default: the built-in authorization server only.",
    )
    scopes: list[str] = Field(
        default_factory=list,
        description="Scopes a token needs for every operation, on top of the contract's.",
    )
    operation_scopes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Extra scopes per operation, on top of the contract's: the operationId or "
        '`"METHOD /template"` (checked against the contract at load) → scopes. Config can '
        "only narrow what the contract says.",
    )
    optional: bool = Field(
        False,
        description="Only where the contract declares no security for an operation (or the API "
        "has no contract): let requests without a token through (to api-key, if configured, or "
        "unauthenticated). A token that is sent must still be valid.",
    )
    hide_credentials: bool = Field(
        True, description="Remove the Authorization header before forwarding upstream."
    )
    cache_size: int = Field(
        10_000, ge=0, le=1_000_000, description="Verified tokens kept (LRU); 0 disables."
    )

    @field_validator("scopes")
    @classmethod
    def _valid_scopes(cls, scopes: list[str]) -> list[str]:
        return _check_scopes(scopes)

    @field_validator("operation_scopes")
    @classmethod
    def _valid_operations(cls, operations: dict[str, list[str]]) -> dict[str, list[str]]:
        for scopes in operations.values():
            _check_scopes(scopes)
        return operations

    def operation_references(self) -> list[tuple[str, str]]:
        """(field, operation name) pairs, checked against the contract at load."""
        return [(f"operation_scopes.{key}", key) for key in self.operation_scopes]

    @model_validator(mode="after")
    def _distinct_issuers(self) -> JwtConfig:
        if sum(i.builtin for i in self.issuers) > 1:
            raise ValueError("list the built-in issuer once")
        named = [i.expected_issuer for i in self.issuers if not i.builtin]
        if len(set(named)) != len(named):
            raise ValueError("each external issuer may be listed once")
        return self


# -- error texts (also sent as error_description: ASCII, no quotes or backslashes) ----------

REALM = 'Bearer realm="tiergate"'
MANY_AUTHORIZATION = "Send exactly one Authorization header."
MALFORMED = "The access token is not a well-formed JWT."
BAD_ALGORITHM = "The access token is signed with an algorithm this API does not accept."
UNTRUSTED_ISSUER = "The access token comes from an issuer this API does not trust."
WRONG_TYPE = "The access token has the wrong type (typ header)."
UNKNOWN_KEY = "The access token is signed with a key its issuer does not publish."
BAD_SIGNATURE = "The access token signature is invalid."
EXPIRED = "The access token has expired."
NOT_YET_VALID = "The access token is not valid yet."
WRONG_AUDIENCE = "The access token is not meant for this gateway (audience mismatch)."
MISSING_CLAIM = "The access token lacks a required claim: {claim}."
BAD_CLAIMS = "The access token claims are invalid."
REVOKED = "The access token has been revoked."
KEYS_UNAVAILABLE = "The token issuer keys cannot be fetched right now; try again shortly."

_REQUIRED_CLAIMS = ("exp", "iss", "sub", "aud")
_SERVICE_TIERS = frozenset({"system", "process", "experience"})


class TokenRejected(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def invalid_request(description: str) -> ProblemResponse:
    """400 per RFC 6750 §3.1 for a request that is malformed, not merely unauthenticated."""
    challenge = f'{REALM}, error="invalid_request", error_description="{description}"'
    return ProblemResponse(400, description, headers=[("www-authenticate", challenge)])


# -- behaviour ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Issuer:
    """What verifying a token from one issuer needs, decided at start-up."""

    name: str
    audience: tuple[str, ...]
    algorithms: tuple[str, ...]
    token_type: str | None
    leeway: float
    builtin: KeyRing | None  # the built-in server's key ring (Services.issuer), else None
    jwks: JwksKeys | None

    def publishes(self, kid: str | None) -> bool:
        """Is the key still published (cheap: checked on every verified-token cache hit)?"""
        keys: Collection[str | None]
        if self.jwks is not None:
            keys = self.jwks.keys
        elif self.builtin is not None:
            keys = self.builtin.public_keys()
        else:
            return False
        return kid in keys or (kid is None and len(keys) == 1)

    async def key_for(self, kid: str | None) -> VerificationKey | None:
        if self.jwks is not None:
            return await self.jwks.key_for(kid)
        if self.builtin is None:
            return None
        keys = self.builtin.public_keys()
        if kid is None and len(keys) == 1:
            kid = next(iter(keys))
        key = keys.get(kid) if kid is not None else None
        if key is None:
            return None
        algorithm = getattr(self.builtin, "algorithm", None)  # the key's own alg, if told
        return VerificationKey(getattr(key, "key", key), algorithm(kid) if algorithm else None)


@dataclass(frozen=True, slots=True)
class _Verified:
    identity: Identity
    exp: float
    jti: str | None
    issuer: _Issuer
    kid: str | None


class JwtPolicy:
    def __init__(self, config: JwtConfig, build: BuildContext) -> None:
        self.issuers: dict[str, _Issuer] = {}
        for issuer_config in config.issuers:
            issuer = _make_issuer(issuer_config, build.services)
            if issuer.name in self.issuers:
                raise RuntimeError(
                    f"API {build.api.name!r}: the jwt policy lists issuer {issuer.name!r} twice "
                    "(an external issuer has the built-in server's name)"
                )
            self.issuers[issuer.name] = issuer
        self.single = next(iter(self.issuers.values())) if len(self.issuers) == 1 else None
        self.revocations = build.services.revocations
        self.hide = config.hide_credentials
        self.cache_size = config.cache_size
        self.cache: OrderedDict[str, _Verified] = OrderedDict()

    async def __call__(self, ctx: RequestContext) -> ASGIApp | None:
        token: str | None = None
        count = 0
        sent = None  # the Authorization header (when there is one)
        for header in ctx.headers:
            if header[0] == b"authorization":
                count += 1
                sent = header
                scheme, _, credentials = header[1].decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    token = credentials.strip()
        if count > 1:
            return invalid_request(MANY_AUTHORIZATION)
        if token is None:
            return None  # authorize decides whether the operation needed one
        if not token:
            ctx.auth_error = ("bearer", MALFORMED)
            return None
        verified = self.cache.get(token)
        if (
            verified is not None
            and verified.exp > time.time()
            and verified.issuer.publishes(verified.kid)  # a withdrawn key ends its tokens
        ):
            self.cache.move_to_end(token)
        else:
            try:
                verified = await self._verify(token)
            except TokenRejected as rejected:
                ctx.auth_error = ("bearer", rejected.description)
                return None
            except KeysUnavailable:
                return ProblemResponse(503, KEYS_UNAVAILABLE, headers=[("retry-after", "5")])
            self._remember(token, verified)
        if (
            verified.jti is not None
            and self.revocations is not None
            and self.revocations.is_revoked(verified.jti)
        ):
            self.cache.pop(token, None)
            ctx.auth_error = ("bearer", REVOKED)
            return None
        if ctx.credentials is None:
            ctx.credentials = {"bearer": verified.identity}
        else:
            ctx.credentials["bearer"] = verified.identity
        if self.hide and sent is not None:  # the one Authorization header (count == 1)
            headers = list(ctx.headers)
            headers.remove(sent)
            ctx.headers = headers
        return None

    def _remember(self, token: str, verified: _Verified) -> None:
        if self.cache_size:
            self.cache[token] = verified
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)

    async def _verify(self, token: str) -> _Verified:
        token_parts = _parse(token)
        header, claims = token_parts.header, token_parts.claims
        issuer = self.single
        if issuer is None:
            iss = claims.get("iss")
            issuer = self.issuers.get(iss) if isinstance(iss, str) else None
            if issuer is None:
                raise TokenRejected(UNTRUSTED_ISSUER)
        alg = header.get("alg")
        if alg not in issuer.algorithms:
            raise TokenRejected(BAD_ALGORITHM)
        if issuer.token_type is not None and not _type_matches(header.get("typ"), issuer):
            raise TokenRejected(WRONG_TYPE)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected(MALFORMED)
        key = await issuer.key_for(kid)
        if key is None or not key_fits(key, alg):
            raise TokenRejected(UNKNOWN_KEY)
        algorithm = _ALGORITHMS[alg]
        if algorithm.check_key_length(key.key):
            raise TokenRejected(UNKNOWN_KEY)  # e.g. RSA under 2048 bits
        if not algorithm.verify(token_parts.signing_input, key.key, token_parts.signature):
            raise TokenRejected(BAD_SIGNATURE)
        _check_claims(claims, issuer)
        identity = _identity(claims, issuer, token)
        return _Verified(identity, float(claims["exp"]), _jti(claims), issuer, kid)


def _make_issuer(config: IssuerConfig, services: Services) -> _Issuer:
    if config.builtin:
        server = services.issuer
        if server is None:
            raise RuntimeError(
                "the jwt policy trusts the built-in issuer, but no authorization server is "
                "running (Services.issuer is None)"
            )
        return _Issuer(
            name=server.issuer,
            audience=tuple(config.audience or [server.audience]),
            algorithms=tuple(config.algorithms),
            token_type=config.token_type or "at+jwt",
            leeway=config.leeway,
            builtin=server,
            jwks=None,
        )
    name = config.expected_issuer
    assert name is not None
    keys = JwksKeys(
        jwks_uri=config.jwks_uri,
        discovery_url=config.discovery_url,
        issuer=name,
        refresh_interval=config.refresh_interval,
        cooldown=config.refetch_cooldown,
    )
    return _Issuer(
        name=name,
        audience=tuple(config.audience or ()),
        algorithms=tuple(config.algorithms),
        token_type=config.token_type,
        leeway=config.leeway,
        builtin=None,
        jwks=shared_keys(services.jwks, keys),
    )


@dataclass(frozen=True, slots=True)
class _Token:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _parse(token: str) -> _Token:
    """Split and decode a compact JWS (no verification yet), as strictly as pyjwt does.

    Done here rather than with pyjwt's decoder: its canonical-base64 check re-encodes every
    segment and costs more than the RSA verification itself (docs/policies-auth.md has the
    figures); here it is one look at each segment's last character. JSON is RFC 8259 only
    (no NaN or Infinity, which Python's reader would take) and UTF-8 only (RFC 7515 §2).
    """
    if len(token) > MAX_TOKEN_LENGTH or not _COMPACT_JWS.fullmatch(token):
        raise TokenRejected(MALFORMED)
    head, payload, signature = token.split(".")
    try:
        header = strict_json.loads(_b64decode(head).decode("utf-8"))
        claims = strict_json.loads(_b64decode(payload).decode("utf-8"))
        raw_signature = _b64decode(signature)
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise TokenRejected(MALFORMED) from None
    if not isinstance(header, dict) or not isinstance(claims, dict) or "crit" in header:
        raise TokenRejected(MALFORMED)  # no critical extension is understood here (RFC 7515)
    return _Token(header, claims, f"{head}.{payload}".encode(), raw_signature)


# A last character that leaves no unused bit set, by how many characters the final
# quantum has (RFC 4648 §3.5: encoders set those bits to zero; pyjwt refuses the rest).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def _b64decode(segment: str) -> bytes:
    """base64url without padding, canonical only: one token has one spelling."""
    remainder = len(segment) % 4
    if remainder == 1:
        raise ValueError("impossible base64url length")
    if remainder and segment[-1] not in _CANONICAL_LAST[remainder]:
        raise ValueError("non-canonical base64url (unused bits set)")
    return base64.urlsafe_b64decode(segment + "=" * (4 - remainder if remainder else 0))


def _number(claims: dict[str, Any], name: str) -> float | None:
    """A NumericDate (RFC 7519 §2) as a finite float; anything else refuses the token."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(BAD_CLAIMS)
    try:
        number = float(value)  # an int beyond a double (10**400) raises OverflowError
    except OverflowError:
        raise TokenRejected(BAD_CLAIMS) from None
    if not math.isfinite(number):  # 1e400 parses as inf
        raise TokenRejected(BAD_CLAIMS)
    return number


def _check_claims(claims: dict[str, Any], issuer: _Issuer) -> None:
    """RFC 7519 §4.1 checks on a token whose signature is valid (RFC 9068 §4 for ours)."""
    for name in _REQUIRED_CLAIMS:
        if name not in claims:
            raise TokenRejected(MISSING_CLAIM.format(claim=name))
    now = time.time()
    exp = _number(claims, "exp")
    assert exp is not None
    if exp <= now - issuer.leeway:
        raise TokenRejected(EXPIRED)
    nbf, iat = _number(claims, "nbf"), _number(claims, "iat")
    if (nbf is not None and nbf > now + issuer.leeway) or (
        iat is not None and iat > now + issuer.leeway
    ):
        raise TokenRejected(NOT_YET_VALID)
    if claims["iss"] != issuer.name:
        raise TokenRejected(UNTRUSTED_ISSUER)
    audience = claims["aud"]
    if isinstance(audience, str):
        audience = [audience]
    if not isinstance(audience, list) or not any(
        isinstance(a, str) and a in issuer.audience for a in audience
    ):
        raise TokenRejected(WRONG_AUDIENCE)


def _type_matches(typ: object, issuer: _Issuer) -> bool:
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    expected = (issuer.token_type or "").lower()
    return typ == expected or typ == "application/" + expected


def _identity(claims: dict[str, Any], issuer: _Issuer, token: str = "") -> Identity:
    subject = claims["sub"]
    client_id = claims.get("client_id") or claims.get("azp")
    if not isinstance(subject, str) or not subject or not isinstance(client_id, str | None):
        raise TokenRejected(BAD_CLAIMS)
    scopes = _scopes(claims)
    if issuer.builtin is None:
        # Only the gateway's own server may speak for tiers and plans: `tg_*` claims of an
        # external issuer are ignored, so no outside IdP can mint a service identity.
        kind = "client" if client_id is not None and client_id == subject else "user"
        return Identity(
            kind,
            subject,
            client_id,
            scopes,
            credential_id=_jti(claims),
            claims=MappingProxyType(claims),
        )
    if _jti(claims) is None:  # RFC 9068 §2.2; without it a token could not be revoked
        raise TokenRejected(MISSING_CLAIM.format(claim="jti"))
    kind = claims.get("tg_kind", "client")
    if kind not in ("client", "service"):
        raise TokenRejected(BAD_CLAIMS)
    tier = claims.get("tg_tier") if kind == "service" else None
    api = claims.get("tg_api") if kind == "service" else None
    if kind == "service" and (tier not in _SERVICE_TIERS or not isinstance(api, str) or not api):
        raise TokenRejected(MISSING_CLAIM.format(claim="tg_api/tg_tier"))
    plan = claims.get("tg_plan")
    return Identity(
        kind=kind,
        consumer_id=subject,
        client_id=client_id,
        scopes=scopes,
        plan=plan if isinstance(plan, str) else None,
        tier=tier,
        api=api,
        credential_id=_jti(claims),
        claims=MappingProxyType(claims),  # read-only: the identity is cached until `exp`
        end_user=_end_user(claims, token),
    )


def _end_user(claims: dict[str, Any], token: str) -> EndUser | None:
    """A built-in token with `customer_id` speaks for a signed-in user; `act` (RFC 8693
    §4.1) names who acts for them, nested outward from the nearest actor."""
    customer = claims.get("customer_id")
    if not isinstance(customer, str) or not customer:
        return None
    actors: list[str] = []
    act = claims.get("act")
    while isinstance(act, dict) and isinstance(act.get("sub"), str) and len(actors) < 8:
        actors.append(act["sub"])
        act = act.get("act")
    return EndUser(claims["sub"], customer, tuple(actors), token)


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")  # some IdPs send a list
    if isinstance(scp, list) and all(isinstance(s, str) for s in scp):
        return frozenset(scp)
    return frozenset()


def _jti(claims: dict[str, Any]) -> str | None:
    jti = claims.get("jti")
    return jti if isinstance(jti, str) else None


def build(config: JwtConfig, ctx: BuildContext) -> JwtPolicy:
    return JwtPolicy(config, ctx)


SPEC = PolicySpec(
    name="jwt",
    priority=PRIORITY["jwt"],
    config_model=JwtConfig,
    build=build,
    description="OAuth2 bearer JWTs from the built-in server or external OIDC issuers.",
    needs=("issuer", "revocations", "jwks"),
)
