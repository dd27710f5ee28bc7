"""Policy `header-transform`: add, remove and rename request and response headers.

Everything is compiled at start-up into sets and maps of lower-case byte names.
Request changes apply to what is forwarded upstream; response changes apply to the
upstream's answer before it reaches the client. Framing and hop-by-hop headers,
and the identity/forwarding headers only the gateway sets, cannot be touched.

`strip_banners` (default on whenever the policy is configured) removes the
upstream's software banners (`Server`, `X-Powered-By`, ...). The gateway's own
listener never sends `Server`. To strip banners on every API, configure
`defaults: {header-transform: {}}`.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from gateway.config.base import StrictModel
from gateway.context import RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.proxy.headers import GATEWAY_OWNED, HOP_BY_HOP
from gateway.types import RawHeaders

BANNERS = frozenset(
    {b"server", b"x-powered-by", b"x-aspnet-version", b"x-aspnetmvc-version", b"x-generator"}
)
FRAMING = frozenset({b"content-length", b"host", b"x-request-id"}) | HOP_BY_HOP
PROTECTED_REQUEST = FRAMING | GATEWAY_OWNED
BAD_NAME = "{name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
PROTECTED = "header {name!r} is managed by the gateway and cannot be transformed"
BAD_VALUE = "the value of {name!r} contains a line break or control character"
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")


def _name(name: str, protected: frozenset[bytes]) -> str:
    if not _TOKEN.fullmatch(name):
        raise ValueError(BAD_NAME.format(name=name))
    if name.lower().encode() in protected:
        raise ValueError(PROTECTED.format(name=name))
    return name.lower()


class _Transform(StrictModel):
    add: dict[str, str] = Field(
        default_factory=dict, description="Headers set (replacing any copy already present)."
    )
    remove: list[str] = Field(default_factory=list, description="Headers removed.")
    rename: dict[str, str] = Field(default_factory=dict, description="Old name → new name.")

    protected: ClassVar[frozenset[bytes]] = FRAMING

    @field_validator("add")
    @classmethod
    def _add(cls, add: dict[str, str]) -> dict[str, str]:
        for name, value in add.items():
            if not _VALUE.fullmatch(value):
                raise ValueError(BAD_VALUE.format(name=name))
        return {_name(k, cls.protected): v for k, v in add.items()}

    @field_validator("remove")
    @classmethod
    def _remove(cls, names: list[str]) -> list[str]:
        return [_name(n, cls.protected) for n in names]

    @field_validator("rename")
    @classmethod
    def _rename(cls, names: dict[str, str]) -> dict[str, str]:
        protected = cls.protected
        return {_name(k, protected): _name(v, protected) for k, v in names.items()}


class RequestTransform(_Transform):
    protected: ClassVar[frozenset[bytes]] = PROTECTED_REQUEST


class ResponseTransform(_Transform):
    pass


class HeaderTransformConfig(StrictModel):
    request: RequestTransform = Field(
        default_factory=RequestTransform, description="Changes to what is forwarded upstream."
    )
    response: ResponseTransform = Field(
        default_factory=ResponseTransform, description="Changes to the upstream's response."
    )
    strip_banners: bool = Field(
        True, description="Remove Server, X-Powered-By and similar banners from responses."
    )


class _Compiled:
    __slots__ = ("add", "drop", "rename")

    def __init__(self, transform: _Transform, extra_drop: frozenset[bytes] = frozenset()) -> None:
        self.add: RawHeaders = [(k.encode(), v.encode("latin-1")) for k, v in transform.add.items()]
        self.rename = {k.encode(): v.encode() for k, v in transform.rename.items()}
        # an added header replaces the client's/upstream's copy
        self.drop = frozenset(n.encode() for n in transform.remove) | extra_drop
        self.drop |= {k for k, _ in self.add}

    def apply(self, headers: RawHeaders) -> RawHeaders:
        drop, rename = self.drop, self.rename
        out = [(rename.get(k, k), v) for k, v in headers if k not in drop]
        out.extend(self.add)
        return out


class HeaderTransformPolicy:
    def __init__(self, config: HeaderTransformConfig) -> None:
        banners = BANNERS if config.strip_banners else frozenset()
        self.request = _Compiled(config.request) if _active(config.request) else None
        response_active = _active(config.response) or banners
        self.response = _Compiled(config.response, banners) if response_active else None

    async def __call__(self, ctx: RequestContext) -> None:
        if self.request is not None:
            ctx.headers = self.request.apply(ctx.headers)
        if self.response is not None:
            ctx.response_hooks.append(self._on_response)
        return None

    def _on_response(self, ctx: RequestContext, status: int, headers: RawHeaders) -> None:
        assert self.response is not None
        headers[:] = self.response.apply(headers)


def _active(transform: _Transform) -> bool:
    return bool(transform.add or transform.remove or transform.rename)


def build(config: HeaderTransformConfig, ctx: BuildContext) -> HeaderTransformPolicy:
    return HeaderTransformPolicy(config)


SPEC = PolicySpec(
    name="header-transform",
    priority=PRIORITY["header-transform"],
    config_model=HeaderTransformConfig,
    build=build,
    description="Add/remove/rename request and response headers; strip banners.",
)
