"""RateLimit headers: formatted from cached items, the same bytes as formatting each time."""

from __future__ import annotations

import random

from gateway.limits.engine import Window
from gateway.limits.headers import rate_limit_headers


def _formatted_each_time(windows: list[Window], primary: Window | None) -> list:
    """The headers as draft-ietf-httpapi-ratelimit-headers spells them, built from scratch."""

    def sf(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    tightest = primary or min(windows, key=lambda w: (w.remaining, -w.reset))
    return [
        (b"ratelimit-policy", ", ".join(f"{sf(w.name)};q={w.quota};w={w.window}" for w in windows)),
        (b"ratelimit", ", ".join(f"{sf(w.name)};r={w.remaining};t={w.reset}" for w in windows)),
        (b"x-ratelimit-limit", str(tightest.quota)),
        (b"x-ratelimit-remaining", str(tightest.remaining)),
        (b"x-ratelimit-reset", str(tightest.reset)),
    ]


def test_headers_equal_formatting_each_time_over_random_windows():
    rng = random.Random(11)
    names = ["free/minute", "free/day", 'odd"name', "back\\slash", "quota-daily", "quota-monthly"]
    for _ in range(2000):
        windows = [
            Window(
                rng.choice(names),
                rng.choice([1, 60, 1000]),
                rng.choice([1, 60, 86400]),
                rng.randint(0, 3),
                rng.randint(0, 3),
            )
            for _ in range(rng.randint(1, 4))
        ]
        primary = rng.choice([None, *windows])
        expected = [(k, v.encode()) for k, v in _formatted_each_time(windows, primary)]
        assert rate_limit_headers(windows, primary) == expected


def test_no_window_no_header():
    assert rate_limit_headers([]) == []
