"""Catalogue sign-in: the catalogue is a public client of the built-in authorization
server (authorization code + PKCE S256) and keeps a server-side session.

GET /catalogue/sign-in starts a sign-in: a pending session keeps `state` and the PKCE
code_verifier server-side, and the browser goes to /oauth/authorize. The callback checks
`state`, redeems the code in-process with authlib's OAuth2 client, verifies the access
token and opens a new session under a new id (the pending id dies: no session fixation).
POST /catalogue/sign-out (CSRF-protected) deletes the session and clears the cookie.

The cookie is HttpOnly, SameSite=Lax, Path=/catalogue (it never reaches an API) and
Secure when the catalogue is served over https. Who may do what is the config's answer
(`catalogue.sign_in`): `staff` see internal APIs, `partners` manage one consumer's keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from limits import parse
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.catalogue.sessions import PENDING_TTL, SessionStore
from gateway.config.catalogue import SignInConfig
from gateway.limits.engine import Limiter, Rule, StorageUnavailable
from gateway.limits.headers import policy_name
from gateway.oauth.client_auth import read_form
from gateway.oauth.errors import OAuth2Error
from gateway.oauth.keys import KeyRing
from gateway.oauth.tokens import verify_access_token
from gateway.registry import Conflict, Registry

if TYPE_CHECKING:
    from gateway.app import Gateway

SIGN_IN_PATH = "/catalogue/sign-in"
CALLBACK_PATH = "/catalogue/sign-in/callback"
SIGN_OUT_PATH = "/catalogue/sign-out"
COOKIE = "tg_catalogue"
COOKIE_PATH = "/catalogue"
CSRF_FIELD = "csrf_token"
CLIENT_NAME = "Tiergate API catalogue"
CLIENT_CONSUMER = "tiergate"
TOKEN_ENDPOINT = "http://tiergate.internal/oauth/token"  # noqa: S105 - in-process, no socket

NO_SIGN_IN = "This sign-in was not started here or has expired. Start again from the catalogue."
STATE_MISMATCH = (
    "The sign-in answer does not belong to the sign-in this browser started. Start again."
)
REFUSED = "The sign-in did not complete ({error}). Start again from the catalogue."
EXCHANGE_FAILED = "The sign-in could not be completed: {reason}. Start again."
TOO_MANY = "Too many sign-ins started from this address. Try again in {seconds} s."
LIMITS_DOWN = "Sign-in is unavailable right now. Try again in {seconds} s."
BAD_CSRF = "The form expired or was not sent from this catalogue. Reload the page and try again."


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in catalogue user and what the config lets them do."""

    session_id: str
    username: str
    csrf: str
    staff: bool
    consumer: str | None  # the consumer whose keys this user manages


class Refused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class CatalogueSignIn:
    def __init__(
        self,
        gateway: Gateway,
        config: SignInConfig,
        registry: Registry,
        issuer: KeyRing,
        limiter: Limiter | None,
    ) -> None:
        """`gateway` is the running gateway: its token endpoint is called in-process and
        its trusted proxies say who the client is."""
        self.gateway = gateway
        self.config = config
        self.registry = registry
        self.issuer = issuer
        self.limiter = limiter
        oauth = gateway.config.oauth
        self.base_url = (config.base_url or oauth.issuer).rstrip("/")
        self.redirect_uri = self.base_url + CALLBACK_PATH
        self.authorize_url = self.base_url + "/oauth/authorize"
        # One client per callback URI: every node derives the same id, and a new
        # base_url registers a new client instead of changing an existing one.
        digest = hashlib.sha256(self.redirect_uri.encode()).hexdigest()[:12]
        self.client_id = f"tiergate-catalogue-{digest}"
        self.host = urlsplit(self.base_url).netloc
        self.always_secure = self.base_url.startswith("https://")
        self.staff = frozenset(config.staff)
        self.partners = dict(config.partners)
        self.store: SessionStore | None = None
        self.start_rules: tuple[Rule, ...] = ()
        if config.start_limit_per_ip:
            item = parse(config.start_limit_per_ip)
            name = "catalogue-sign-in"
            self.start_rules = (Rule(policy_name(name, item), item, name, "moving-window"),)

    async def start(self) -> None:
        registry = self.registry
        self.store = SessionStore(registry.engine)
        await self.store.start()
        if await registry.client(self.client_id) is None:
            with contextlib.suppress(Conflict):  # another node registered it meanwhile
                await registry.create_public_client(
                    CLIENT_NAME,
                    [self.redirect_uri],
                    [],
                    consumer=CLIENT_CONSUMER,
                    client_id=self.client_id,
                )

    def demo_line(self, demo_users: Mapping[str, str]) -> str | None:
        """For the embedded demo's start-up output: which demo user sees what."""
        roles = [f"{u} (staff: internal APIs)" for u in demo_users if u in self.staff]
        roles += [f"{u} ({self.partners[u]}'s API keys)" for u in demo_users if u in self.partners]
        if not roles:
            return None
        return f"  catalogue: open {self.base_url}/catalogue, Sign in as " + " or ".join(roles)

    # -- the current viewer ------------------------------------------------------------

    async def viewer(self, request: Request) -> Viewer | None:
        """The signed-in user of this request, or None (also for a disabled user)."""
        session_id = request.cookies.get(COOKIE)
        if not session_id or self.store is None:
            return None
        session = await self.store.get(session_id)
        if session is None:
            return None
        user = await self.registry.user(session.username)
        if user is None or user.disabled:
            await self.store.delete_user(session.username)
            return None
        return Viewer(
            session_id,
            session.username,
            session.csrf,
            session.username in self.staff,
            self.partners.get(session.username),
        )

    async def form(self, request: Request, viewer: Viewer | None) -> dict[str, str]:
        """A state-changing form of `viewer`'s session: same origin and the session's CSRF
        token, or Refused."""
        if viewer is None:
            raise Refused(401, "Sign in first.")
        # Catalogue pages are sent with Referrer-Policy: no-referrer, so a browser's own
        # form posts say `Origin: null`; any other origin is another site.
        origin = request.headers.get("origin")
        allowed = (_origin(self.base_url), _origin(str(request.url)), "null")
        if origin is not None and origin not in allowed:
            raise Refused(403, BAD_CSRF)
        try:
            form = await read_form(request)
        except OAuth2Error:
            raise Refused(403, BAD_CSRF) from None  # no form: no token to check
        sent = form.get(CSRF_FIELD, "")
        if not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
            raise Refused(403, BAD_CSRF)
        return form

    # -- endpoints -----------------------------------------------------------------------

    async def sign_in(self, request: Request) -> Response:
        next_path = _safe_next(request.query_params.get("next", ""))
        moved = request.query_params.get("moved") == "1"
        if request.headers.get("host", "") != self.host and not moved:
            # The cookie must be set on the origin the callback returns to. Once only: a
            # proxy that rewrites Host must not make this a loop.
            query = urlencode({"next": next_path, "moved": "1"})
            return RedirectResponse(f"{self.base_url}{SIGN_IN_PATH}?{query}", 303)
        assert self.store is not None
        await self._limit_start(request)
        old = request.cookies.get(COOKIE)
        if old:
            await self.store.delete(old)
        verifier, state = generate_token(64), generate_token(32)
        url = prepare_grant_uri(
            self.authorize_url,
            self.client_id,
            "code",
            self.redirect_uri,
            state=state,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        session_id = await self.store.begin_sign_in(state, verifier, next_path)
        response = RedirectResponse(url, 303, headers=_NO_STORE)
        self._set_cookie(request, response, session_id, int(PENDING_TTL))
        return response

    async def callback(self, request: Request) -> Response:
        assert self.store is not None
        params = request.query_params
        pending = await self.store.take_sign_in(request.cookies.get(COOKIE, ""))
        if pending is None:
            raise Refused(400, NO_SIGN_IN)
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise Refused(400, STATE_MISMATCH)
        if "error" in params or not params.get("code"):
            raise Refused(400, REFUSED.format(error=params.get("error", "no code")[:64]))
        token = await self._redeem(request, params["code"], pending.code_verifier)
        claims = verify_access_token(self.issuer, token["access_token"])
        if claims is None or claims.get("client_id") != self.client_id:
            raise Refused(400, EXCHANGE_FAILED.format(reason="the token does not verify"))
        session_id = await self.store.create(str(claims["sub"]), self.config.session_ttl)
        response = RedirectResponse(pending.next_path, 303, headers=_NO_STORE)
        self._set_cookie(request, response, session_id, self.config.session_ttl)
        return response

    async def sign_out(self, request: Request) -> Response:
        assert self.store is not None
        viewer = await self.viewer(request)
        if viewer is not None:
            await self.form(request, viewer)
            await self.store.delete(viewer.session_id)
        response = RedirectResponse("/catalogue", 303, headers=_NO_STORE)
        response.delete_cookie(
            COOKIE,
            path=COOKIE_PATH,
            secure=self._secure(request),
            httponly=True,
            samesite="lax",
        )
        return response

    # -- helpers ---------------------------------------------------------------------------

    async def _limit_start(self, request: Request) -> None:
        limiter = self.limiter
        if limiter is None or not self.start_rules:
            return
        try:
            verdict = await limiter.check(
                self.start_rules, "ip:" + self._client_ip(request), count_usage=False
            )
        except StorageUnavailable:
            seconds = max(1, int(limiter.retry_after))
            raise Refused(503, LIMITS_DOWN.format(seconds=seconds), seconds) from None
        if verdict.refused is not None:
            seconds = max(1, int(verdict.refused.reset))
            raise Refused(429, TOO_MANY.format(seconds=seconds), seconds)

    def _client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else "127.0.0.1"
        return str(self.gateway.forwarded.client_ip(peer, request.scope["headers"]))

    async def _redeem(self, request: Request, code: str, verifier: str) -> dict[str, Any]:
        """The code for a token at this gateway's token endpoint, in-process; the token
        request counts against the browser's address, as if it had come from there."""
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            client_id=self.client_id,
            code_verifier=verifier,
        )
        transport = httpx.ASGITransport(app=self.gateway, client=(self._client_ip(request), 0))
        try:
            async with httpx.AsyncClient(transport=transport, timeout=10) as client:
                response = await client.post(
                    TOKEN_ENDPOINT,
                    content=body,
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as error:
            reason = type(error).__name__
            raise Refused(400, EXCHANGE_FAILED.format(reason=reason)) from None
        if response.status_code != 200 or not isinstance(answer, dict):
            code_error = answer.get("error") if isinstance(answer, dict) else None
            reason = str(code_error or f"status {response.status_code}")[:64]
            raise Refused(400, EXCHANGE_FAILED.format(reason=reason))
        if not isinstance(answer.get("access_token"), str):
            raise Refused(400, EXCHANGE_FAILED.format(reason="no access_token"))
        return answer

    def _secure(self, request: Request) -> bool:
        if self.always_secure or request.url.scheme == "https":
            return True
        proto = request.headers.get("x-forwarded-proto", "")
        return proto.split(",")[-1].strip().lower() == "https"

    def _set_cookie(self, request: Request, response: Response, value: str, max_age: int) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            secure=self._secure(request),
            httponly=True,
            samesite="lax",
        )


_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _safe_next(value: str) -> str:
    """Only a catalogue path of this site: never another host (an open redirect)."""
    if (
        not value.startswith("/catalogue")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x21 or ord(c) > 0x7E for c in value)
        or len(value) > 512
    ):
        return "/catalogue"
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sign_in_link(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?{urlencode({'next': _safe_next(next_path)})}"


__all__ = ["CatalogueSignIn", "Refused", "Viewer", "sign_in_link"]
