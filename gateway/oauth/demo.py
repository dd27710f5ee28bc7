"""The embedded demo's sign-in: users from `oauth.demo_users` get a password generated at
their first start (printed once, stored only as a hash), the public client
`demo-shop-app` is registered, and the start-up output says how to sign in."""

from __future__ import annotations

import contextlib
import secrets
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from gateway.config.models import OAuthConfig
from gateway.registry import Conflict, Registry

DEMO_CLIENT_ID = "demo-shop-app"
DEMO_REDIRECT = "http://127.0.0.1:8765/callback"
DEMO_SCOPES = ("mobile:read", "mobile:write")


async def ensure_demo(registry: Registry, oauth: OAuthConfig) -> list[str]:
    """Create what is missing; the lines telling how to sign in."""
    if not oauth.demo_users:
        return []
    created: dict[str, str] = {}
    for username, customer in oauth.demo_users.items():
        if await registry.user(username) is not None:
            continue
        password = secrets.token_urlsafe(12)
        try:
            await registry.create_user(username, password, customer)
        except Conflict:  # another node created it meanwhile: its output has the password
            continue
        created[username] = password
    if await registry.client(DEMO_CLIENT_ID) is None:
        with contextlib.suppress(Conflict):
            await registry.create_public_client(
                "Demo shop app",
                [DEMO_REDIRECT],
                DEMO_SCOPES,
                client_id=DEMO_CLIENT_ID,
                consumer=DEMO_CLIENT_ID,
            )
    return _instructions(oauth, created)


def _instructions(oauth: OAuthConfig, created: dict[str, str]) -> list[str]:
    base = oauth.issuer.rstrip("/")
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": DEMO_CLIENT_ID,
            "redirect_uri": DEMO_REDIRECT,
            "scope": " ".join(DEMO_SCOPES),
            "state": "demo",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    lines = ["tiergate: sign in to the demo as a shop-app user (docs/quickstart.md):"]
    for username, customer in oauth.demo_users.items():
        if username in created:
            lines.append(
                f"  user {username} (customer {customer}), password {created[username]}"
                "  <- generated now, shown once"
            )
        else:
            lines.append(
                f"  user {username} (customer {customer}): password printed at its first start"
            )
    lines += [
        f"  1. open {base}/oauth/authorize?{query}",
        f"  2. after signing in, copy `code` from the address bar ({DEMO_REDIRECT}?code=...)",
        f"  3. curl -s {base}/oauth/token -d grant_type=authorization_code "
        f"-d client_id={DEMO_CLIENT_ID} -d redirect_uri={DEMO_REDIRECT} "
        f"-d code_verifier={verifier} -d code=CODE",
    ]
    return lines
