"""Driving the sign-in page like a browser without JavaScript: fetch the form, keep the
cookie, post the fields back. Shared by the authorization-code tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from gateway.registry import Registry
from tests.support.databases import postgres_database
from tests.support.estate import run_async
from tests.support.identity import RunningGateway, running_gateway

REDIRECT = "http://127.0.0.1:8765/callback"
OTHER_REDIRECT = "http://127.0.0.1:8765/other"
PASSWORD = "correct horse battery staple"
SCOPES = "orders:read orders:write"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.inputs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = values.get("action")
        if tag == "input":
            self.inputs.append(values.get("name", ""))
            if values.get("type") == "hidden":
                self.fields[values["name"]] = values.get("value", "")


def parse_form(html: str) -> _Form:
    form = _Form()
    form.feed(html)
    return form


@dataclass
class Estate:
    gw: RunningGateway
    url: str
    registry_url: str
    client_id: str
    confidential: tuple[str, str]

    def registry_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call() -> Any:
            registry = Registry.from_url(self.registry_url)
            try:
                await registry.start()
                return await getattr(registry, method)(*args, **kwargs)
            finally:
                await registry.aclose()

        return run_async(call())

    def new_user(self, customer: str = "cus_0042") -> str:
        username = f"user-{secrets.token_hex(4)}"
        self.registry_call("create_user", username, PASSWORD, customer)
        return username

    def oauth_client(self, **options: Any) -> OAuth2Client:
        options.setdefault("redirect_uri", REDIRECT)
        options.setdefault("scope", SCOPES)
        options.setdefault("code_challenge_method", "S256")
        return OAuth2Client(self.client_id, token_endpoint_auth_method="none", **options)

    def user_token(self, customer: str = "cus_0042") -> tuple[str, str]:
        """A new user of `customer` signs in through the page (authorization code + PKCE,
        authlib's client); (username, access token)."""
        username = self.new_user(customer)
        verifier = generate_token(64)
        with self.oauth_client() as oauth, httpx.Client() as browser:
            url, _ = oauth.create_authorization_url(
                f"{self.url}/oauth/authorize", code_verifier=verifier
            )
            answer = sign_in(browser, self.url, url, username)
            token = oauth.fetch_token(
                f"{self.url}/oauth/token",
                authorization_response=answer.headers["location"],
                code_verifier=verifier,
            )
        return username, str(token["access_token"])

    def exchange(self, actor: tuple[str, str], subject: str, **extra: str) -> httpx.Response:
        """RFC 8693 token exchange of `subject` by the service client `actor`."""
        return httpx.post(
            f"{self.url}/oauth/token",
            data={
                "grant_type": EXCHANGE,
                "subject_token": subject,
                "subject_token_type": ACCESS_TOKEN_TYPE,
                **extra,
            },
            auth=actor,
        )


@contextmanager
def estate(backend: str, tmp_path: Path, **top: Any) -> Iterator[Estate]:
    """A gateway with a public client (redirect REDIRECT and OTHER_REDIRECT) and a
    confidential one that has the authorization_code grant too."""
    oauth = {"sign_in_limit_per_ip": "1000/minute", **top.pop("oauth", {})}
    if backend == "sqlite":
        with _estate(f"sqlite:///{tmp_path}/registry.db", tmp_path, oauth, top) as built:
            yield built
    else:
        with postgres_database("signin") as url, _estate(url, tmp_path, oauth, top) as built:
            yield built


@contextmanager
def _estate(url: str, tmp_path: Path, oauth: dict, top: dict) -> Iterator[Estate]:
    with running_gateway(tmp_path, url, oauth=oauth, **top) as gw:

        async def setup() -> tuple[str, tuple[str, str]]:
            registry = Registry.from_url(url)
            try:
                public = await registry.create_public_client(
                    "Shop app", [REDIRECT, OTHER_REDIRECT], SCOPES.split()
                )
                confidential, secret = await registry.create_client(
                    "web-shop",
                    SCOPES.split(),
                    grant_types=("authorization_code", "refresh_token"),
                    redirect_uris=[REDIRECT],
                )
                return public.client_id, (confidential.client_id, secret)
            finally:
                await registry.aclose()

        client_id, confidential = run_async(setup())
        yield Estate(gw, gw.url, url, client_id, confidential)


def open_page(http: httpx.Client, url: str) -> tuple[httpx.Response, _Form]:
    page = http.get(url, headers={"accept": "text/html"})
    return page, parse_form(page.text)


def sign_in(
    http: httpx.Client, base: str, authorize_url: str, username: str, password: str = PASSWORD
) -> httpx.Response:
    """GET the page, POST the credentials with the form's hidden fields; the response."""
    page, form = open_page(http, authorize_url)
    assert page.status_code == 200, page.text
    return http.post(
        f"{base}{form.action}",
        data={**form.fields, "username": username, "password": password},
        headers={"accept": "text/html"},
    )
