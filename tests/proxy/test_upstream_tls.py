"""`upstream.tls`: a private CA, a client certificate and a server name toward https
targets (systems of record that require client certificates)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from gateway.config import ConfigError
from gateway.stack import build_gateway
from tests.support.certs import TestCA
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo


@pytest.fixture(scope="module")
def record_system(tmp_path_factory):
    """An https upstream on 127.0.0.1 whose certificate names only records.internal and
    which refuses any client without a certificate from its client CA."""
    where = tmp_path_factory.mktemp("upstream-tls")
    private = TestCA(where / "private", "Private CA")
    clients = TestCA(where / "clients", "Records Clients CA")
    server = private.issue("records", "records.internal", dns=("records.internal",), ips=())
    gateway_leaf = clients.issue("gateway", "tiergate", server=False, dns=(), ips=())
    stranger = TestCA(where / "other", "Other CA").issue("x", "x", server=False, dns=(), ips=())
    with serve_asgi(
        echo,
        ssl_certfile=str(server.cert),
        ssl_keyfile=str(server.key),
        ssl_ca_certs=str(clients.cert),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    ) as upstream:
        yield {
            "url": upstream.url.replace("http://", "https://"),
            "ca": str(private.cert),
            "leaf": gateway_leaf,
            "stranger": stranger,
        }


def _status(tmp_path, record_system, **tls) -> int:
    api = {
        "name": "records",
        "tier": "system",
        "base_path": "/records",
        "upstream": {"targets": [record_system["url"]], "retries": 0, "tls": tls},
    }
    with serve_asgi(build_gateway(make_config(tmp_path, [api]))) as gw:
        response = httpx.get(f"{gw.url}/records/x")
    if response.status_code != 200:
        assert response.headers["content-type"] == "application/problem+json"
    return response.status_code


def test_private_ca_client_certificate_and_server_name(tmp_path, record_system):
    leaf = record_system["leaf"]
    tls = {
        "ca": record_system["ca"],
        "cert": str(leaf.cert),
        "key": str(leaf.key),
        "server_name": "records.internal",
    }
    assert _status(tmp_path, record_system, **tls) == 200


@pytest.mark.parametrize("missing", ["ca", "server_name", "client certificate"])
def test_each_part_is_needed(tmp_path, record_system, missing):
    leaf = record_system["leaf"]
    tls = {
        "ca": record_system["ca"],
        "cert": str(leaf.cert),
        "key": str(leaf.key),
        "server_name": "records.internal",
    }
    if missing == "client certificate":
        del tls["cert"], tls["key"]
    else:
        del tls[missing]
    assert _status(tmp_path, record_system, **tls) == 502


def test_a_certificate_the_upstream_does_not_trust_is_refused(tmp_path, record_system):
    stranger = record_system["stranger"]
    tls = {
        "ca": record_system["ca"],
        "cert": str(stranger.cert),
        "key": str(stranger.key),
        "server_name": "records.internal",
    }
    assert _status(tmp_path, record_system, **tls) == 502


def test_cert_and_key_go_together(tmp_path):
    api = {
        "name": "records",
        "base_path": "/records",
        "upstream": {"targets": ["https://127.0.0.1:1"], "tls": {"cert": "c.pem"}},
    }
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, [api])
    assert "apis[0].upstream.tls: give cert and key together" in str(error.value)


def test_unloadable_files_stop_start_up_naming_the_field(tmp_path):
    from gateway.proxy.upstreams import upstream_tls_transport

    api = {
        "name": "records",
        "base_path": "/records",
        "upstream": {"targets": ["https://127.0.0.1:1"], "tls": {"ca": "missing.pem"}},
    }
    config = make_config(tmp_path, [api])
    with pytest.raises(ConfigError) as error:
        upstream_tls_transport(config.apis[0].upstream.tls, config, "apis[0].upstream.tls")
    assert "apis[0].upstream.tls: cannot load the upstream TLS files" in str(error.value)
