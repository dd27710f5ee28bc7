"""`mtls`: the client certificate verified by the listener's TLS, mapped to a consumer.

Config:

    listeners:
      public:
        tls: {cert: ..., key: ..., client_ca: clients-ca.pem, client_cert: optional}
    apis:
      - name: partner
        policies:
          mtls:
            identities:                      # by subject or SAN, fixed in config
              - subject: "CN=billing,O=Acme"   # RFC 4514 (openssl -nameopt RFC2253)
                consumer: acme
                plan: gold
                scopes: [orders:read]
              - san: "dns:erp.acme.example"  # or email:, uri:, ip:
                consumer: acme-erp
            registered: true                 # certificates registered with
                                             # `tiergate keys create --cert FILE`

The listener verifies the chain against `client_ca` during the handshake, so any
certificate this policy sees is one the CA vouches for. This policy only verifies
what was sent, like `api-key`: it records the consumer in
`ctx.credentials["mutualTLS"]`; the `authorize` policy decides from the contract's
security alternatives (an OpenAPI `mutualTLS` scheme) whether the operation accepts
it, alone or beside a token or a key. A certificate that maps to no consumer is a
failed credential (401 where the operation needs mTLS). Registered certificates are
API-key records found by the certificate's SHA-256 fingerprint, with the key's
grants, expiry, revocation and cache (revocation reaches every node within 5 s).

The certificate is parsed once per connection: the result is kept in the
connection's TLS extension (`scope["extensions"]["tls"]`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gateway.config.base import StrictModel
from gateway.context import Identity, RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.policies.api_key import ApiKeyConfig, ApiKeyPolicy, _failure
from gateway.problem import ProblemResponse
from gateway.registry.credentials import certificate_credential, hash_credential
from gateway.types import ASGIApp

KIND = "mutualTLS"
SAN_KINDS = ("dns", "email", "uri", "ip")
_PARSED = "tiergate.mtls"  # key in the connection's TLS extension

NO_TLS = (
    "the mtls policy needs client certificates on the public listener: set "
    "listeners.public.tls.client_ca (and client_cert: optional or required)"
)
NO_SOURCE = "map certificates to consumers: list `identities`, or set `registered: true`"
BAD_SAN = "write a SAN as dns:NAME, email:ADDRESS, uri:URI or ip:ADDRESS"
UNMAPPED = "The client certificate ({subject}) is not registered with this gateway."
WRONG_API = "The client certificate ({subject}) is not valid for API '{api}'."
STORE_DOWN = "Client certificates cannot be checked right now; try again shortly."


class CertificateIdentity(StrictModel):
    subject: str | None = Field(
        None, description="Exact subject, RFC 4514 (e.g. `CN=billing,O=Acme`)."
    )
    san: str | None = Field(
        None, description="A subjectAltName: `dns:`, `email:`, `uri:` or `ip:` and the value."
    )
    consumer: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Consumer id.")
    plan: str | None = Field(None, description="Rate-limit plan of the consumer.")
    scopes: list[str] = Field(default_factory=list, description="Scopes the certificate holds.")

    @field_validator("san")
    @classmethod
    def _san(cls, value: str | None) -> str | None:
        if value is None:
            return None
        kind, sep, rest = value.partition(":")
        if not sep or kind.lower() not in SAN_KINDS or not rest:
            raise ValueError(BAD_SAN)
        kind = kind.lower()
        if kind == "ip":
            try:
                rest = str(ipaddress.ip_address(rest))
            except ValueError:
                raise ValueError(BAD_SAN) from None
        elif kind == "dns":
            rest = rest.lower()
        return f"{kind}:{rest}"

    @model_validator(mode="after")
    def _one_match(self) -> CertificateIdentity:
        if (self.subject is None) == (self.san is None):
            raise ValueError("give exactly one of subject or san")
        return self


class MtlsConfig(StrictModel):
    identities: list[CertificateIdentity] = Field(
        default_factory=list, description="Certificates mapped to consumers by subject or SAN."
    )
    registered: bool = Field(
        False, description="Also accept certificates registered with `keys create --cert`."
    )
    cache_ttl: float = Field(
        5.0,
        gt=0,
        le=5,
        description="Seconds a registered certificate is trusted; revocation delay.",
    )

    @model_validator(mode="after")
    def _usable(self, info: ValidationInfo) -> MtlsConfig:
        if not self.identities and not self.registered:
            raise ValueError(NO_SOURCE)
        gateway = (info.context or {}).get("config")
        tls = gateway.listeners.public.tls if gateway is not None else None
        if gateway is not None and (tls is None or tls.client_ca is None):
            raise ValueError(NO_TLS)
        return self


@dataclass(frozen=True, slots=True)
class Certificate:
    """What the policy needs of a verified client certificate."""

    fingerprint: str  # SHA-256 of the DER, hex
    subject: str  # RFC 4514
    sans: frozenset[str]  # "dns:a.example", "email:...", "uri:...", "ip:..."


def parse_certificate(der: bytes) -> Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    certificate = x509.load_der_x509_certificate(der)
    sans: set[str] = set()
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    if names is not None:
        sans |= {f"dns:{n.lower()}" for n in names.get_values_for_type(x509.DNSName)}
        sans |= {f"email:{n}" for n in names.get_values_for_type(x509.RFC822Name)}
        sans |= {f"uri:{n}" for n in names.get_values_for_type(x509.UniformResourceIdentifier)}
        sans |= {f"ip:{n}" for n in names.get_values_for_type(x509.IPAddress)}
    return Certificate(
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        subject=certificate.subject.rfc4514_string(),
        sans=frozenset(sans),
    )


def client_certificate(ctx: RequestContext) -> Certificate | None:
    """The verified client certificate of the request's connection, parsed once."""
    extensions = ctx.scope.get("extensions")
    tls: dict[str, Any] | None = extensions.get("tls") if extensions else None
    if not tls or not tls.get("client_cert_der"):
        return None
    parsed = tls.get(_PARSED)
    if parsed is None:
        parsed = tls[_PARSED] = parse_certificate(tls["client_cert_der"])
    return parsed


class MtlsPolicy:
    def __init__(self, config: MtlsConfig, build: BuildContext) -> None:
        self.api = build.api.name
        self.by_subject: dict[str, Identity] = {}
        self.by_san: dict[str, Identity] = {}
        for rule in config.identities:
            identity = Identity(
                kind="partner",
                consumer_id=rule.consumer,
                plan=rule.plan,
                scopes=frozenset(rule.scopes),
                credential_id=f"x509:{rule.subject or rule.san}",
            )
            if rule.subject is not None:
                self.by_subject[rule.subject] = identity
            else:
                assert rule.san is not None
                self.by_san[rule.san] = identity
        # Registered certificates are API-key records: the same lookup, cache and rules.
        self.keys = (
            ApiKeyPolicy(ApiKeyConfig(cache_ttl=config.cache_ttl), build)
            if config.registered
            else None
        )

    async def __call__(self, ctx: RequestContext) -> ASGIApp | None:
        certificate = client_certificate(ctx)
        if certificate is None:
            return None  # authorize decides whether the operation needed one
        ctx.log["client_cert"] = certificate.fingerprint[:16]
        identity = self.by_subject.get(certificate.subject)
        if identity is None and self.by_san:
            identity = next((self.by_san[s] for s in certificate.sans if s in self.by_san), None)
        if identity is None and self.keys is not None:
            digest = hash_credential(certificate_credential(certificate.fingerprint))
            try:
                found = await self.keys._lookup(digest)
            except Exception:
                return ProblemResponse(503, STORE_DOWN, headers=[("retry-after", "5")])
            failure = _failure(found, found.prefix) if found is not None else None
            if failure is not None:
                ctx.auth_error = (KIND, failure)
                return None
            if found is not None:
                if self.api not in found.apis:
                    detail = WRONG_API.format(subject=certificate.subject, api=self.api)
                    return ProblemResponse(403, detail)
                identity = found.identity
                if self.keys.usage_interval:
                    self.keys._record_use(found)
        if identity is None:
            ctx.auth_error = (KIND, UNMAPPED.format(subject=certificate.subject))
            return None
        if ctx.credentials is None:
            ctx.credentials = {KIND: identity}
        else:
            ctx.credentials[KIND] = identity
        return None


def build(config: MtlsConfig, ctx: BuildContext) -> MtlsPolicy:
    return MtlsPolicy(config, ctx)


SPEC = PolicySpec(
    name="mtls",
    priority=PRIORITY["mtls"],
    config_model=MtlsConfig,
    build=build,
    description="Client certificates verified by the listener, mapped to consumers.",
    needs=("registry",),  # registered certificates are looked up as API-key records
)
