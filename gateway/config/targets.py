"""Configuration of an upstream's targets: weights, named target sets and the canary rule.

    upstream:
      targets:                       # the default set
        - {url: http://a:8000, weight: 9}
        - http://b:8000              # weight 1
      target_sets:
        beta: {targets: [http://c:8000]}
      canary:
        target_set: beta
        header: {name: x-canary, value: always}
        cookie: {name: canary, value: "on"}
        percent: 5                   # of consumers, by a stable hash of the consumer

A target is written as a URL string or as `{url, weight}`; the models keep `targets` a
list of URL strings (what every other part reads) and the weights beside it.
Pure: parses and checks, opens nothing.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

TARGET_RE = re.compile(r"^https?://[^/\s?#]+(:\d{1,5})?(/[^\s?#]*)?$")
ASGI_RE = re.compile(r"^asgi:[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
MAX_WEIGHT = 1000
SET_NAME = r"^[a-z][a-z0-9-]{0,62}$"
DEFAULT_SET = "default"
BAD_TARGET = (
    "{target!r} is not a valid target; use http://host:port[/prefix] or asgi:module:attribute"
)
TWICE = "targets are listed twice; list each once"
BAD_WEIGHT = f"weight must be an integer from 1 to {MAX_WEIGHT}"
BAD_ENTRY = "a target is a URL string or a mapping {url: ..., weight: N}"
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")  # RFC 9110 token
COOKIE_VALUE = re.compile(r"^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,256}$")  # RFC 6265


def check_targets(targets: list[str]) -> list[str]:
    """Each target a valid URL or in-process app, none twice (ValueError otherwise)."""
    for target in targets:
        if not (TARGET_RE.fullmatch(target) or ASGI_RE.fullmatch(target)):
            raise ValueError(BAD_TARGET.format(target=target))
    if len(set(targets)) != len(targets):
        raise ValueError(TWICE)
    return targets


def _split_weights(data: Any) -> tuple[Any, tuple[int, ...] | None]:
    """Raw `targets` entries → (data with URL strings, weights); None when not a list."""
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        return data, None
    urls: list[Any] = []
    weights: list[int] = []
    for index, entry in enumerate(data["targets"]):
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"url", "weight"})
            if unknown or "url" not in entry:
                raise ValueError(f"@targets[{index}]: {BAD_ENTRY}")
            weight = entry.get("weight", 1)
            if not isinstance(weight, int) or isinstance(weight, bool):
                raise ValueError(f"@targets[{index}].weight: {BAD_WEIGHT}")
            if not 1 <= weight <= MAX_WEIGHT:
                raise ValueError(f"@targets[{index}].weight: {BAD_WEIGHT}")
            urls.append(entry["url"])
            weights.append(weight)
        else:
            urls.append(entry)
            weights.append(1)
    return {**data, "targets": urls}, tuple(weights)


class WeightedTargets(BaseModel):
    """`targets` as URL strings, with each one's weight kept beside it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: list[str] = Field(
        min_length=1,
        description="`http://host:port[/prefix]`, `https://...` or an in-process app "
        "`asgi:module:attr`; or `{url: ..., weight: N}` (1-1000, default 1) for a smooth "
        "weighted round-robin.",
    )
    _weights: tuple[int, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _with_weights(cls, data: Any, handler: Any) -> Any:
        data, weights = _split_weights(data)
        model = handler(data)
        if weights is not None:
            model._weights = weights
        return model

    @field_validator("targets")
    @classmethod
    def _valid_targets(cls, targets: list[str]) -> list[str]:
        return check_targets(targets)

    @property
    def weights(self) -> tuple[int, ...]:
        """Weight of each target, in the order of `targets`."""
        return self._weights or (1,) * len(self.targets)


class TargetSetConfig(WeightedTargets):
    """A named set of targets a canary rule can send requests to."""


class HeaderMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=TOKEN.pattern, description="Request header name.")
    value: str = Field(
        min_length=1, max_length=256, description="Exact value (compared case-sensitively)."
    )

    @field_validator("name")
    @classmethod
    def _lower(cls, name: str) -> str:
        return name.lower()

    @field_validator("value")
    @classmethod
    def _visible(cls, value: str) -> str:
        if not value.isprintable() or not value.isascii():
            raise ValueError("the value must be printable ASCII")
        return value


class CookieMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=TOKEN.pattern, description="Cookie name (case-sensitive).")
    value: str = Field(pattern=COOKIE_VALUE.pattern, description="Exact cookie value.")


class CanaryConfig(BaseModel):
    """Which requests go to `target_set` instead of the default targets: any rule that
    matches sends the request there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_set: str = Field(pattern=SET_NAME, description="A name under `target_sets`.")
    header: HeaderMatch | None = Field(None, description="Requests carrying this header value.")
    cookie: CookieMatch | None = Field(None, description="Requests carrying this cookie value.")
    percent: float = Field(
        0,
        ge=0,
        le=100,
        description="Share of consumers, chosen by a stable hash of the consumer id (the "
        "client address for anonymous requests): the same consumer always lands on the "
        "same side.",
    )

    @model_validator(mode="after")
    def _some_rule(self) -> CanaryConfig:
        if self.header is None and self.cookie is None and not self.percent:
            raise ValueError("a canary needs a header, a cookie or a percent above 0")
        return self


def check_canary(
    canary: CanaryConfig | None, target_sets: dict[str, TargetSetConfig]
) -> CanaryConfig | None:
    if canary is not None and canary.target_set not in target_sets:
        known = ", ".join(sorted(target_sets)) or "none"
        raise ValueError(
            f"@canary.target_set: {canary.target_set!r} is not a target set; known: {known}"
        )
    return canary


__all__ = [
    "DEFAULT_SET",
    "CanaryConfig",
    "CookieMatch",
    "HeaderMatch",
    "TargetSetConfig",
    "WeightedTargets",
    "check_canary",
    "check_targets",
]
