"""Catalogue settings (the `catalogue:` section of tiergate.yaml)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.limits.config import LimitString

USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
CONSUMER = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Username = Annotated[str, Field(pattern=USERNAME)]


class SignInConfig(BaseModel):
    """Sign-in to the catalogue through the built-in authorization server, and what a
    signed-in user may do there. Who is who is decided here, per username:
    `staff` see internal APIs; `partners` manage the API keys of one consumer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(
        None,
        pattern=r"^https?://[^/?#\s]+$",
        description="Public origin the catalogue is served from (scheme://host[:port]); its "
        "callback `<base_url>/catalogue/sign-in/callback` is the catalogue client's one "
        "redirect URI. Default: `oauth.issuer`.",
    )
    session_ttl: int = Field(
        8 * 3600, ge=60, le=7 * 86400, description="Lifetime of a catalogue session, seconds."
    )
    start_limit_per_ip: LimitString | None = Field(
        "30/minute",
        description="Sign-ins started (GET /catalogue/sign-in) per client IP; each keeps a "
        "pending row for 10 minutes. null: off.",
    )
    staff: list[Username] = Field(
        default_factory=list,
        description="Users who see internal (system and process) APIs and the whole "
        "dependency graph with live traffic once signed in.",
    )
    partners: dict[Username, Annotated[str, Field(pattern=CONSUMER)]] = Field(
        default_factory=dict,
        description="User → the consumer whose API keys that user manages (create, rotate, "
        "revoke, usage and quota). A user manages one consumer only.",
    )
    key_apis: list[str] = Field(
        default_factory=list,
        description="APIs a self-service key may call; each must be a configured API.",
    )
    key_plan: str | None = Field(
        None,
        description="Plan of self-service keys; default: the consumer's own plan.",
    )


class CatalogueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Serve /catalogue pages and JSON.")
    title: str = Field("Tiergate API catalogue", description="Heading of the catalogue pages.")
    internal_scope: str | None = Field(
        "catalogue:internal",
        description="A bearer token from the built-in issuer with this scope also sees "
        "internal (system and process) APIs; null turns that off.",
    )
    admin_sees_internal: bool = Field(
        True, description="A bearer equal to the admin token sees internal APIs."
    )
    anonymous_sees_internal: bool = Field(
        False, description="Everyone sees internal APIs (for a private network only)."
    )
    sign_in: SignInConfig | None = Field(
        None,
        description="Sign-in with the built-in authorization server (sessions, internal "
        "view for staff, key self-service for partners); absent: no sign-in.",
    )


def sign_in_problems(config: Any) -> list[tuple[str, str]]:
    """Fields of `catalogue.sign_in` that name an API or plan the config does not have."""
    sign_in = config.catalogue.sign_in
    if sign_in is None:
        return []
    where = "catalogue.sign_in"
    problems = []
    apis = {api.name for api in config.apis}
    for index, name in enumerate(sign_in.key_apis):
        if name not in apis:
            known = ", ".join(sorted(apis)) or "none"
            problems.append((f"{where}.key_apis[{index}]", f"no API named {name!r}; APIs: {known}"))
    if sign_in.key_plan is not None and sign_in.key_plan not in config.plans:
        known = ", ".join(sorted(config.plans)) or "none"
        problems.append(
            (f"{where}.key_plan", f"no plan named {sign_in.key_plan!r}; plans: {known}")
        )
    if sign_in.partners and not sign_in.key_apis:
        problems.append(
            (f"{where}.key_apis", "partners are listed, so name the APIs their keys may call")
        )
    return problems
