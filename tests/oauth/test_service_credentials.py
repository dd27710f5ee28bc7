"""Embedded mode: in-process tier APIs with depends_on get service credentials."""

from __future__ import annotations

import httpx

from tests.oauth.helpers import verify_with_served_jwks
from tests.support.identity import running_gateway


def test_in_process_api_gets_a_service_identity_and_obtains_a_token(tmp_path, httpbin_url):
    apis = [
        {"name": "orders", "tier": "system", "upstream": {"targets": [httpbin_url]}},
        {
            "name": "order-fulfilment",
            "tier": "process",
            "depends_on": ["orders"],
            "upstream": {"targets": ["asgi:tests.oauth.service_app:app"]},
        },
        {"name": "bin", "tier": "experience", "upstream": {"targets": [httpbin_url]}},
    ]
    with running_gateway(tmp_path, f"sqlite:///{tmp_path}/r.db", apis) as gw:
        credentials = gw.gateway.services["service_credentials"]
        assert set(credentials) == {"order-fulfilment"}  # in-process and depends on a tier
        assert credentials["order-fulfilment"]["client_id"] == "svc-order-fulfilment"
        assert credentials["order-fulfilment"]["token_endpoint"] == (
            "http://tiergate.internal/oauth/token"
        )
        r = httpx.get(f"{gw.url}/process/order-fulfilment/v1/whoami")
        assert r.status_code == 200, r.text
        claims = verify_with_served_jwks(gw.url, r.json()["token"])
        assert claims["sub"] == "svc-order-fulfilment"
        assert claims["tg_kind"] == "service"
        assert claims["tg_api"] == "order-fulfilment" and claims["tg_tier"] == "process"
        assert {"orders:read", "orders:write"} <= set(claims["scope"].split())
        assert credentials["order-fulfilment"]["client_secret"] not in r.text
