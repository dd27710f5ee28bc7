"""Policy `rate-limit`: plans, per-API and per-operation limits, quotas, headers.

Who is counted (the subject):
- an identified caller (``ctx.identity``, set only by the authentication policies
  that run before this one) is counted by its verified ``consumer_id``; a header
  the client sends never chooses the key;
- an anonymous request is counted by ``ctx.client_ip`` (resolved through
  `trusted_proxies` only).

What applies, every rule having to admit the request:
- the caller's plan (``identity.plan``, else ``default_plan``; anonymous requests
  get the ``anonymous`` limits instead), counted per consumer across all APIs;
- this API's ``limits``, counted per subject for this API, unless an entry of
  ``operations`` names the request's operation (``ctx.operation``, resolved from the
  contract: ``createOrder: "10/minute"`` or ``"POST /orders": ...``): that one replaces
  them for the operation and is counted per subject for the operation, whatever
  spelling of the path reached it (HEAD counts as GET);
- the plan's daily/monthly quotas (identified consumers only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from gateway.config.base import StrictModel
from gateway.config.limits import (
    FailMode,
    LimitString,
    PlanConfig,
    PlanName,
    QuotaConfig,
    Strategy,
    parse_limits,
    undefined_plans,
)
from gateway.context import RequestContext
from gateway.limits.engine import Rule, StorageUnavailable, Verdict
from gateway.limits.headers import policy_name, rate_limit_headers
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.problem import ProblemResponse

RATE_LIMITED = (
    "Rate limit '{name}' ({quota} requests per {window} s) is used up; retry in {retry} s."
)
QUOTA_EXCEEDED = "The {period} quota of {quota} requests is used up; it renews in {retry} s."
STORAGE_DOWN = "Rate limits cannot be checked right now; retry in {retry} s."
ANONYMOUS = "\0anonymous"  # the rule cache's name for the anonymous limits (no plan has it)
PLAN_CLAIMS_KEPT = 1_000
NO_LIMITER = "policy rate-limit needs the limits component (Services.limiter is None)"


class RateLimitConfig(StrictModel):
    limits: list[LimitString] = Field(
        default_factory=list,
        description="Limits for this API, counted per consumer (or client IP) for this API.",
    )
    operations: dict[str, LimitString | list[LimitString]] = Field(
        default_factory=dict,
        description="operationId or 'METHOD /template' of the API's contract (checked at "
        "load) → limits that replace `limits` for that operation.",
    )
    strategy: Strategy = Field(
        "moving-window", description="Strategy of `limits`, `operations` and `anonymous`."
    )
    default_plan: PlanName | None = Field(
        None, description="Plan for identified callers without one; unset: no plan limits."
    )
    anonymous: list[LimitString] = Field(
        default_factory=lambda: ["60/minute"],
        description="Limits per client IP for requests without an identity.",
    )
    on_storage_error: FailMode = Field(
        "fail_open",
        description="fail_open (default): serve unlimited, log and count; "
        "fail_closed: answer 503 with Retry-After.",
    )
    count_usage: bool = Field(
        True, description="Count daily/monthly usage of identified consumers (tiergate usage)."
    )

    def operation_references(self) -> list[tuple[str, str]]:
        """(field, operation name) pairs, checked against the contract at load."""
        return [(f"operations.{key}", key) for key in self.operations]


def _rules(source: str, scope: str, texts: list[str] | str, strategy: str) -> tuple[Rule, ...]:
    items = [
        item
        for text in ([texts] if isinstance(texts, str) else texts)
        for item in parse_limits(text)
    ]
    return tuple(Rule(policy_name(source, item), item, scope, strategy) for item in items)


def _sorted(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """Shortest window first, so a request refused per minute uses no daily unit."""
    return tuple(sorted(rules, key=lambda r: r.item.get_expiry()))


@dataclass(frozen=True, slots=True)
class _AppliedPlan:
    """What one value of `identity.plan` applies: the configured plan (else the default
    plan), its quotas, and its sorted rules per operation index, filled on first use."""

    name: str | None
    quotas: QuotaConfig | None
    unknown: bool  # the identity names a plan that is not configured (logged)
    rules: dict[int, tuple[Rule, ...]]


class RateLimitPolicy:
    def __init__(self, config: RateLimitConfig, ctx: BuildContext) -> None:
        limiter = ctx.services.limiter
        if limiter is None:
            raise RuntimeError(NO_LIMITER)
        problems = undefined_plans(
            ctx.config.plans,
            {f"apis.{ctx.api.name}.policies.rate-limit.default_plan": config.default_plan}
            if config.default_plan
            else {},
        )
        if problems:
            raise ValueError("; ".join(problems))
        self.limiter = limiter
        self.in_memory = limiter.local is not None
        self.config = config
        self.count_usage = config.count_usage
        self.plans: dict[str, PlanConfig] = ctx.config.plans
        api = ctx.api.name
        self.api_rules = _rules(api, f"api:{api}", config.limits, config.strategy)
        # Operation index (ctx.operation.index) → its rules, named by the contract's key.
        self.operations: dict[int, tuple[Rule, ...]] = {}
        for reference, texts in config.operations.items():
            operation = ctx.contract.find(reference) if ctx.contract is not None else None
            if operation is None:
                raise ValueError(f"rate-limit: {reference!r} names no operation of {api}")
            key = operation.key
            self.operations[operation.index] = _rules(
                f"{api} {key}", f"op:{api}:{key}", texts, config.strategy
            )
        self.anonymous = _sorted(_rules("anonymous", "anon", config.anonymous, config.strategy))
        # Per (plan, operation) the rule tuple is built once, then reused.
        self.plan_rules: dict[str, tuple[Rule, ...]] = {
            name: tuple(
                Rule(policy_name(name, item), item, "plan", plan.strategy) for item in plan.items()
            )
            for name, plan in self.plans.items()
        }
        self._cache: dict[tuple[str | None, int], tuple[Rule, ...]] = {}
        self._applied: dict[str | None, _AppliedPlan] = {}  # identity.plan → what applies

    def _operation_index(self, ctx: RequestContext) -> int:
        """The operation whose own limits replace the API's, or -1 (the API's limits)."""
        operation = ctx.operation
        if self.operations and operation is not None and operation.index in self.operations:
            return operation.index
        return -1

    def _rules_for(self, plan_name: str | None, op_index: int) -> tuple[Rule, ...]:
        """The sorted rules of a plan (None: none; ANONYMOUS: the anonymous limits) and an
        operation, built once per pair (the limiter keeps its own state per rule tuple)."""
        cache_key = (plan_name, op_index)
        rules = self._cache.get(cache_key)
        if rules is None:
            scoped = self.operations.get(op_index, self.api_rules)
            if plan_name == ANONYMOUS:
                base = self.anonymous
            else:
                base = self.plan_rules.get(plan_name, ()) if plan_name else ()
            rules = self._cache[cache_key] = _sorted(base + scoped)
        return rules

    def _plan_of(self, claim: str | None) -> _AppliedPlan:
        """What an identity's plan (a verified claim) applies, decided once per value."""
        applied = self._applied.get(claim)
        if applied is None:
            name = claim if claim in self.plans else self.config.default_plan
            plan = self.plans.get(name) if name else None
            applied = _AppliedPlan(
                name,
                plan.quotas if plan else None,
                bool(claim) and claim not in self.plans,
                {},
            )
            if len(self._applied) >= PLAN_CLAIMS_KEPT:
                self._applied.clear()
            self._applied[claim] = applied
        return applied

    async def __call__(self, ctx: RequestContext) -> Any:
        identity = ctx.identity
        op_index = self._operation_index(ctx)
        quotas: QuotaConfig | None = None
        consumer: str | None = None
        if identity is None:
            subject = "ip:" + ctx.client_ip
            rules = self._rules_for(ANONYMOUS, op_index)
        else:
            # The verified consumer, never a client-supplied header.
            consumer = identity.consumer_id
            subject = "c:" + consumer
            applied = self._plan_of(identity.plan)
            if applied.unknown:
                ctx.log["rate_limit_unknown_plan"] = identity.plan
            quotas = applied.quotas
            known = applied.rules.get(op_index)
            if known is None:
                known = applied.rules[op_index] = self._rules_for(applied.name, op_index)
            rules = known
        if self.in_memory:  # decided on this turn of the loop: no coroutine to await
            verdict = self.limiter.check_now(rules, subject, quotas, consumer, self.count_usage)
            return self._respond(ctx, verdict)
        try:
            verdict = await self.limiter.check(rules, subject, quotas, consumer, self.count_usage)
        except StorageUnavailable as exc:
            ctx.log["rate_limit"] = "storage_unavailable"
            ctx.log["rate_limit_error"] = str(exc)[:200]
            if self.config.on_storage_error == "fail_open":
                return None
            retry = str(self.limiter.retry_after)
            return ProblemResponse(
                503, STORAGE_DOWN.format(retry=retry), headers=[("retry-after", retry)]
            )
        return self._respond(ctx, verdict)

    def _respond(self, ctx: RequestContext, verdict: Verdict) -> Any:
        refused = verdict.refused
        ctx.response_headers.extend(rate_limit_headers(verdict.windows, refused))
        if refused is None:
            return None
        ctx.log["rate_limit"] = refused.name
        retry = str(refused.reset)
        if verdict.quota_period:
            detail = QUOTA_EXCEEDED.format(
                period=verdict.quota_period, quota=refused.quota, retry=retry
            )
        else:
            detail = RATE_LIMITED.format(
                name=refused.name, quota=refused.quota, window=refused.window, retry=retry
            )
        return ProblemResponse(429, detail, headers=[("retry-after", retry)])


def build(config: RateLimitConfig, ctx: BuildContext) -> RateLimitPolicy:
    return RateLimitPolicy(config, ctx)


SPEC = PolicySpec(
    name="rate-limit",
    priority=PRIORITY["rate-limit"],
    config_model=RateLimitConfig,
    build=build,
    description="Plans, per-API/per-operation limits, anonymous per-IP limits and quotas.",
    needs=("limiter",),
)
