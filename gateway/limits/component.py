"""The `limits` component: owns the limiter's storage for the gateway's lifetime,
publishes it as services["limiter"], guards the OAuth endpoints that authenticate clients
(/oauth/token, /oauth/introspect, /oauth/revoke) per client IP and serves
GET /admin/usage/{consumer} on the admin listener."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from limits import parse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin.auth import require_admin
from gateway.components import Component
from gateway.limits.engine import Limiter, Rule, StorageUnavailable
from gateway.limits.headers import policy_name, rate_limit_headers
from gateway.problem import ProblemResponse
from gateway.types import Scope

if TYPE_CHECKING:
    from gateway.app import Gateway

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

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.config = gateway.config
        self.limiter: Limiter | None = None
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
        if self.guarded:
            gateway.shell_guards.append(self.guard_oauth_endpoints)

    async def start(self) -> None:
        self.limiter = Limiter(self.config.limits_storage, self.config.rate_limiting)
        await self.limiter.start()
        self.gateway.services["limiter"] = self.limiter

    async def stop(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()
            self.gateway.services.pop("limiter", None)
            self.limiter = None

    # -- the OAuth endpoints per client IP (credential stuffing, secret guessing) ----

    async def guard_oauth_endpoints(self, scope: Scope, client_ip: str) -> Any:
        guarded = self.guarded.get(scope["path"])
        if guarded is None or scope["method"] != "POST" or self.limiter is None:
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

    async def usage(self, request: Request) -> Response:
        """Usage of one consumer this UTC day and month; `?plan=` adds its quotas."""
        assert self.limiter is not None
        plan_name = request.query_params.get("plan")
        plans = self.config.plans
        if plan_name and plan_name not in plans:
            known = ", ".join(sorted(plans)) or "none"
            return ProblemResponse(404, UNKNOWN_PLAN.format(plan=plan_name, known=known))  # type: ignore[return-value]
        quotas = plans[plan_name].quotas if plan_name else None
        try:
            body = await self.limiter.usage(request.path_params["consumer"], quotas)
        except StorageUnavailable as exc:
            reason = str(exc)
            return ProblemResponse(  # type: ignore[return-value]
                503, USAGE_UNAVAILABLE.format(reason=reason), headers=[("retry-after", "5")]
            )
        body["plan"] = plan_name
        return JSONResponse(body)


def _ip_rules(name: str, limit: str) -> tuple[Rule, ...]:
    item = parse(limit)
    return (Rule(policy_name(name, item), item, name, "moving-window"),)
