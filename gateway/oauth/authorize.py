"""GET/POST /oauth/authorize: the sign-in page of the authorization_code grant.

GET validates the authorization request with authlib (client, exact redirect URI, scope,
PKCE S256) and renders a server-side form: `username`, `password`, a CSRF token and the
authorization request in hidden fields, so any node can take the POST. POST checks the
CSRF token (double-submit: the `csrf_token` field must equal the HttpOnly,
SameSite=Strict cookie set with the page, and a cross-site Origin is refused), the
per-IP and per-username limits, then the password; success is a 302 to the redirect URI
with `code` and `state`. Errors go back to the client as RFC 6749 §4.1.2.1 redirects
once its redirect URI is validated; before that they are a page (or problem+json for a
client that does not ask for HTML): never a redirect to an unregistered URI.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2.rfc6749.errors import OAuth2Error
from jinja2 import Environment, FileSystemLoader, select_autoescape
from limits import parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.catalogue.security_headers import content_security_policy
from gateway.limits.engine import Limiter, Rule, StorageUnavailable
from gateway.limits.headers import policy_name
from gateway.oauth.client_auth import read_form
from gateway.oauth.errors import OAuth2Error as _Base
from gateway.problem import Answer, ProblemResponse
from gateway.registry.end_users import SignIn
from gateway.types import Scope

if TYPE_CHECKING:
    from gateway.config.models import OAuthConfig
    from gateway.oauth.server import StarletteAuthorizationServer

# The authorization request, carried from the page to its POST in hidden fields.
REQUEST_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
USERNAME_FIELD, PASSWORD_FIELD, CSRF_FIELD, DECISION_FIELD = (
    "username",
    "password",
    "csrf_token",
    "decision",
)
CSRF_COOKIE = "tg_signin_csrf"
CSRF_COOKIE_SECURE = "__Host-tg_signin_csrf"  # over https: host-only, Secure, Path=/
CSRF_MAX_AGE = 900
MAX_QUERY_BYTES = 8 * 1024
MAX_FIELD_CHARS = 2048

BAD_QUERY = "The authorization request is not valid form data, is too long or repeats a parameter."
BAD_CSRF = (
    "The sign-in form expired or was not sent from this page. Go back to the app and "
    "start the sign-in again."
)
WRONG_PASSWORD = "The username or password is wrong."  # noqa: S105
LOCKED = "Too many failed sign-ins for this account. Try again in {seconds} s."
DISABLED = "This account is disabled."
TOO_MANY = "Too many sign-in attempts. Try again in {seconds} s."
LIMITS_DOWN = "Sign-in is unavailable right now. Try again in {seconds} s."

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class _PageError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class SignInPage:
    def __init__(
        self,
        server: StarletteAuthorizationServer,
        oauth: OAuthConfig,
        limiter: Limiter | None,
        client_ip: Callable[[Scope], str],
    ) -> None:
        self.server = server
        self.limiter = limiter
        self.client_ip = client_ip  # (starlette scope) -> the client IP the gateway trusts
        self.secure = oauth.issuer.startswith("https://")
        self.cookie = CSRF_COOKIE_SECURE if self.secure else CSRF_COOKIE
        self.issuer_origin = _origin(oauth.issuer)
        self.rules = {
            "ip": _rules("sign-in-ip", oauth.sign_in_limit_per_ip),
            "user": _rules("sign-in-user", oauth.sign_in_limit_per_user),
        }

    async def get(self, request: Request) -> Answer:
        try:
            data = _strict_query(request.scope.get("query_string", b""))
        except _PageError as error:
            return self._error_page(request, error)
        return await self._consent(request, data)

    async def post(self, request: Request) -> Answer:
        try:
            form = await read_form(request)
        except _Base:
            return self._error_page(request, _PageError(400, BAD_QUERY))
        if any(len(value) > MAX_FIELD_CHARS for value in form.values()):
            return self._error_page(request, _PageError(400, BAD_QUERY))
        if not self._csrf_ok(request, form):
            return self._error_page(request, _PageError(403, BAD_CSRF))
        data = {name: form[name] for name in REQUEST_FIELDS if name in form}
        shown = {**data, USERNAME_FIELD: form.get(USERNAME_FIELD, "")}  # refilled on error
        oauth_request = self.server.oauth2_request(request, data)
        try:
            grant = await self.server.in_thread(self.server.get_consent_grant, oauth_request)
        except OAuth2Error as error:
            return self._oauth_error(request, error)
        if form.get(DECISION_FIELD) == "deny":
            return await self._respond(grant, oauth_request, None)
        username = form.get(USERNAME_FIELD, "")
        try:
            await self._limit(request, username)
        except _PageError as error:
            return self._page(request, grant, shown, error.message, error.status, error.retry_after)
        sign_in: SignIn = await self.server.registry.check_password(
            username[:128], form.get(PASSWORD_FIELD, "")
        )
        if sign_in.outcome == "ok":
            return await self._respond(grant, oauth_request, sign_in.user)
        if sign_in.outcome == "locked" and sign_in.locked_until is not None:
            seconds = max(1, int(sign_in.locked_until - time.time()))
            return self._page(request, grant, shown, LOCKED.format(seconds=seconds), 429, seconds)
        message = DISABLED if sign_in.outcome == "disabled" else WRONG_PASSWORD
        return self._page(request, grant, shown, message, 400)

    # -- steps ---------------------------------------------------------------------

    async def _consent(self, request: Request, data: dict[str, str]) -> Answer:
        oauth_request = self.server.oauth2_request(request, data)
        try:
            grant = await self.server.in_thread(self.server.get_consent_grant, oauth_request)
        except OAuth2Error as error:
            return self._oauth_error(request, error)
        return self._page(request, grant, data, None, 200)

    async def _respond(self, grant: Any, oauth_request: Any, user: Any) -> Response:
        response: Response = await self.server.in_thread(
            self.server.create_authorization_response, oauth_request, user, grant
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def _limit(self, request: Request, username: str) -> None:
        limiter = self.limiter
        if limiter is None:
            return
        subjects = [("ip", "ip:" + self.client_ip(request.scope))]
        subjects.append(("user", "user:" + username.strip().lower()[:128]))
        for kind, subject in subjects:
            rules = self.rules[kind]
            if not rules:
                continue
            try:
                verdict = await limiter.check(rules, subject, count_usage=False)
            except StorageUnavailable:
                seconds = max(1, int(limiter.retry_after))
                raise _PageError(503, LIMITS_DOWN.format(seconds=seconds), seconds) from None
            if verdict.refused is not None:
                seconds = max(1, int(verdict.refused.reset))
                raise _PageError(429, TOO_MANY.format(seconds=seconds), seconds)

    def _csrf_ok(self, request: Request, form: dict[str, str]) -> bool:
        origin = request.headers.get("origin")
        if origin is not None and origin not in (self.issuer_origin, _origin(str(request.url))):
            return False
        cookie = request.cookies.get(self.cookie, "")
        sent = form.get(CSRF_FIELD, "")
        return len(cookie) >= 32 and hmac.compare_digest(cookie.encode(), sent.encode())

    # -- rendering --------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        grant: Any,
        data: dict[str, str],
        message: str | None,
        status: int,
        retry_after: int | None = None,
    ) -> Response:
        client = grant.request.client.record
        token = request.cookies.get(self.cookie, "")
        if len(token) < 32 or len(token) > 64 or not token.isascii():
            token = secrets.token_urlsafe(32)
        hidden = {name: data[name] for name in REQUEST_FIELDS if data.get(name)}
        body = _TEMPLATES.get_template("sign_in.html").render(
            client_name=client.name,
            scopes=(grant.request.scope or "").split(),
            hidden=hidden,
            csrf_field=CSRF_FIELD,
            csrf_token=token,
            message=message,
            username=(data.get(USERNAME_FIELD) or "")[:64],
        )
        response = HTMLResponse(body, status_code=status, headers=self._headers(grant))
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        response.set_cookie(
            self.cookie,
            token,
            max_age=CSRF_MAX_AGE,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )
        return response

    def _headers(self, grant: Any | None) -> dict[str, str]:
        targets: list[str] = []
        if grant is not None and grant.redirect_uri:
            # Chromium applies form-action to the redirect that follows the POST.
            targets.append(_csp_source(grant.redirect_uri))
        return {
            "Content-Security-Policy": content_security_policy(form_action=targets),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",  # the form POST keeps its Origin
            "Cache-Control": "no-store",
        }

    def _oauth_error(self, request: Request, error: OAuth2Error) -> Answer:
        if error.redirect_uri:  # validated against the client: RFC 6749 §4.1.2.1
            status, _body, headers = error()
            return Response(
                status_code=status, headers={**dict(headers), "Cache-Control": "no-store"}
            )
        description = error.description or "The authorization request is not valid."
        return self._error_page(request, _PageError(400, f"{error.error}: {description}"))

    def _error_page(self, request: Request, error: _PageError) -> Answer:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        if "text/html" not in request.headers.get("accept", ""):
            return ProblemResponse(error.status, error.message, headers=headers.items())
        body = _TEMPLATES.get_template("sign_in_error.html").render(message=error.message)
        return HTMLResponse(
            body, status_code=error.status, headers={**self._headers(None), **headers}
        )


def _strict_query(query: bytes) -> dict[str, str]:
    if len(query) > MAX_QUERY_BYTES:
        raise _PageError(400, BAD_QUERY)
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise _PageError(400, BAD_QUERY) from None
    data: dict[str, str] = {}
    for name, value in pairs:
        if name in data or len(value) > MAX_FIELD_CHARS:
            raise _PageError(400, BAD_QUERY)
        data[name] = value
    return data


def _rules(name: str, limit: str | None) -> tuple[Rule, ...]:
    if not limit:
        return ()
    item = parse(limit)
    return (Rule(policy_name(name, item), item, name, "moving-window"),)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _csp_source(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"  # a native app's private-use scheme (RFC 8252 §7.1)
