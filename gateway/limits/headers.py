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


# (name, quota, window) → (its RateLimit-Policy item, the start of its RateLimit item):
# the same few windows recur, so each is formatted once.
_ITEMS: dict[tuple[str, int, int], tuple[bytes, bytes]] = {}
ITEMS_KEPT = 10_000


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _items(window: Window) -> tuple[bytes, bytes]:
    shape = (window.name, window.quota, window.window)
    items = _ITEMS.get(shape)
    if items is None:
        name = _sf_string(window.name)
        items = (f"{name};q={window.quota};w={window.window}".encode(), f"{name};r=".encode())
        if len(_ITEMS) >= ITEMS_KEPT:
            _ITEMS.clear()
        _ITEMS[shape] = items
    return items


def _tightness(window: Window) -> tuple[int, int]:
    return window.remaining, -window.reset


def rate_limit_headers(windows: Sequence[Window], primary: Window | None = None) -> RawHeaders:
    """All headers for `windows`; X-RateLimit-* describe `primary` or the tightest."""
    if not windows:
        return []
    if len(windows) == 1:  # the common case: one limit, no quota
        tightest = windows[0]
        policy, start = _items(tightest)
        state = b"%s%d;t=%d" % (start, tightest.remaining, tightest.reset)
    else:
        items = [_items(w) for w in windows]
        policy = b", ".join([item[0] for item in items])
        state = b", ".join(
            [
                b"%s%d;t=%d" % (item[1], w.remaining, w.reset)
                for item, w in zip(items, windows, strict=True)
            ]
        )
        tightest = min(windows, key=_tightness)
    if primary is not None:
        tightest = primary
    return [
        (b"ratelimit-policy", policy),
        (b"ratelimit", state),
        (b"x-ratelimit-limit", b"%d" % tightest.quota),
        (b"x-ratelimit-remaining", b"%d" % tightest.remaining),
        (b"x-ratelimit-reset", b"%d" % tightest.reset),
    ]
