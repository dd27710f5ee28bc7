"""`tier-guard`: who may call which tier.

Config:

    defaults:
      tier-guard: {}

- External consumers (OAuth clients, end users, partners) reach only public APIs
  (`visibility: public`; experience APIs by default).
- A tier API's service identity (kind `service`) reaches only APIs exactly one tier
  below its own AND listed in its `depends_on`.
- Runs after authentication; no identity means 401.

Everything is decided at start-up from the config: a request costs a set lookup.
"""

from __future__ import annotations

from gateway.config.base import StrictModel
from gateway.config.models import TIER_ORDER, GatewayConfig
from gateway.context import Identity, RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.problem import ProblemResponse
from gateway.types import ASGIApp

TIER_BELOW = {
    upper: lower
    for upper in TIER_ORDER
    for lower in TIER_ORDER
    if TIER_ORDER[lower] == TIER_ORDER[upper] - 1
}


class TierGuardConfig(StrictModel):
    """No settings: the rule comes from each API's tier, visibility and depends_on."""


# -- error texts (rule names are sent as the problem's `rule` member) -----------------------

NO_IDENTITY = "This API needs an authenticated caller (an OAuth2 token or an API key)."
PUBLIC_ONLY = "External consumers may only call public APIs; '{api}' is an internal {tier} API."
WRONG_TIER = (
    "{caller_tier} API '{caller}' may only call {below} APIs it depends on; "
    "'{api}' is {a_tier} API."
)
BOTTOM_TIER = "system API '{caller}' may not call other APIs; '{api}' is {a_tier} API."
NOT_A_DEPENDENCY = (
    "{caller_tier} API '{caller}' may only call {below} APIs it depends on; "
    "'{api}' is not in its depends_on."
)
UNKNOWN_CALLER = "The service identity names API '{caller}', which this gateway does not publish."
TIER_MISMATCH = "The service identity of API '{caller}' claims tier {claimed}; it is a {tier} API."

RULE_PUBLIC = "external-consumers-public-only"
RULE_TIER = "one-tier-down-depends-on"
SERVICE = "service"  # identity kind of a tier API's own credentials; any other is external
CHALLENGE = ("www-authenticate", 'Bearer realm="tiergate"')


class TierGuardPolicy:
    def __init__(self, config: TierGuardConfig, build: BuildContext) -> None:
        api = build.api
        self.api = api.name
        self.tier = api.tier
        self.public = api.is_public
        self.tiers = {a.name: a.tier for a in build.config.apis}
        # Callers allowed by the tier rule, decided once.
        self.callers = frozenset(_callers_of(build.config, api.name, api.tier))

    async def __call__(self, ctx: RequestContext) -> ASGIApp | None:
        identity = ctx.identity
        if identity is None:
            return ProblemResponse(401, NO_IDENTITY, headers=[CHALLENGE])
        if identity.kind != SERVICE:
            if self.public:
                return None
            return _forbidden(PUBLIC_ONLY.format(api=self.api, tier=self.tier), RULE_PUBLIC)
        if identity.api in self.callers and identity.tier == self.tiers[identity.api]:
            return None
        return _forbidden(self._service_violation(identity), RULE_TIER)

    def _service_violation(self, identity: Identity) -> str:
        caller = identity.api or "?"
        caller_tier = self.tiers.get(caller)
        if caller_tier is None:
            return UNKNOWN_CALLER.format(caller=caller)
        if identity.tier != caller_tier:
            return TIER_MISMATCH.format(caller=caller, claimed=identity.tier, tier=caller_tier)
        below = TIER_BELOW.get(caller_tier)
        article = "an" if self.tier == "experience" else "a"
        facts = {
            "caller": caller,
            "caller_tier": caller_tier,
            "api": self.api,
            "a_tier": f"{article} {self.tier}",
        }
        if below is None:
            return BOTTOM_TIER.format(**facts)
        if below != self.tier:
            return WRONG_TIER.format(below=below, **facts)
        return NOT_A_DEPENDENCY.format(below=below, **facts)


def _callers_of(config: GatewayConfig, target: str, tier: str) -> list[str]:
    return [
        a.name for a in config.apis if target in a.depends_on and TIER_BELOW.get(a.tier) == tier
    ]


def _forbidden(detail: str, rule: str) -> ProblemResponse:
    return ProblemResponse(403, detail, rule=rule)


def build(config: TierGuardConfig, ctx: BuildContext) -> TierGuardPolicy:
    return TierGuardPolicy(config, ctx)


SPEC = PolicySpec(
    name="tier-guard",
    priority=PRIORITY["tier-guard"],
    config_model=TierGuardConfig,
    build=build,
    description="External consumers reach public APIs; tier APIs call one tier down, "
    "only what they depend on.",
)
