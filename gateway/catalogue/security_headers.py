"""Security headers for HTML pages the gateway serves itself (the catalogue, the OAuth
sign-in page).

Not a chain policy (API responses belong to their upstreams): the one
Content-Security-Policy of those pages, a reusable header set and a tiny pure-ASGI
middleware, mountable on any Starlette app or route:

    from gateway.catalogue.security_headers import SecurityHeadersMiddleware
    app = Starlette(routes=..., middleware=[Middleware(SecurityHeadersMiddleware)])

Headers the wrapped app already set are kept. The CSP allows only same-origin scripts,
styles, images, fonts and fetches (the catalogue ships its Swagger UI assets itself),
no inline scripts (page code is in static files), no plugins, no `<base>`, and forbids
framing by any site (`frame-ancestors 'none'` plus X-Frame-Options for old browsers).
A page widens it only where it must: the sign-in page's form-action (see below).
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

SELF = "'self'"


def content_security_policy(*, form_action: Iterable[str] = ()) -> str:
    """The CSP of every page the gateway serves. `form_action` adds the sources a page's
    form may post to (Chromium also applies them to the redirect after the POST: the
    OAuth sign-in page adds its client's redirect URI)."""
    directives = (
        ("default-src", "'none'"),
        ("script-src", SELF),
        ("style-src", SELF),  # Swagger UI sets styles through the DOM, which CSP allows
        ("img-src", f"{SELF} data:"),
        ("font-src", SELF),
        ("connect-src", SELF),
        ("form-action", " ".join([SELF, *form_action])),
        ("frame-ancestors", "'none'"),
        ("base-uri", "'none'"),
    )
    return "; ".join(f"{name} {value}" for name, value in directives)


DEFAULT_CSP = content_security_policy()


def security_headers(csp: str = DEFAULT_CSP) -> RawHeaders:
    """The header set, as raw ASGI headers."""
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]


SECURITY_HEADERS = security_headers()


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS (or your set) to every HTTP response of the wrapped app."""

    def __init__(self, app: ASGIApp, headers: RawHeaders | None = None) -> None:
        self.app = app
        self.headers = headers if headers is not None else SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = [
    "DEFAULT_CSP",
    "SECURITY_HEADERS",
    "SecurityHeadersMiddleware",
    "content_security_policy",
    "security_headers",
]
