"""Refuse ambiguous HTTP/1.1 framing before anything is routed (RFC 9112 §6, RFC 9110 §7.2).

Measured with raw sockets (tests/test_framing.py, docs/policies-edge.md): uvicorn's
httptools parser already answers 400 and closes for Content-Length together with
Transfer-Encoding, differing or repeated Content-Length, `chunked` repeated,
obs-fold and bare LF. It still calls the app for a Transfer-Encoding other than
`chunked` (`gzip`, `gzip, chunked`, `xchunked`), for Transfer-Encoding in an
HTTP/1.0 request, and for a missing, repeated or malformed Host. h11 is worse
(it accepts CL+TE and unfolds obs-fold), so the listener stays on httptools and
this check closes the remaining gaps for any server the app runs under.

One pass over the headers; the answer is 400 problem+json with the connection closed.
"""

from __future__ import annotations

import re

from gateway.problem import ProblemResponse
from gateway.types import Scope

HOST_MISSING = "An HTTP/1.1 request needs exactly one Host header; it has none."
HOST_REPEATED = "An HTTP/1.1 request needs exactly one Host header; it has {count}."
HOST_INVALID = "The Host header {value!r} is not a host name with an optional port."
TE_UNSUPPORTED = "Transfer-Encoding {value!r} is not supported; only 'chunked' is."
TE_IN_HTTP10 = "Transfer-Encoding is not allowed in an HTTP/1.0 request."
TE_WITH_LENGTH = "A request may not carry both Content-Length and Transfer-Encoding."
LENGTH_INVALID = "Content-Length must be one non-negative integer."

# uri-host [ ":" port ]: reg-name, IPv4 or an IP literal in brackets (RFC 3986 §3.2.2).
_HOST = re.compile(rb"^(?:[A-Za-z0-9._~!$&'()*+,;=%-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$")
CLOSE = [("connection", "close")]
# Host values that matched _HOST: clients send the same few, and a set lookup costs a
# fraction of the regex. Emptied when full, so a client inventing hosts cannot grow it.
_VALID_HOSTS: set[bytes] = set()
VALID_HOSTS_KEPT = 1024


def framing_problem(scope: Scope) -> ProblemResponse | None:
    """None if the request's framing is unambiguous, else the 400 to send."""
    hosts = 0
    host = b""
    codings: list[bytes] | None = None
    lengths: list[bytes] | None = None
    for name, value in scope["headers"]:
        if name == b"host":
            hosts += 1
            host = value
        elif name == b"transfer-encoding":
            codings = [*(codings or ()), value]
        elif name == b"content-length":
            lengths = [*(lengths or ()), value]
    one_length = lengths is None or (len(lengths) == 1 and lengths[0].isdigit())
    if hosts == 1 and codings is None and one_length and _valid_host(host):
        return None  # the common case, decided in one pass
    detail = _host_problem(hosts, host, scope.get("http_version", "1.1"))
    if detail is None and codings:
        detail = _coding_problem(codings, lengths, scope.get("http_version", "1.1"))
    if detail is None and lengths:
        values = {v.strip() for v in b",".join(lengths).split(b",")}
        if len(values) != 1 or not values.pop().isdigit():
            detail = LENGTH_INVALID
    return None if detail is None else ProblemResponse(400, detail, headers=CLOSE)


def _valid_host(host: bytes) -> bool:
    if host in _VALID_HOSTS:
        return True
    if _HOST.fullmatch(host) is None:
        return False
    if len(_VALID_HOSTS) >= VALID_HOSTS_KEPT:
        _VALID_HOSTS.clear()
    _VALID_HOSTS.add(host)
    return True


def _host_problem(hosts: int, host: bytes, version: str) -> str | None:
    if hosts > 1:
        return HOST_REPEATED.format(count=hosts)
    if not hosts:
        return HOST_MISSING if version != "1.0" else None
    if not _HOST.fullmatch(host):
        return HOST_INVALID.format(value=host.decode("latin-1"))
    return None


def _coding_problem(codings: list[bytes], lengths: list[bytes] | None, version: str) -> str | None:
    if version == "1.0":
        return TE_IN_HTTP10
    if lengths:
        return TE_WITH_LENGTH
    value = b",".join(codings)
    if len(codings) != 1 or value.strip().lower() != b"chunked":
        return TE_UNSUPPORTED.format(value=value.decode("latin-1"))
    return None


__all__ = ["framing_problem"]
