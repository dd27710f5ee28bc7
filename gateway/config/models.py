"""Configuration models: every field documented, every rule declared here.

The models are pure: they read no files and open no sockets. The loader
(``loader.py``) reads YAML and the environment, then validates with these.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from gateway.config.admin import AdminTokenConfig, AdminTokenName
from gateway.config.base import StrictModel
from gateway.config.catalogue import CatalogueConfig
from gateway.config.limits import (
    LimitString,
    PlanConfig,
    PlanName,
    RateLimitingConfig,
    StorageUrl,
)
from gateway.config.observability import ObservabilityConfig
from gateway.config.targets import (
    DEFAULT_SET,
    SET_NAME,
    CanaryConfig,
    TargetSetConfig,
    WeightedTargets,
    check_canary,
)
from gateway.config.tls import ListenerTLSConfig, UpstreamTLSConfig
from gateway.config.websocket import WebSocketConfig

Tier = Literal["system", "process", "experience"]
TIER_ORDER: dict[str, int] = {"experience": 3, "process": 2, "system": 1}
RESERVED_PREFIXES = ("/oauth", "/.well-known", "/catalogue", "/healthz", "/readyz", "/admin")
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Request headers that rewrite the method or path in some frameworks: dropped unless an
# API's `upstream.pass_headers` lists them (gateway/proxy/headers.py holds the rule).
PASSABLE_HEADERS = frozenset({"x-http-method-override", "x-original-url", "x-rewrite-url"})
# Caps on an upstream response's head, as Envoy's defaults (100 fields, ~60 KiB).
MAX_RESPONSE_HEADERS = 100
MAX_RESPONSE_HEADER_BYTES = 65536
# A cross-field error names its field path itself: "@apis[1].base_path: message".
AT = "@"


# A customer account id, as the APIs' contracts write it (apis/_shared/values.py;
# tests/test_customer_ids.py keeps them equal): users, demo users and bindings use it.
CUSTOMER_ID_PATTERN = r"^cus_[0-9a-z]{4,32}$"


class ListenerConfig(StrictModel):
    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    # Edge limits, enforced by the listener's protocol (gateway/listener.py).
    max_header_bytes: int = Field(
        16384, ge=1024, le=1 << 20, description="Request line excluded; larger header → 431."
    )
    max_url_bytes: int = Field(
        8192, ge=256, le=1 << 20, description="Longest request target (path + query) → else 414."
    )
    header_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds a client gets to send a request's headers → 408."
    )
    body_timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds a client gets to send a request's whole body → 408 and close.",
    )
    keep_alive_timeout: int = Field(
        15, ge=1, le=3600, description="Seconds an idle keep-alive connection stays open."
    )
    max_concurrency: int | None = Field(
        None, ge=1, description="Requests in progress on this listener; more → 503. None: no cap."
    )
    retry_after: int = Field(
        1, ge=1, le=3600, description="Retry-After seconds sent with the saturation 503."
    )
    tls: ListenerTLSConfig | None = Field(
        None, description="Serve HTTPS (and verify client certificates); plain HTTP when absent."
    )


class ListenersConfig(StrictModel):
    public: ListenerConfig = Field(
        default_factory=lambda: ListenerConfig(port=8080),
        description="Where clients, partners and tier APIs reach the gateway.",
    )
    admin: ListenerConfig = Field(
        default_factory=lambda: ListenerConfig(port=8081),
        description="Admin API and /metrics; never exposed on the public listener.",
    )


class TimeoutsConfig(StrictModel):
    connect: float = Field(2.0, gt=0, le=300, description="Seconds to open a connection.")
    read: float = Field(
        30.0, gt=0, le=3600, description="Seconds to wait for response headers or the next chunk."
    )


class CircuitBreakerConfig(StrictModel):
    failures: int = Field(5, ge=1, le=1000, description="Consecutive failures that eject a target.")
    cooldown: float = Field(
        30.0, gt=0, le=3600, description="Seconds a target stays ejected before one trial request."
    )
    count_5xx: bool = Field(
        False,
        description="Count the upstream's own 5xx answers as failures. Off: a client whose "
        "requests make the upstream answer 5xx could otherwise eject it for everyone.",
    )


class ConnectionLimitsConfig(StrictModel):
    max_connections: int = Field(
        1024, ge=1, le=100_000, description="Requests in flight to one target at once."
    )
    max_pending: int = Field(
        1024,
        ge=0,
        le=100_000,
        description="Requests that may wait (up to timeouts.connect) for a free slot; "
        "more → 503 with Retry-After.",
    )
    retry_after: int = Field(1, ge=1, le=3600, description="Retry-After seconds on that 503.")


class HealthCheckConfig(StrictModel):
    path: str = Field("/healthz", pattern=r"^/", description="Path probed on each target.")
    interval: float = Field(10.0, gt=0, le=3600, description="Seconds between probes.")
    timeout: float = Field(2.0, gt=0, le=60, description="Seconds before a probe fails.")
    healthy_threshold: int = Field(2, ge=1, description="Successes that bring a target back.")
    unhealthy_threshold: int = Field(2, ge=1, description="Failures that take a target out.")


class UpstreamConfig(WeightedTargets):
    """`targets` (weighted, gateway/config/targets.py) and how they are reached."""

    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    retries: int = Field(
        1, ge=0, le=5, description="Extra attempts on another target, idempotent methods only."
    )
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    health_check: HealthCheckConfig | None = Field(
        None, description="Active health checks; off when absent (passive checks always run)."
    )
    connection_limits: ConnectionLimitsConfig = Field(default_factory=ConnectionLimitsConfig)
    max_response_headers: int = Field(
        MAX_RESPONSE_HEADERS,
        ge=1,
        le=10_000,
        description="Header fields in an upstream response; more → 502.",
    )
    max_response_header_bytes: int = Field(
        MAX_RESPONSE_HEADER_BYTES,
        ge=1024,
        le=1 << 24,
        description="Bytes of an upstream response's header fields; more → 502.",
    )
    pass_headers: list[str] = Field(
        default_factory=list,
        description="Request headers the gateway drops by default that this API's upstream "
        "may receive: any of " + ", ".join(sorted(PASSABLE_HEADERS)) + ".",
    )
    target_sets: dict[Annotated[str, Field(pattern=SET_NAME)], TargetSetConfig] = Field(
        default_factory=dict,
        description="Named sets of targets beside the default one; a canary rule picks one.",
    )
    canary: CanaryConfig | None = Field(
        None, description="Requests matching this rule go to one of `target_sets`."
    )
    tls: UpstreamTLSConfig | None = Field(
        None, description="Private CA, client certificate and server name for https targets."
    )

    @model_validator(mode="after")
    def _canary_set(self) -> UpstreamConfig:
        if DEFAULT_SET in self.target_sets:
            raise ValueError(f"@target_sets.{DEFAULT_SET}: the name is taken by `targets`")
        check_canary(self.canary, self.target_sets)
        return self

    @field_validator("pass_headers")
    @classmethod
    def _passable(cls, names: list[str]) -> list[str]:
        lower = [name.lower() for name in names]
        refused = [name for name in lower if name not in PASSABLE_HEADERS]
        if refused:
            raise ValueError(
                f"{refused} cannot be passed; only {sorted(PASSABLE_HEADERS)} can "
                "(the gateway's own headers never can)"
            )
        return lower


class ApiConfig(StrictModel):
    name: str = Field(pattern=NAME_PATTERN, description="Unique API name, e.g. `customers`.")
    tier: Tier = Field(description="system, process or experience.")
    version: str = Field("v1", pattern=r"^v\d+$", description="Major version in the path.")
    base_path: str | None = Field(
        None, description="Public path prefix; default `/<tier>/<name>/<version>`."
    )
    contract: str | None = Field(
        None,
        description="OpenAPI document, relative to the config file. It decides which operations "
        "exist (others get 404/405 from the gateway) and who may call them; an API without "
        "one is forwarded by path prefix, with no per-operation checks.",
    )
    owner: str = Field("platform", description="Team that owns the API.")
    description: str = Field("", description="One paragraph for the catalogue.")
    upstream: UpstreamConfig
    strip_base_path: bool = Field(
        True, description="Forward the path after the base path (the API serves `/...`)."
    )
    depends_on: list[str] = Field(
        default_factory=list, description="APIs this one calls; exactly one tier down."
    )
    visibility: Literal["public", "internal"] | None = Field(
        None,
        description="public APIs are reachable by external consumers; "
        "default public for experience APIs, internal otherwise.",
    )
    hosts: list[str] = Field(
        default_factory=list,
        description="Match only these Host names (port ignored; IPv6 as `::1` or `[::1]`).",
    )
    methods: list[str] = Field(default_factory=list, description="Match only these methods.")
    policies: dict[str, Any] = Field(
        default_factory=dict, description="Policy name → that policy's own config."
    )
    tags: list[str] = Field(default_factory=list, description="Catalogue tags.")
    lifecycle: Literal["draft", "published", "deprecated"] = Field(
        "published", description="draft APIs are hidden from the catalogue index."
    )
    deprecated_since: date | None = Field(
        None, description="When the API was deprecated (Deprecation header, RFC 9745)."
    )
    sunset: date | None = Field(
        None, description="When the API goes away (Sunset header, RFC 8594)."
    )
    websocket: WebSocketConfig | None = Field(
        None,
        description="Proxy WebSocket upgrades (`true` or limits, gateway/config/websocket.py).",
    )

    @field_validator("websocket", mode="before")
    @classmethod
    def _websocket_flag(cls, value: Any) -> Any:
        return {} if value is True else None if value is False else value

    _policy_configs: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _websocket_targets(self) -> ApiConfig:
        sets = [self.upstream, *self.upstream.target_sets.values()]
        if self.websocket is not None and any(
            target.startswith("asgi:") for spec in sets for target in spec.targets
        ):
            raise ValueError(
                "@websocket: WebSocket APIs need http(s) targets; in-process (asgi:) "
                "targets do not serve WebSockets"
            )
        return self

    @model_validator(mode="after")
    def _lifecycle_dates(self) -> ApiConfig:
        if self.lifecycle == "deprecated" and self.deprecated_since is None:
            raise ValueError("a deprecated API needs deprecated_since (a date, e.g. 2026-01-31)")
        if self.deprecated_since and self.sunset and self.sunset < self.deprecated_since:
            raise ValueError("sunset must not be earlier than deprecated_since")
        return self

    @field_validator("base_path")
    @classmethod
    def _valid_base_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value) or "/../" in value + "/":
            raise ValueError(f"{value!r} must look like /segment/segment (no trailing slash)")
        if value.startswith(RESERVED_PREFIXES):
            raise ValueError(f"{value!r} is reserved for the gateway's own endpoints")
        return value

    @field_validator("methods")
    @classmethod
    def _valid_methods(cls, methods: list[str]) -> list[str]:
        upper = [m.upper() for m in methods]
        unknown = sorted(set(upper) - HTTP_METHODS)
        if unknown:
            raise ValueError(f"unknown HTTP methods {unknown}; use {sorted(HTTP_METHODS)}")
        return upper

    @field_validator("hosts")
    @classmethod
    def _lower_hosts(cls, hosts: list[str]) -> list[str]:
        # Compared with the Host header's name part: lower case, IPv6 without brackets.
        return [h.lower().removeprefix("[").removesuffix("]") for h in hosts]

    @property
    def path(self) -> str:
        return self.base_path or f"/{self.tier}/{self.name}/{self.version}"

    @property
    def is_public(self) -> bool:
        if self.visibility is None:
            return self.tier == "experience"
        return self.visibility == "public"

    @property
    def policy_configs(self) -> Mapping[str, BaseModel]:
        """Validated policy configs by policy name, set once by `gateway.loading`."""
        return MappingProxyType(self._policy_configs)

    def use_policy_configs(self, configs: Mapping[str, BaseModel]) -> None:
        """Set the validated policy configs (the only writer of `_policy_configs`)."""
        self._policy_configs = dict(configs)


class OAuthConfig(StrictModel):
    """The built-in OAuth2 authorization server: client_credentials, authorization_code with
    PKCE, refresh_token with rotation and token exchange; JWT access tokens."""

    issuer: str = Field(
        "http://127.0.0.1:8080", description="`iss` of issued tokens: the public base URL."
    )
    audience: str = Field("tiergate", description="`aud` of issued tokens.")
    token_ttl: int = Field(600, ge=30, le=86400, description="Access-token lifetime, seconds.")
    signing_alg: Literal["RS256", "ES256"] = Field(
        "RS256", description="Algorithm of newly created signing keys."
    )
    key_activation_delay: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="Seconds a rotated-in key is published in the JWKS before it signs, "
        "so every node knows it first.",
    )
    refresh_interval: float = Field(
        2.0, gt=0, le=5, description="Seconds between refreshes of keys and revocations."
    )
    code_ttl: int = Field(
        60, ge=10, le=600, description="Authorization-code lifetime, seconds (single use)."
    )
    refresh_token_ttl: int = Field(
        14 * 86400,
        ge=60,
        le=365 * 86400,
        description="Lifetime of one refresh token, seconds; each use rotates it.",
    )
    sign_in_lifetime: int = Field(
        30 * 86400,
        ge=60,
        le=365 * 86400,
        description="How long one sign-in lasts through refresh rotation, seconds; then the "
        "user signs in again.",
    )
    sign_in_limit_per_ip: LimitString | None = Field(
        "30/minute",
        description="Sign-in attempts (POST /oauth/authorize) per client IP; null: off.",
    )
    sign_in_limit_per_user: LimitString | None = Field(
        "10/minute",
        description="Sign-in attempts per username, whatever the IP; null: off.",
    )
    demo_users: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")],
        Annotated[str, Field(pattern=CUSTOMER_ID_PATTERN)],
    ] = Field(
        default_factory=dict,
        description="The embedded demo's users (username: customer id) and its public client "
        "`demo-shop-app`: created at the first start with a generated password, printed "
        "once with how to sign in. Leave empty outside the demo.",
    )


class GatewayConfig(StrictModel):
    listeners: ListenersConfig = Field(default_factory=ListenersConfig)
    registry_url: str = Field(
        "sqlite:///var/registry.db", description="SQLAlchemy URL of the registry database."
    )
    limits_storage: StorageUrl = Field(
        "memory://", description="`limits` storage URL: memory:// or redis://host:port/db."
    )
    plans: dict[PlanName, PlanConfig] = Field(
        default_factory=dict, description="Rate-limit plans by name (see docs/rate-limits.md)."
    )
    rate_limiting: RateLimitingConfig = Field(
        default_factory=RateLimitingConfig,
        description="Storage timeout, fail behaviour and the /oauth/token per-IP limit.",
    )
    admin_token: str | None = Field(
        None, description="Bearer token for the admin API; unset disables the admin API."
    )
    admin_tokens: dict[AdminTokenName, AdminTokenConfig] = Field(
        default_factory=dict,
        description="Named admin tokens, read-only or read-write (docs/operations.md); "
        "admin_token, when set, is one more: read-write, named 'admin'.",
    )
    oauth: OAuthConfig = Field(
        default_factory=OAuthConfig, description="Built-in OAuth2 authorization server."
    )
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list,
        description="Peers whose X-Forwarded-For is believed (CIDR).",
    )
    access_log: bool = Field(True, description="One JSON line per request on stdout.")
    shutdown_grace: float = Field(
        20.0, ge=0, le=600, description="Seconds in-flight requests get to finish on shutdown."
    )
    workers: int = Field(
        1,
        ge=1,
        le=512,
        description="Gateway processes sharing the public port (`tiergate up --workers` "
        "overrides); worker i serves the admin listener on admin port + i "
        "(see docs/scaling.md).",
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="Policies applied to every API unless it overrides them."
    )
    apis: list[ApiConfig] = Field(default_factory=list)
    catalogue: CatalogueConfig = Field(default_factory=CatalogueConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    def api(self, name: str) -> ApiConfig:
        for api in self.apis:
            if api.name == name:
                return api
        raise KeyError(name)

    @model_validator(mode="after")
    def _cross_checks(self) -> GatewayConfig:
        names = [a.name for a in self.apis]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"API names must be unique; repeated: {dupes}")
        seen: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
        for index, api in enumerate(self.apis):
            key = (api.path, tuple(sorted(api.hosts)), tuple(sorted(api.methods)))
            if key in seen:
                raise ValueError(
                    f"{AT}apis[{index}].base_path: APIs {seen[key]!r} and {api.name!r} share "
                    f"base path {api.path!r}; give one a different base_path, hosts or methods"
                )
            seen[key] = api.name
        known = set(names)
        for index, api in enumerate(self.apis):
            for dep in api.depends_on:
                where = f"{AT}apis[{index}].depends_on: "
                if dep not in known:
                    raise ValueError(
                        f"{where}API {api.name!r} depends_on unknown API {dep!r}; "
                        f"known APIs: {', '.join(sorted(known))}"
                    )
                dep_tier = self.api(dep).tier
                if TIER_ORDER[dep_tier] != TIER_ORDER[api.tier] - 1:
                    raise ValueError(
                        f"{where}{api.tier} API {api.name!r} may not depend on {dep_tier} API "
                        f"{dep!r}: calls go one tier down (experience → process → system)"
                    )
        return self
