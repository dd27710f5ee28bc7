"""Path normalisation and the route table. Pure: no I/O, built once at start-up.

The gateway refuses ambiguous paths instead of rewriting them, so the string it
routes on is exactly the string it forwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from gateway.config.models import ApiConfig

BAD_PATH = "The request path is not allowed: {reason}."

# %2e (dot), %2f (slash), %5c (backslash), %00 (NUL): encoded forms of characters
# that change what a path means.
_ENCODED_SPECIAL = re.compile(rb"%(2e|2f|5c|00)", re.IGNORECASE)
_BAD_ESCAPE = re.compile(rb"%(?![0-9a-fA-F]{2})")
_ESCAPE = re.compile(rb"%[0-9a-fA-F]{2}")


class PathRejected(ValueError):
    """The path is malformed or ambiguous; the reason is safe to show the client."""


def normalise_path(raw_path: bytes) -> str:
    """Check a raw (still percent-encoded) request path and return it as text.

    Rejects rather than repairs: `..` or `.` segments, empty segments (`//`),
    NUL, backslashes, encoded dots/slashes/backslashes/NUL and double encoding.
    """
    if not raw_path.startswith(b"/"):
        raise PathRejected("it must start with '/'")
    if b"\x00" in raw_path or b"\\" in raw_path:
        raise PathRejected("it contains a NUL or a backslash")
    if b"%" in raw_path:  # most paths have no escape at all
        _check_escapes(raw_path)
    if b"//" in raw_path:
        raise PathRejected("it contains an empty segment ('//')")
    # A dot segment starts with "/." (the path starts with "/"): most paths have none.
    if b"/." in raw_path:
        for segment in raw_path.split(b"/"):
            # `..;x` is `..` to servers that strip path parameters (Tomcat, Jetty).
            if segment.split(b";", 1)[0] in (b".", b".."):
                raise PathRejected("it contains a '.' or '..' segment")
    try:
        return raw_path.decode("ascii")
    except UnicodeDecodeError:
        raise PathRejected("it contains raw non-ASCII bytes; percent-encode them") from None


def _check_escapes(raw_path: bytes) -> None:
    if _BAD_ESCAPE.search(raw_path):
        raise PathRejected("it contains a malformed percent-escape")
    match = _ENCODED_SPECIAL.search(raw_path)
    if match:
        raise PathRejected(f"it contains the encoded sequence {match.group(0).decode()!r}")
    if b"%25" in raw_path and _ESCAPE.search(unquote_to_bytes(raw_path)):
        # Decoding once still leaves an escape (%252e, %25%32%65): a second layer.
        raise PathRejected("it is percent-encoded twice")


def host_name(host: str) -> str:
    """The name part of a Host header: no port, lower case, IPv6 without brackets."""
    if host.startswith("["):
        return host[1 : host.find("]")].lower() if "]" in host else ""
    return host.rsplit(":", 1)[0].lower() if ":" in host else host.lower()


@dataclass(slots=True)
class Route:
    """One API as the router sees it. `chain` and `upstream` are filled at start-up."""

    api: ApiConfig
    prefix: str
    hosts: frozenset[str]
    methods: frozenset[str]
    chain: tuple = ()
    upstream: Any = None  # a gateway.proxy.forward.Forwarder once started
    contract: Any = None  # the compiled contract (operation table), None without one
    # Its operations resolved for fixed paths (gateway.operations.resolve's memo); a new
    # contract gets a new memo (set together at start-up).
    resolved: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def forward_path(self, path: str) -> str:
        if not self.api.strip_base_path:
            return path
        rest = path[len(self.prefix) :]
        return rest or "/"

    def relative_path(self, path: str) -> str:
        """The path as the API's contract names it (relative to the base path)."""
        return path[len(self.prefix) :] or "/"


@dataclass(slots=True, frozen=True)  # frozen: one per route, shared by every request
class Match:
    route: Route | None
    method_not_allowed: frozenset[str] = frozenset()


NO_MATCH = Match(None)


class RouteTable:
    """Longest-prefix match on whole segments, then host and method."""

    def __init__(self, apis: list[ApiConfig]) -> None:
        by_prefix: dict[str, list[Route]] = {}
        for api in apis:
            route = Route(api, api.path, frozenset(api.hosts), frozenset(api.methods))
            by_prefix.setdefault(api.path, []).append(route)
        # Most specific first: host- and method-bound routes before catch-alls.
        for routes in by_prefix.values():
            routes.sort(key=lambda r: (not r.hosts, not r.methods))
        self.routes = [r for rs in by_prefix.values() for r in rs]
        self.binds_hosts = any(r.hosts for r in self.routes)  # False: the Host never matters
        # Each route with its Match, built once: a request to it allocates none.
        self._by_prefix = {
            prefix: [(route, Match(route)) for route in routes]
            for prefix, routes in by_prefix.items()
        }

    def match(self, path: str, method: str = "GET", host: str = "") -> Match:
        candidate = path
        while candidate:
            routes = self._by_prefix.get(candidate)
            if routes is not None:
                found = self._pick(routes, method, host)
                if found is not NO_MATCH:
                    return found
            cut = candidate.rfind("/")
            candidate = candidate[:cut]
        return NO_MATCH

    @staticmethod
    def _pick(routes: list[tuple[Route, Match]], method: str, host: str) -> Match:
        allowed: frozenset[str] = frozenset()
        name: str | None = None  # the Host's name, worked out when a route is bound to one
        for route, found in routes:
            if route.hosts:
                if name is None:
                    name = host_name(host) if host else ""
                if name not in route.hosts:
                    continue
            if route.methods and method not in route.methods:
                allowed |= route.methods
                continue
            return found
        return Match(None, allowed) if allowed else NO_MATCH
