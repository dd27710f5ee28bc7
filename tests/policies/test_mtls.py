"""`mtls`: client certificates verified by the listener, mapped to consumers by subject,
SAN or a fingerprint registered with `tiergate keys create --cert`, combined with API keys
through the contract's security alternatives. Real TLS handshakes over real sockets."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from gateway.config import ConfigError
from tests.support.certs import TestCA
from tests.support.configs import make_config, write_contract
from tests.support.environment import clean_environ
from tests.support.processes import tiergate_up, write_config
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo, headers_of

SECURITY = {
    "components": {
        "securitySchemes": {
            "cert": {"type": "mutualTLS"},
            "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    },
    "security": [{"cert": []}, {"key": []}],
}


async def _echo_both(scope, receive, send):
    """HTTP: the echo upstream; WebSocket: answers with the headers it was given."""
    if scope["type"] == "http":
        await echo(scope, receive, send)
        return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    await receive()
    await send({"type": "websocket.send", "text": json.dumps(headers)})
    await send({"type": "websocket.close", "code": 1000})


def _cli(config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
    )


def _client(ca: TestCA, leaf=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert))
    if leaf is not None:
        context.load_cert_chain(str(leaf.cert), str(leaf.key))
    return context


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("mtls")
    servers = TestCA(tmp_path / "servers", "Server CA")
    clients = TestCA(tmp_path / "clients", "Client CA")
    leaves = {
        "server": servers.issue("gateway", "gateway.test"),
        "billing": clients.issue("billing", "billing", server=False, dns=(), ips=()),
        "erp": clients.issue("erp", "erp", server=False, dns=("erp.acme.example",), ips=()),
        "registered": clients.issue("registered", "registered", server=False, dns=(), ips=()),
        "stranger": clients.issue("stranger", "stranger", server=False, dns=(), ips=()),
        "outsider": TestCA(tmp_path / "other", "Other CA").issue(
            "outsider", "billing", server=False, dns=(), ips=()
        ),
    }
    with serve_asgi(_echo_both) as upstream:
        api = {
            "name": "partner",
            "websocket": True,
            "base_path": "/partner",
            "contract": write_contract(
                tmp_path, "partner", ["GET /orders"], servers=[{"url": "/partner"}], **SECURITY
            ),
            "upstream": {"targets": [upstream.url]},
            "policies": {
                "api-key": {"cache_ttl": 0.5, "negative_cache_ttl": 0},
                "mtls": {
                    "identities": [
                        {"subject": "CN=billing", "consumer": "acme-billing", "plan": "gold"},
                        {"san": "DNS:ERP.acme.example", "consumer": "acme-erp"},
                    ],
                    "registered": True,
                    "cache_ttl": 0.5,
                },
            },
        }
        tls = {
            "cert": str(leaves["server"].cert),
            "key": str(leaves["server"].key),
            "client_ca": str(clients.cert),
            "client_cert": "optional",
        }
        config = write_config(
            tmp_path,
            [api],
            access_log=False,
            registry_url=f"sqlite:///{tmp_path}/registry.db",
            plans={"gold": {"limits": ["1000/minute"]}},
        )
        raw = yaml.safe_load(config.read_text())
        raw["listeners"]["public"]["tls"] = tls
        config.write_text(yaml.safe_dump(raw))
        created = _cli(
            config, "keys", "create", "--consumer", "acme-cert", "--plan", "gold",
            "--apis", "partner", "--cert", str(leaves["registered"].cert), "--json",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        key = _cli(
            config, "keys", "create", "--consumer", "acme-key", "--plan", "gold",
            "--apis", "partner", "--json",
        )  # fmt: skip
        assert key.returncode == 0, key.stderr
        with tiergate_up(config) as gateway:
            yield {
                "url": gateway.url,
                "config": config,
                "servers": servers,
                "leaves": leaves,
                "cert_record": json.loads(created.stdout),
                "key": json.loads(key.stdout)["key"],
            }


def _get(estate, leaf_name=None, **kwargs) -> httpx.Response:
    leaf = estate["leaves"][leaf_name] if leaf_name else None
    with httpx.Client(verify=_client(estate["servers"], leaf)) as client:
        return client.get(f"{estate['url']}/partner/orders", **kwargs)


def test_a_certificate_mapped_by_subject(estate):
    response = _get(estate, "billing")
    assert response.status_code == 200, response.text
    seen = headers_of(response.json())
    assert seen["x-consumer-id"] == ["acme-billing"]
    assert seen["x-consumer-plan"] == ["gold"]


def test_a_certificate_mapped_by_san(estate):
    response = _get(estate, "erp")
    assert response.status_code == 200, response.text
    assert headers_of(response.json())["x-consumer-id"] == ["acme-erp"]


def test_a_registered_certificate_until_it_is_revoked(estate):
    response = _get(estate, "registered")
    assert response.status_code == 200, response.text
    assert headers_of(response.json())["x-consumer-id"] == ["acme-cert"]
    record = estate["cert_record"]
    assert record["prefix"].startswith("x509:")
    fingerprint = record["certificate_sha256"]
    listing = _cli(estate["config"], "keys", "list")
    assert f"cert sha256:{fingerprint[:8]}…" in listing.stdout, listing.stdout
    revoked = _cli(estate["config"], "keys", "revoke", record["id"])
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 10
    while (response := _get(estate, "registered")).status_code == 200:
        assert time.monotonic() < deadline, "the revoked certificate was still accepted"
        time.sleep(0.2)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "revoked" in response.json()["detail"]


def test_an_unmapped_certificate_is_refused(estate):
    response = _get(estate, "stranger")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "The client certificate (CN=stranger) is not registered with this gateway."
    )


def test_without_a_certificate_an_api_key_is_the_other_alternative(estate):
    response = _get(estate, headers={"x-api-key": estate["key"]})
    assert response.status_code == 200, response.text
    assert headers_of(response.json())["x-consumer-id"] == ["acme-key"]


def test_with_neither_the_contract_s_alternatives_are_named(estate):
    response = _get(estate)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "a registered client certificate (mutual TLS)" in detail
    assert "an API key sent in the X-API-Key header" in detail


def test_a_certificate_from_another_ca_fails_the_handshake(estate):
    with pytest.raises(httpx.HTTPError):
        _get(estate, "outsider")


def test_the_client_cannot_claim_a_certificate_in_headers(estate):
    forged = {"x-client-cert": "CN=billing", "x-consumer-id": "acme-billing"}
    response = _get(estate, headers=forged)
    assert response.status_code == 401


def test_a_required_client_certificate_is_enforced_in_the_handshake(tmp_path, estate):
    servers, leaves = estate["servers"], estate["leaves"]
    config = write_config(tmp_path, [], access_log=False)
    raw = yaml.safe_load(config.read_text())
    raw["listeners"]["public"]["tls"] = {
        "cert": str(leaves["server"].cert),
        "key": str(leaves["server"].key),
        "client_ca": str(estate["leaves"]["billing"].cert.parent / "client-ca.pem"),
        "client_cert": "required",
    }
    config.write_text(yaml.safe_dump(raw))
    # tiergate_up polls /healthz without a certificate, which `required` refuses: poll here.
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "up", "--config", str(config)],
        env=clean_environ(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{raw['listeners']['public']['port']}/healthz"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ok = httpx.get(url, verify=_client(servers, leaves["billing"]))
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert ok.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, verify=_client(servers))  # missing: the handshake is refused
    finally:
        proc.terminate()
        proc.wait(20)


def test_mtls_needs_client_certificates_on_the_listener(tmp_path):
    api = {
        "name": "partner",
        "upstream": {"targets": ["http://127.0.0.1:9"]},
        "policies": {"mtls": {"registered": True}},
    }
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, [api])
    assert "apis[0].policies.mtls: the mtls policy needs client certificates" in str(error.value)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"san": "host.example", "consumer": "a"}, "write a SAN as dns:NAME"),
        ({"san": "ip:999.1.1.1", "consumer": "a"}, "write a SAN as dns:NAME"),
        ({"consumer": "a"}, "give exactly one of subject or san"),
        ({"subject": "CN=a", "san": "dns:a", "consumer": "a"}, "give exactly one of"),
        ({"subject": "CN=a", "consumer": "a b"}, "consumer"),
    ],
)
def test_identity_rules_are_checked(rule, problem):
    from pydantic import ValidationError

    from gateway.policies.mtls import CertificateIdentity

    with pytest.raises(ValidationError) as error:
        CertificateIdentity.model_validate(rule)
    assert problem in str(error.value)


def test_websocket_upgrades_take_the_certificate_too(estate):
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    url = estate["url"].replace("https://", "wss://") + "/partner/orders"
    servers, leaves = estate["servers"], estate["leaves"]

    async def session():
        async with connect(url, ssl=_client(servers, leaves["billing"]), proxy=None) as ws:
            await ws.send("who")
            seen = json.loads(await ws.recv())
        with pytest.raises(InvalidStatus) as error:
            async with connect(url, ssl=_client(servers), proxy=None):
                pass
        return seen, error.value.response

    seen, refused = asyncio.run(session())
    assert seen["x-consumer-id"] == "acme-billing"
    assert seen["x-forwarded-proto"] == "https"
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


def test_keys_create_cert_refuses_what_is_not_a_certificate(estate, tmp_path):
    (tmp_path / "not.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    for path, problem in [
        (tmp_path / "missing.pem", "cannot read the file"),
        (tmp_path / "not.pem", "not a PEM certificate"),
    ]:
        result = _cli(
            estate["config"], "keys", "create", "--consumer", "x", "--plan", "gold",
            "--apis", "partner", "--cert", str(path),
        )  # fmt: skip
        assert result.returncode == 1
        assert f"--cert {path}: {problem}" in result.stderr
