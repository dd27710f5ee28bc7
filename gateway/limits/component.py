"""The `limits` component: owns the limiter's storage for the gateway's lifetime
(handed over as Services.limiter), guards the OAuth endpoints that authenticate clients
(/oauth/token, /oauth/introspect, /oauth/revoke) per client IP and serves
GET /admin/usage/{consumer} on the admin listener."""

from __future__ import annotations

from limits import parse
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from gateway.admin.auth import require_admin
from gateway.components import Component
from gateway.config.models import GatewayConfig
from gateway.limits.engine import Limiter, Rule, StorageUnavailable
from gateway.limits.headers import policy_name, rate_limit_headers
from gateway.problem import Answer, ProblemResponse
from gateway.types import Scope, ShellGuard

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
INTROSPECTION_PATHS = ("/oauth/introspect", "/oauth/revoke")
TOKEN_LIMITED = "Too many token requests from this address; retry in {retry} s."  # noqa: S105
INTROSPECTION_LIMITED = (
    "Too many introspection or revocation requests from this address; retry in {retry} s."
)
STORAGE_DOWN = "Rate limits cannot be checked right now; retry in {retry} s."
USAGE_UNAVAILABLE = "Usage cannot be read: the rate-limit storage is unavailable ({reason})."
UNKNOWN_PLAN = "Plan {plan!r} is not defined; defined plans: {known}."


class LimitsComponent(Component):
    name = "limits"

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.limiter = Limiter(config.limits_storage, config.rate_limiting)
        self.running = False
        settings = self.config.rate_limiting
        # path → (rules, refusal text); introspect and revoke share one counter.
        self.guarded: dict[str, tuple[tuple[Rule, ...], str]] = {}
        if settings.token_endpoint_limit:
            self.guarded[TOKEN_PATH] = (
                _ip_rules("token", settings.token_endpoint_limit),
                TOKEN_LIMITED,
            )
        if settings.introspection_endpoint_limit:
            rules = _ip_rules("introspection", settings.introspection_endpoint_limit)
            for path in INTROSPECTION_PATHS:
                self.guarded[path] = (rules, INTROSPECTION_LIMITED)

    def shell_guards(self) -> tuple[ShellGuard, ...]:
        """The guards to run before the shell's endpoints: none when no limit is set."""
        return (self.guard_oauth_endpoints,) if self.guarded else ()

    async def start(self) -> None:
        await self.limiter.start()
        self.running = True

    async def stop(self) -> None:
        if self.running:
            self.running = False
            await self.limiter.aclose()

    # -- the OAuth endpoints per client IP (credential stuffing, secret guessing) ----

    async def guard_oauth_endpoints(self, scope: Scope, client_ip: str) -> ProblemResponse | None:
        guarded = self.guarded.get(scope["path"])
        if guarded is None or scope["method"] != "POST" or not self.running:
            return None
        rules, refusal = guarded
        try:
            verdict = await self.limiter.check(rules, "ip:" + client_ip)
        except StorageUnavailable:
            if self.config.rate_limiting.token_endpoint_on_storage_error == "fail_open":  # noqa: S105
                return None
            retry = str(self.limiter.retry_after)
            return ProblemResponse(
                503, STORAGE_DOWN.format(retry=retry), headers=[("retry-after", retry)]
            )
        if verdict.refused is None:
            return None
        retry = str(verdict.refused.reset)
        headers = [
            (k.decode(), v.decode())
            for k, v in rate_limit_headers(verdict.windows, verdict.refused)
        ]
        return ProblemResponse(
            429, refusal.format(retry=retry), headers=[*headers, ("retry-after", retry)]
        )

    # -- admin: usage ---------------------------------------------------------

    def admin_routes(self) -> list[BaseRoute]:
        usage = require_admin(self.config.admin_token, self.usage)
        return [Route("/admin/usage/{consumer}", usage, methods=["GET"])]

    async def usage(self, request: Request) -> Answer:
        """Usage of one consumer this UTC day and month; `?plan=` adds its quotas."""
        plan_name = request.query_params.get("plan")
        plans = self.config.plans
        if plan_name and plan_name not in plans:
            known = ", ".join(sorted(plans)) or "none"
            return ProblemResponse(404, UNKNOWN_PLAN.format(plan=plan_name, known=known))
        quotas = plans[plan_name].quotas if plan_name else None
        try:
            body = await self.limiter.usage(request.path_params["consumer"], quotas)
        except StorageUnavailable as exc:
            reason = str(exc)
            return ProblemResponse(
                503, USAGE_UNAVAILABLE.format(reason=reason), headers=[("retry-after", "5")]
            )
        body["plan"] = plan_name
        return JSONResponse(body)


def _ip_rules(name: str, limit: str) -> tuple[Rule, ...]:
    item = parse(limit)
    return (Rule(policy_name(name, item), item, name, "moving-window"),)
