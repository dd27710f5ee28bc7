"""Random hex ids for requests, traces and spans, cheaply.

Every request takes three (its request id, a trace id, a span id); `os.urandom`
is one system call each. These are identifiers, not secrets, so they are cut from
a buffer of urandom bytes refilled once per few hundred ids. A forked worker
starts with an empty buffer, so that no two processes hand out the same ids.
"""

from __future__ import annotations

import os

_REFILL = 4096  # bytes read at once: 128 request ids of 16 bytes


class _Pool:
    """Hex digits of urandom bytes not handed out yet; for the event loop's thread (two
    threads calling at once could be handed one id)."""

    def __init__(self) -> None:
        self._digits = ""
        self._at = 0

    def hex(self, size: int) -> str:
        at = self._at
        end = at + 2 * size
        if end > len(self._digits):
            self._digits = os.urandom(_REFILL).hex()
            at, end = 0, 2 * size
        self._at = end
        return self._digits[at:end]

    def forget(self) -> None:
        self._digits = ""
        self._at = 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.forget)


def random_hex(size: int) -> str:
    """`size` random bytes as lower-case hex (twice `size` characters)."""
    return _pool.hex(size)


__all__ = ["random_hex"]
