"""The `limits` component: owns the limiter's storage for the gateway's lifetime,
publishes it as services["limiter"], guards /oauth/token per client IP and serves
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
TOKEN_LIMITED = "Too many token requests from this address; retry in {retry} s."  # noqa: S105
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
        self.token_rules: tuple[Rule, ...] = ()
        if settings.token_endpoint_limit:
            item = parse(settings.token_endpoint_limit)
            self.token_rules = (Rule(policy_name("token", item), item, "token", "moving-window"),)
            gateway.shell_guards.append(self.guard_token_endpoint)

    async def start(self) -> None:
        self.limiter = Limiter(self.config.limits_storage, self.config.rate_limiting)
        self.gateway.services["limiter"] = self.limiter

    async def stop(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()
            self.gateway.services.pop("limiter", None)
            self.limiter = None

    # -- /oauth/token per client IP (credential stuffing) ------------------------

    async def guard_token_endpoint(self, scope: Scope, client_ip: str) -> Any:
        if scope["path"] != TOKEN_PATH or scope["method"] != "POST" or self.limiter is None:
            return None
        try:
            verdict = await self.limiter.check(self.token_rules, "ip:" + client_ip)
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
            429, TOKEN_LIMITED.format(retry=retry), headers=[*headers, ("retry-after", retry)]
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
