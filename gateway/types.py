"""ASGI and header types used across the gateway."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RawHeaders = list[tuple[bytes, bytes]]

__all__ = ["ASGIApp", "Message", "RawHeaders", "Receive", "Scope", "Send"]
