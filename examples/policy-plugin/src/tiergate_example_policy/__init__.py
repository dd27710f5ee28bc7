"""example-header: adds `X-Example-Policy: <value>` to every response of an API.

apis:
  - name: shop
    policies:
      example-header: {}            # X-Example-Policy: on
      example-header: {value: beta} # X-Example-Policy: beta
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.context import RequestContext
from gateway.pipeline import BuildContext, PolicySpec
from gateway.types import ASGIApp

HEADER = b"x-example-policy"


class ExampleHeaderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(
        "on",
        pattern=r"^[A-Za-z0-9._~-]{1,64}$",
        description="The header's value: letters, digits and ._~- only.",
    )


class ExampleHeader:
    """Precomputes its header once; per request it only appends it."""

    def __init__(self, value: str) -> None:
        self.header = (HEADER, value.encode("ascii"))

    async def __call__(self, ctx: RequestContext) -> ASGIApp | None:
        ctx.response_headers.append(self.header)
        return None


def build(config: ExampleHeaderConfig, ctx: BuildContext) -> ExampleHeader:
    return ExampleHeader(config.value)


SPEC = PolicySpec(
    name="example-header",
    priority=250,  # after header-transform (300): the last word on the response
    config_model=ExampleHeaderConfig,
    build=build,
    description="Adds X-Example-Policy to every response.",
)
