"""Policy `ip-restriction`: allow/deny CIDR lists per API.

Decided on `ctx.client_ip`, the address the gateway resolved itself: the TCP peer,
or the right-most untrusted X-Forwarded-For entry when the peer is listed in
`trusted_proxies`. A header sent by an untrusted peer never chooses the address.
`deny` wins over `allow`; when `allow` is given, only those networks get in.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from pydantic import Field, model_validator

from gateway.config.base import StrictModel
from gateway.context import RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.problem import ProblemResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORBIDDEN = "Requests from {ip} are not allowed to reach API '{api}'."
EMPTY = "give at least one network in allow or deny; an empty policy would do nothing"


class IpRestrictionConfig(StrictModel):
    allow: list[Network] = Field(
        default_factory=list, description="CIDRs allowed in; when set, all others are refused."
    )
    deny: list[Network] = Field(
        default_factory=list, description="CIDRs refused, even when also allowed."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> IpRestrictionConfig:
        if not self.allow and not self.deny:
            raise ValueError(EMPTY)
        return self


class IpRestrictionPolicy:
    def __init__(self, config: IpRestrictionConfig, api: str) -> None:
        self.allow = tuple(config.allow)
        self.deny = tuple(config.deny)
        self.api = api
        self.admitted = lru_cache(maxsize=4096)(self._admitted)

    def _admitted(self, client_ip: str) -> bool:
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False  # no usable address: refuse rather than guess
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in network for network in self.deny):
            return False
        return not self.allow or any(address in network for network in self.allow)

    async def __call__(self, ctx: RequestContext) -> ProblemResponse | None:
        if self.admitted(ctx.client_ip):
            return None
        ctx.log["ip_restricted"] = True
        return ProblemResponse(403, FORBIDDEN.format(ip=ctx.client_ip or "?", api=self.api))


def build(config: IpRestrictionConfig, ctx: BuildContext) -> IpRestrictionPolicy:
    return IpRestrictionPolicy(config, ctx.api.name)


SPEC = PolicySpec(
    name="ip-restriction",
    priority=PRIORITY["ip-restriction"],
    config_model=IpRestrictionConfig,
    build=build,
    description="Allow/deny CIDR lists on the resolved client address.",
)
