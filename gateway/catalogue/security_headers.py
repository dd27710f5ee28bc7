"""Security headers for HTML pages the gateway serves itself (the catalogue).

Not a chain policy (API responses belong to their upstreams): a reusable header set
and a tiny pure-ASGI middleware, mountable on any Starlette app or route:

    from gateway.catalogue.security_headers import SecurityHeadersMiddleware
    app = Starlette(routes=..., middleware=[Middleware(SecurityHeadersMiddleware)])

Headers the wrapped app already set are kept (a page may loosen its own CSP).
The default CSP allows only same-origin scripts, styles, images and fonts (the
catalogue ships Swagger UI/Redoc assets locally), forbids framing by other sites
(`frame-ancestors 'none'` plus X-Frame-Options for old browsers) and plugins.
"""

from __future__ import annotations

from gateway.types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


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


__all__ = ["DEFAULT_CSP", "SECURITY_HEADERS", "SecurityHeadersMiddleware", "security_headers"]
