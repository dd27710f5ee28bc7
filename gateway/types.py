"""ASGI and header types used across the gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RawHeaders = list[tuple[bytes, bytes]]
# Runs before the public shell's own endpoints (e.g. a per-IP limit on /oauth/token):
# (scope, client IP) -> a response that ends the request, or None to pass on.
ShellGuard = Callable[[Scope, str], Awaitable[ASGIApp | None]]

__all__ = ["ASGIApp", "Message", "RawHeaders", "Receive", "Scope", "Send", "ShellGuard"]
