"""A catalogue with sign-in on real uvicorn, and a browser-like way through it without
JavaScript: follow the catalogue to the sign-in page, post the form, come back signed in.
Shared by the sign-in, self-service and browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.loading import load_config
from gateway.stack import build_gateway
from tests.catalogue.conftest import write_estate
from tests.support.registry import registry_call
from tests.support.servers import UvicornThread

PASSWORD = "catalogue sign-in passphrase"
STAFF, CUSTOMER = "staff-ann", "cus-bob"
PARTNER, OTHER_PARTNER = "acme-carol", "globex-dan"
CONSUMER, OTHER_CONSUMER = "acme", "globex"
KEY_API = "legacy"


@dataclass
class SignedInEstate:
    url: str
    registry_url: str
    server: UvicornThread

    def registry_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return registry_call(self.registry_url, method, *args, **kwargs)


def _configure(root: Path, url: str, registry_url: str, settings: dict[str, Any]) -> Path:
    path = write_estate(root)
    config = yaml.safe_load(path.read_text())
    legacy = root / "openapi" / "legacy.yaml"
    contract = yaml.safe_load(legacy.read_text())
    contract["security"] = [{"key": []}]
    legacy.write_text(yaml.safe_dump(contract))
    for api in config["apis"]:
        if api["name"] == KEY_API:
            api["policies"] = {
                "api-key": {"cache_ttl": 0.2, "negative_cache_ttl": 0},
                "rate-limit": {"default_plan": "free"},
            }
    config["plans"]["free"]["quotas"] = {"daily": 500}
    config["registry_url"] = registry_url
    config["oauth"] = {
        "issuer": url,
        "key_activation_delay": 0,
        "sign_in_limit_per_ip": "1000/minute",
        "sign_in_limit_per_user": "1000/minute",
    }
    config["rate_limiting"] = {"token_endpoint_limit": "1000/minute"}
    config["catalogue"] = {
        "sign_in": {
            "staff": [STAFF],
            "partners": {PARTNER: CONSUMER, OTHER_PARTNER: OTHER_CONSUMER},
            "key_apis": [KEY_API],
            "key_plan": "free",
            "start_limit_per_ip": "1000/minute",
            **settings,
        }
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def signed_in_estate(root: Path, **settings: Any) -> Iterator[SignedInEstate]:
    """The estate; `settings` override `catalogue.sign_in`."""
    registry_url = f"sqlite:///{root}/registry.db"
    server = UvicornThread(None)
    path = _configure(root, server.url, registry_url, settings)
    server.config.app = build_gateway(load_config(path, env={}))
    estate = SignedInEstate(server.url, registry_url, server)
    for username, customer in (
        (STAFF, "cus_0001"),
        (CUSTOMER, "cus_0002"),
        (PARTNER, "cus_0003"),
        (OTHER_PARTNER, "cus_0004"),
    ):
        estate.registry_call("create_user", username, PASSWORD, customer)
    server.start()
    try:
        yield estate
    finally:
        server.stop()


class _Forms(HTMLParser):
    """Every form of a page: action → hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._action = values.get("action", "")
            self.forms.setdefault(self._action, {})
        elif tag == "input" and self._action is not None and values.get("type") == "hidden":
            self.forms[self._action][values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._action = None


def forms(html: str) -> dict[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def sign_in(
    http: httpx.Client, base: str, username: str, next_path: str = "/catalogue"
) -> httpx.Response:
    """From the catalogue's sign-in link to the page it returns to, as a browser would."""
    start = http.get(f"{base}/catalogue/sign-in", params={"next": next_path})
    assert start.status_code == 303, start.text
    page = http.get(start.headers["location"], headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    action, fields = next(iter(forms(page.text).items()))
    answer = http.post(
        f"{base}{action}",
        data={**fields, "username": username, "password": PASSWORD},
        headers={"accept": "text/html"},
    )
    assert answer.status_code == 302, answer.text
    return answer  # the redirect to the catalogue's callback (not yet followed)


def complete(http: httpx.Client, answer: httpx.Response) -> httpx.Response:
    """Follow the authorization server's redirect to the callback; the callback's answer."""
    return http.get(answer.headers["location"])


def csrf(http: httpx.Client, base: str, path: str = "/catalogue") -> str:
    page = http.get(base + path)
    return forms(page.text)["/catalogue/sign-out"]["csrf_token"]
