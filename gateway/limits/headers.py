"""Rate-limit response headers.

`RateLimit-Policy` and `RateLimit` follow draft-ietf-httpapi-ratelimit-headers
(structured-field lists; one item per policy, named by a string):

    RateLimit-Policy: "free/minute";q=60;w=60, "free/day";q=1000;w=86400
    RateLimit: "free/minute";r=42;t=30, "free/day";r=917;t=51300

`X-RateLimit-Limit/Remaining/Reset` describe the tightest policy (fewest
requests remaining); `X-RateLimit-Reset` is seconds from now, like `t`.
"""

from __future__ import annotations

from collections.abc import Sequence

from limits import RateLimitItem

from gateway.limits.engine import Window
from gateway.types import RawHeaders


def policy_name(source: str, item: RateLimitItem) -> str:
    """'free' + 60/minute → 'free/minute'; '10 per 30 seconds' → 'free/30second'."""
    unit = item.GRANULARITY.name
    return f"{source}/{unit}" if item.multiples == 1 else f"{source}/{item.multiples}{unit}"


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rate_limit_headers(windows: Sequence[Window], primary: Window | None = None) -> RawHeaders:
    """All headers for `windows`; X-RateLimit-* describe `primary` or the tightest."""
    if not windows:
        return []
    policy = ", ".join(f"{_sf_string(w.name)};q={w.quota};w={w.window}" for w in windows)
    state = ", ".join(f"{_sf_string(w.name)};r={w.remaining};t={w.reset}" for w in windows)
    tightest = primary or min(windows, key=lambda w: (w.remaining, -w.reset))
    return [
        (b"ratelimit-policy", policy.encode()),
        (b"ratelimit", state.encode()),
        (b"x-ratelimit-limit", str(tightest.quota).encode()),
        (b"x-ratelimit-remaining", str(tightest.remaining).encode()),
        (b"x-ratelimit-reset", str(tightest.reset).encode()),
    ]
