"""Policy `cors`: cross-origin rules per API, preflights answered at the gateway.

- A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered
  here with 204 and never forwarded; a refused preflight gets 204 without any
  Access-Control-Allow-* header, so the browser blocks the call.
- On other requests the upstream's own Access-Control-* headers are replaced by ours.
- `Vary: Origin` is always sent, so caches never serve one origin's answer to another.
- The Origin is echoed only when it is listed; with `allow_credentials` it is never
  `*`, and the config refuses `*` together with credentials.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from gateway.config.base import StrictModel
from gateway.config.models import HTTP_METHODS
from gateway.context import RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.types import RawHeaders, Receive, Scope, Send

WILDCARD_WITH_CREDENTIALS = (
    "allow_origins '*' cannot be combined with allow_credentials: true (browsers refuse it, "
    "and echoing any Origin with credentials lets every site act as the user); "
    "list the origins explicitly"
)
BAD_ORIGIN = "{origin!r} is not an origin; write scheme://host[:port] without a path, or '*'"
UNKNOWN_METHOD = "unknown HTTP method {method!r}; use {known}"


class CorsConfig(StrictModel):
    allow_origins: list[str] = Field(
        min_length=1, description="Origins allowed to call, e.g. https://shop.example; or ['*']."
    )
    allow_methods: list[str] = Field(
        default_factory=lambda: ["GET", "HEAD", "POST"], description="Methods a preflight allows."
    )
    allow_headers: list[str] = Field(
        default_factory=lambda: ["authorization", "content-type", "x-api-key", "x-request-id"],
        description="Request headers a preflight allows (case-insensitive).",
    )
    expose_headers: list[str] = Field(
        default_factory=lambda: ["x-request-id"],
        description="Response headers scripts may read.",
    )
    allow_credentials: bool = Field(False, description="Allow cookies/Authorization from scripts.")
    max_age: int = Field(600, ge=0, le=86400, description="Seconds a browser caches a preflight.")

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            scheme, _, rest = origin.partition("://")
            if origin != "*" and (scheme not in ("http", "https") or not rest or "/" in rest):
                raise ValueError(BAD_ORIGIN.format(origin=origin))
        return [o.lower() for o in origins]

    @field_validator("allow_methods")
    @classmethod
    def _methods(cls, methods: list[str]) -> list[str]:
        for method in methods:
            if method.upper() not in HTTP_METHODS:
                raise ValueError(UNKNOWN_METHOD.format(method=method, known=sorted(HTTP_METHODS)))
        return [m.upper() for m in methods]

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> CorsConfig:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError(WILDCARD_WITH_CREDENTIALS)
        return self


class CorsPolicy:
    def __init__(self, config: CorsConfig) -> None:
        self.any_origin = "*" in config.allow_origins
        self.origins = frozenset(config.allow_origins)
        self.methods = frozenset(config.allow_methods)
        self.headers = frozenset(h.lower() for h in config.allow_headers)
        self.credentials = config.allow_credentials
        common: RawHeaders = []
        if config.allow_credentials:
            common.append((b"access-control-allow-credentials", b"true"))
        self.preflight_headers: RawHeaders = [
            *common,
            (b"access-control-allow-methods", ", ".join(config.allow_methods).encode()),
            (b"access-control-allow-headers", ", ".join(config.allow_headers).encode()),
            (b"access-control-max-age", str(config.max_age).encode()),
        ]
        self.simple_headers: RawHeaders = [*common]
        if config.expose_headers:
            exposed = ", ".join(config.expose_headers).encode()
            self.simple_headers.append((b"access-control-expose-headers", exposed))

    def _allow_origin(self, origin: bytes) -> bytes | None:
        if origin.decode("latin-1").lower() in self.origins:
            return origin
        if self.any_origin:
            return b"*"  # never with credentials: the config refuses that
        return None

    async def __call__(self, ctx: RequestContext) -> _Preflight | None:
        origin = ctx.header(b"origin")
        ctx.response_headers.append(_VARY)
        if origin is None:
            return None
        ctx.response_hooks.append(_drop_upstream_cors)
        allowed = self._allow_origin(origin)
        requested = ctx.header(b"access-control-request-method")
        if ctx.method == "OPTIONS" and requested is not None:
            headers: RawHeaders = [_VARY_PREFLIGHT]
            if allowed is not None and self._preflight_ok(ctx, requested):
                headers += [(b"access-control-allow-origin", allowed), *self.preflight_headers]
            ctx.log["cors_preflight"] = allowed is not None
            return _Preflight(headers)
        if allowed is not None:
            ctx.response_headers.append((b"access-control-allow-origin", allowed))
            ctx.response_headers.extend(self.simple_headers)
        return None

    def _preflight_ok(self, ctx: RequestContext, method: bytes) -> bool:
        if method.decode("latin-1").upper() not in self.methods:
            return False
        asked = ctx.header(b"access-control-request-headers")
        if not asked:
            return True
        names = {n.strip().lower() for n in asked.decode("latin-1").split(",") if n.strip()}
        return names <= self.headers


_VARY = (b"vary", b"Origin")
_VARY_PREFLIGHT = (b"vary", b"Access-Control-Request-Method, Access-Control-Request-Headers")


def _drop_upstream_cors(ctx: RequestContext, status: int, headers: RawHeaders) -> None:
    """The gateway owns CORS for this API: an upstream's own answer is removed."""
    ours = len(ctx.response_headers)
    keep = [
        (k, v) for k, v in headers[: len(headers) - ours] if not k.startswith(b"access-control-")
    ]
    headers[: len(headers) - ours] = keep


class _Preflight:
    """204 with the CORS headers (the gateway adds Vary: Origin and X-Request-ID)."""

    status = 204

    def __init__(self, headers: RawHeaders) -> None:
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": self.headers})
        await send({"type": "http.response.body", "body": b""})


def build(config: CorsConfig, ctx: BuildContext) -> CorsPolicy:
    return CorsPolicy(config)


SPEC = PolicySpec(
    name="cors",
    priority=PRIORITY["cors"],
    config_model=CorsConfig,
    build=build,
    description="Cross-origin rules; preflights answered at the gateway.",
)
