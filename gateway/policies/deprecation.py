"""Lifecycle on the wire: a deprecated API's responses say so (RFC 9745, RFC 8594).

Added by the loader to every API whose lifecycle is `deprecated`; absent otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from pydantic import BaseModel, ConfigDict

from gateway.context import RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.types import ASGIApp, RawHeaders


class DeprecationConfig(BaseModel):
    """No settings: the dates come from the API's `deprecated_since` and `sunset`."""

    model_config = ConfigDict(extra="forbid")


def lifecycle_headers(ctx: BuildContext) -> RawHeaders:
    api = ctx.api
    page = f"/catalogue/api/{api.name}"
    headers: RawHeaders = []
    if api.deprecated_since is not None:
        moment = datetime.combine(api.deprecated_since, time(0, 0), tzinfo=UTC)
        headers.append((b"deprecation", f"@{int(moment.timestamp())}".encode()))
        headers.append((b"link", f'<{page}>; rel="deprecation"; type="text/html"'.encode()))
    if api.sunset is not None:
        moment = datetime.combine(api.sunset, time(0, 0), tzinfo=UTC)
        stamp = moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
        headers.append((b"sunset", stamp.encode()))
        headers.append((b"link", f'<{page}>; rel="sunset"; type="text/html"'.encode()))
    return headers


class DeprecationPolicy:
    def __init__(self, headers: RawHeaders) -> None:
        self.headers = headers

    async def __call__(self, ctx: RequestContext) -> ASGIApp | None:
        ctx.response_headers.extend(self.headers)
        return None


def build(config: DeprecationConfig, ctx: BuildContext) -> DeprecationPolicy:
    return DeprecationPolicy(lifecycle_headers(ctx))


SPEC = PolicySpec(
    name="deprecation",
    priority=PRIORITY["deprecation"],
    config_model=DeprecationConfig,
    build=build,
    description="Deprecation, Sunset and Link headers on a deprecated API's responses.",
)
