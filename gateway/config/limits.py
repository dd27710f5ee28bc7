"""Configuration of plans and of the rate-limiting engine (top-level `plans:` and
`rate_limiting:` in tiergate.yaml). Pure: parses and checks, opens nothing."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from limits import RateLimitItem, parse_many
from limits.limits import safe_string
from pydantic import AfterValidator, BeforeValidator, Field

from gateway.config.base import StrictModel

Strategy = Literal["moving-window", "sliding-window-counter"]
FailMode = Literal["fail_open", "fail_closed"]

BAD_LIMIT = (
    "{value!r} is not a rate limit; write 'N/unit' or 'N per M units' "
    "(units: second, minute, hour, day, month, year), e.g. '60/minute'"
)


def parse_limits(value: str) -> list[RateLimitItem]:
    """'60/minute' or '60/minute; 1000/day' → RateLimitItems; ValueError with a fix."""
    try:
        items = parse_many(value)
    except ValueError:
        raise ValueError(BAD_LIMIT.format(value=value)) from None
    if not items or any(item.amount < 1 for item in items):
        raise ValueError(BAD_LIMIT.format(value=value))
    return items


def _window_key(item: RateLimitItem, *identifiers: bytes | str | int | float) -> str:
    """`limits`' storage key without the amount: when a reload changes a plan's '5/minute'
    to '4/minute' (or a consumer moves to another plan), what the window already counted
    still counts. Per-API and anonymous limits keep `limits`' own key."""
    parts = [safe_string(k) for k in identifiers]
    parts += [safe_string(item.multiples), item.GRANULARITY.name]
    return f"{item.namespace}/{'/'.join(parts)}"


_BY_WINDOW: dict[type[RateLimitItem], type[RateLimitItem]] = {}


def _counted_by_window(item: RateLimitItem) -> RateLimitItem:
    kind = type(item)
    if kind not in _BY_WINDOW:  # no GRANULARITY of its own: `limits` does not register it
        _BY_WINDOW[kind] = type(kind.__name__, (kind,), {"key_for": _window_key})
    return _BY_WINDOW[kind](item.amount, item.multiples, item.namespace)


def _check_limit(value: str) -> str:
    parse_limits(value)
    return value


LimitString = Annotated[str, AfterValidator(_check_limit)]


BAD_DURATION = "{value!r} is not a duration; write e.g. '100ms', '0.5s' or a number of seconds"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")


def _duration(value: object) -> object:
    """'100ms' / '0.5s' / '2' → seconds; numbers pass through."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(BAD_DURATION.format(value=value))
        number = float(match.group(1))
        return number / 1000 if match.group(2) == "ms" else number
    return value


Duration = Annotated[float, BeforeValidator(_duration)]


class QuotaConfig(StrictModel):
    daily: int | None = Field(
        None, ge=1, description="Requests per consumer per UTC calendar day; unset: no quota."
    )
    monthly: int | None = Field(
        None, ge=1, description="Requests per consumer per UTC calendar month; unset: no quota."
    )


class PlanConfig(StrictModel):
    limits: list[LimitString] = Field(
        default_factory=list,
        description="Rate limits per consumer across all APIs, e.g. ['60/minute', '1000/day'].",
    )
    strategy: Strategy = Field(
        "moving-window",
        description="moving-window (exact, memory grows with the limit) or "
        "sliding-window-counter (approximate, two counters per limit).",
    )
    quotas: QuotaConfig = Field(
        default_factory=QuotaConfig, description="Daily/monthly quotas per consumer."
    )
    description: str = Field("", description="What the plan offers, for the catalogue.")

    def items(self) -> list[RateLimitItem]:
        return [_counted_by_window(item) for text in self.limits for item in parse_limits(text)]


class RateLimitingConfig(StrictModel):
    storage_timeout: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Seconds a storage call may take before the request goes on "
        "as the fail mode says; bounds the latency a storage outage adds.",
    )
    retry_after_error: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Seconds the storage is not tried again after it failed "
        "(the fail mode applies meanwhile); it is retried by itself afterwards.",
    )
    redis_max_connections: int = Field(
        64,
        ge=1,
        le=10000,
        description="Connections per gateway process to a plain Redis; a request waits "
        "for a free one within the storage timeout.",
    )
    token_endpoint_limit: LimitString | None = Field(
        "30/minute",
        description="Per-client-IP limit on POST /oauth/token against credential "
        "stuffing; null turns it off.",
    )
    introspection_endpoint_limit: LimitString | None = Field(
        "120/minute",
        description="Per-client-IP limit on POST /oauth/introspect and /oauth/revoke "
        "together (both authenticate clients, so both let secrets be guessed); a counter "
        "apart from the token endpoint's; null turns it off.",
    )
    token_endpoint_on_storage_error: FailMode = Field(
        "fail_open",
        description="What the guards of the OAuth endpoints do when the storage fails.",
    )
    key_prefix: str = Field(
        "tiergate", pattern=r"^[A-Za-z0-9:_-]{1,64}$", description="Prefix of every storage key."
    )
    sync: Duration | None = Field(
        None,
        ge=0.01,
        le=60,
        description="Approximate mode on Redis, e.g. '100ms': each process counts locally and "
        "pushes its counts to Redis in one batch per interval; a limit may admit more than "
        "its quota by what the other processes admit in one interval (docs/scaling.md). "
        "Unset: exact, one round trip per request.",
    )
    per_worker: bool = Field(
        False,
        description="With memory:// storage and several workers, let each worker count "
        "on its own: admits up to N times every limit and quota with N workers. Without it, "
        "memory:// and workers > 1 refuse to start.",
    )


def undefined_plans(plans: dict[str, PlanConfig], referenced: dict[str, str]) -> list[str]:
    """Sentences for each `where -> plan` reference that names no configured plan."""
    known = ", ".join(sorted(plans)) or "none"
    return [
        f"{where}: plan {plan!r} is not defined under `plans:` (defined: {known})"
        for where, plan in referenced.items()
        if plan not in plans
    ]


PlanName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]

STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")
BAD_STORAGE = (
    "{value!r} is not a supported limits storage URL; use memory:// or "
    "redis://host:port/db (also rediss://, redis+sentinel://, redis+cluster://)"
)


def _check_storage(value: str) -> str:
    scheme, sep, _ = value.partition("://")
    if not sep or scheme.removeprefix("async+") not in (*STORAGE_SCHEMES, "tiergate-memory"):
        raise ValueError(BAD_STORAGE.format(value=value))
    return value


StorageUrl = Annotated[str, AfterValidator(_check_storage)]


def check_plan_references(config) -> list[str]:
    """`tiergate check`: every rate-limit default_plan names a configured plan."""
    referenced = {}
    for api in config.apis:
        policy = api.policy_configs.get("rate-limit")
        plan = getattr(policy, "default_plan", None)
        if plan:
            referenced[f"apis[{api.name}].rate-limit.default_plan"] = plan
    source = config.source or "config"
    return [f"{source}: {problem}" for problem in undefined_plans(config.plans, referenced)]
