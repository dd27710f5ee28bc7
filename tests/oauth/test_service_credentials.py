"""Embedded mode: in-process tier APIs with depends_on get service credentials."""

from __future__ import annotations

import asyncio
import stat

import httpx

from gateway.registry import Registry
from tests.oauth.helpers import verify_with_served_jwks
from tests.support.identity import ADMIN_TOKEN, running_gateway


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
        credentials = gw.gateway.services.service_credentials
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


def _service_apis(httpbin_url: str) -> list[dict]:
    return [
        {"name": "orders", "tier": "system", "upstream": {"targets": [httpbin_url]}},
        {
            "name": "order-fulfilment",
            "tier": "process",
            "depends_on": ["orders"],
            "upstream": {"targets": ["asgi:tests.oauth.service_app:app"]},
        },
    ]


def _accepted(registry_url: str, client_id: str, secret: str) -> bool:
    async def check() -> bool:
        registry = Registry.from_url(registry_url)
        await registry.start()
        try:
            return await registry.authenticate_client(client_id, secret) is not None
        finally:
            await registry.aclose()

    return asyncio.run(check())


def test_an_embedded_service_keeps_its_credentials_across_a_restart(tmp_path, httpbin_url):
    registry = f"sqlite:///{tmp_path}/r.db"
    runs = []
    for _ in range(2):  # the same gateway started twice: a restart
        with running_gateway(tmp_path, registry, _service_apis(httpbin_url)) as gw:
            runs.append(dict(gw.gateway.services.service_credentials["order-fulfilment"]))
            r = httpx.get(f"{gw.url}/process/order-fulfilment/v1/whoami")
            assert r.status_code == 200, r.text
    assert runs[0] == runs[1]
    assert _accepted(registry, "svc-order-fulfilment", runs[0]["client_secret"])
    kept = tmp_path / "service-credentials.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_a_rotated_service_secret_overlaps_and_is_used_after_a_restart(tmp_path, httpbin_url):
    registry = f"sqlite:///{tmp_path}/r.db"
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with running_gateway(tmp_path, registry, _service_apis(httpbin_url)) as gw:
        held = gw.gateway.services.service_credentials["order-fulfilment"]
        old = held["client_secret"]
        rotated = httpx.post(
            f"{gw.admin_url}/admin/clients/svc-order-fulfilment/rotate",
            headers=auth,
            json={"overlap_seconds": 300},
        )
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()["client_secret"]
        assert held["client_secret"] == new  # the running service uses it from now on
        r = httpx.get(f"{gw.url}/process/order-fulfilment/v1/whoami")
        assert r.status_code == 200, r.text
        unknown = httpx.post(f"{gw.admin_url}/admin/clients/nobody/rotate", headers=auth)
        assert unknown.status_code == 404
    assert new != old
    assert _accepted(registry, "svc-order-fulfilment", old)  # within the overlap
    assert _accepted(registry, "svc-order-fulfilment", new)
    with running_gateway(tmp_path, registry, _service_apis(httpbin_url)) as gw:
        after = gw.gateway.services.service_credentials["order-fulfilment"]["client_secret"]
        immediate = httpx.post(
            f"{gw.admin_url}/admin/clients/svc-order-fulfilment/rotate",
            headers=auth,
            json={"overlap_seconds": 0},
        ).json()["client_secret"]
    assert after == new
    assert not _accepted(registry, "svc-order-fulfilment", new)  # no overlap asked for
    assert _accepted(registry, "svc-order-fulfilment", immediate)


def test_tiergate_clients_rotate_updates_the_embedded_service_file(
    tmp_path, httpbin_url, monkeypatch, capsys
):
    import json

    from gateway.cli import main

    registry = f"sqlite:///{tmp_path}/r.db"
    with running_gateway(tmp_path, registry, _service_apis(httpbin_url)) as gw:
        old = gw.gateway.services.service_credentials["order-fulfilment"]["client_secret"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIERGATE_REGISTRY_URL", registry)
    code = main(["clients", "rotate", "svc-order-fulfilment", "--overlap", "0", "--json"])
    assert code == 0
    new = json.loads(capsys.readouterr().out)["client_secret"]
    assert not _accepted(registry, "svc-order-fulfilment", old)
    assert json.loads((tmp_path / "service-credentials.json").read_text()) == {
        "svc-order-fulfilment": new
    }
    with running_gateway(tmp_path, registry, _service_apis(httpbin_url)) as gw:
        held = gw.gateway.services.service_credentials["order-fulfilment"]["client_secret"]
    assert held == new
    assert main(["clients", "rotate", "nobody"]) == 1
