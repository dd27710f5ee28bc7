"""W3C Trace Context (traceparent / tracestate): accept a valid one, else start a trace.

Pure and cheap: it runs on every request, whether spans are exported or not.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(rb"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
MAX_TRACESTATE = 512  # W3C: vendors may drop tracestate beyond this many bytes


@dataclass(slots=True)
class TraceContext:
    trace_id: str
    span_id: str  # the gateway hop's own span, the parent of whatever it calls
    parent_id: str | None  # the caller's span, when the request carried one
    flags: str
    state: bytes | None = None

    def traceparent(self) -> bytes:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}".encode()


def new_span_id() -> str:
    return os.urandom(8).hex()


def from_headers(traceparent: bytes | None, tracestate: bytes | None) -> TraceContext:
    """Continue the caller's trace when its traceparent is valid; start a new one if not."""
    if traceparent is not None:
        match = _TRACEPARENT.fullmatch(traceparent.strip())
        if match is not None:
            version, trace_id, parent_id, flags = (g.decode() for g in match.groups()[:4])
            rest = match.group(5)
            valid = (
                version != "ff"
                and not (version == "00" and rest)
                and trace_id != _ZERO_TRACE
                and parent_id != _ZERO_SPAN
            )
            if valid:
                state = tracestate if tracestate and len(tracestate) <= MAX_TRACESTATE else None
                return TraceContext(trace_id, new_span_id(), parent_id, flags or "01", state)
    ids = os.urandom(24).hex()  # the trace's id and the hop's span id: one system call
    return TraceContext(ids[:32], ids[32:], None, "01")
