"""TLS on the listeners: a verified chain, minimum version, HSTS, Secure cookies,
X-Forwarded-Proto, and certificates reloaded on SIGHUP without dropping connections."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time

import httpx
import pytest
import yaml
from cryptography import x509

from gateway.config import ConfigError
from gateway.tls import secure_cookie
from tests.support.certs import TestCA
from tests.support.configs import make_config
from tests.support.environment import clean_environ
from tests.support.processes import tiergate_up, write_config
from tests.support.servers import serve_asgi


async def cookie_echo(scope, receive, send):
    """Sets cookies with and without Secure; answers with the X-Forwarded-Proto it got."""
    if scope["type"] != "http":
        return
    proto = dict(scope["headers"]).get(b"x-forwarded-proto", b"")
    headers = [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"sid=abc; Path=/; HttpOnly"),
        (b"set-cookie", b"__Host-pref=1; Path=/; Secure"),
        (b"set-cookie", b"cross=1; SameSite=None"),
        (b"strict-transport-security", b"max-age=1"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": proto})


def _client_context(ca) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    where = tmp_path_factory.mktemp("pki")
    ca = TestCA(where)
    return ca, ca.issue("server", "gateway.test")


@pytest.fixture(scope="module")
def https_gateway(tmp_path_factory, pki):
    _ca, server = pki
    tmp_path = tmp_path_factory.mktemp("https")
    with serve_asgi(cookie_echo) as upstream:
        api = {"name": "shop", "base_path": "/shop", "upstream": {"targets": [upstream.url]}}
        tls = {"cert": str(server.cert), "key": str(server.key), "hsts": 31536000}
        config = write_config(tmp_path, [api], access_log=False)
        text = config.read_text().replace("public:\n", f"public:\n    tls: {tls}\n", 1)
        config.write_text(text)
        with tiergate_up(config) as gateway:
            yield gateway


def test_https_with_a_verified_chain(https_gateway, pki):
    ca, _ = pki
    response = httpx.get(f"{https_gateway.url}/shop/x", verify=_client_context(ca))
    assert response.status_code == 200
    assert response.text == "https"  # X-Forwarded-Proto toward the upstream
    assert response.extensions["http_version"] == b"HTTP/1.1"


def test_curl_verifies_the_chain_and_refuses_without_the_ca(https_gateway, pki):
    ca, _ = pki
    url = f"{https_gateway.url}/healthz"
    ok = subprocess.run(
        ["curl", "-sS", "--cacert", str(ca.cert), url], capture_output=True, text=True, timeout=30
    )
    assert ok.returncode == 0, ok.stderr
    assert '"ok"' in ok.stdout
    refused = subprocess.run(["curl", "-sS", url], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 60  # peer certificate cannot be authenticated


def test_an_unknown_ca_is_refused_by_the_client(https_gateway, tmp_path):
    other = TestCA(tmp_path, "Other CA")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{https_gateway.url}/healthz", verify=_client_context(other))


def test_plain_http_to_the_tls_port_gets_no_answer(https_gateway):
    plain = https_gateway.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz", timeout=5)


def test_hsts_and_secure_cookies(https_gateway, pki):
    ca, _ = pki
    response = httpx.get(f"{https_gateway.url}/shop/x", verify=_client_context(ca))
    assert response.headers.get_list("strict-transport-security") == ["max-age=31536000"]
    cookies = response.headers.get_list("set-cookie")
    assert cookies == [
        "sid=abc; Path=/; HttpOnly; Secure",
        "__Host-pref=1; Path=/; Secure",
        "cross=1; SameSite=None; Secure",
    ]
    # The gateway's own answers carry HSTS too (404 problem, /healthz).
    missing = httpx.get(f"{https_gateway.url}/nowhere", verify=_client_context(ca))
    assert missing.status_code == 404
    assert missing.headers["strict-transport-security"] == "max-age=31536000"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"a=1", b"a=1; Secure"),
        (b"a=1;", b"a=1; Secure"),
        (b"a=1; secure", b"a=1; secure"),
        (b"a=1; Path=/; SECURE ", b"a=1; Path=/; SECURE "),
        (b"a=secure", b"a=secure; Secure"),  # the value is not an attribute
        (b"a=1; Securely=x", b"a=1; Securely=x; Secure"),
    ],
)
def test_secure_cookie(value, expected):
    assert secure_cookie(value) == expected


def test_minimum_version_refuses_older_clients(tmp_path, pki):
    ca, server = pki
    config = write_config(tmp_path, [], access_log=False)
    tls = {"cert": str(server.cert), "key": str(server.key), "min_version": "1.3"}
    config.write_text(config.read_text().replace("public:\n", f"public:\n    tls: {tls}\n", 1))
    with tiergate_up(config) as gateway:
        old = _client_context(ca)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{gateway.url}/healthz", verify=old)
        assert httpx.get(f"{gateway.url}/healthz", verify=_client_context(ca)).status_code == 200


def _served_serial(url: str, ca) -> int:
    host, port = url.removeprefix("https://").split(":")
    context = _client_context(ca)
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)

    return x509.load_der_x509_certificate(der).serial_number


def test_sighup_reloads_the_certificate_without_dropping_connections(tmp_path):
    ca = TestCA(tmp_path / "pki")
    first = ca.issue("server", "first.test")
    config = write_config(tmp_path, [], access_log=False)
    tls = {"cert": "pki/server.pem", "key": "pki/server.key"}  # relative to the config file
    config.write_text(config.read_text().replace("public:\n", f"public:\n    tls: {tls}\n", 1))
    with tiergate_up(config) as gateway, httpx.Client(verify=_client_context(ca)) as kept:
        assert kept.get(f"{gateway.url}/healthz").status_code == 200
        assert _served_serial(gateway.url, ca) == first.certificate.serial_number
        # A broken pair is refused: the previous certificate stays.
        (tmp_path / "pki" / "server.key").write_text("not a key")
        gateway.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert _served_serial(gateway.url, ca) == first.certificate.serial_number
        second = ca.issue("server", "second.test")
        gateway.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _served_serial(gateway.url, ca) != second.certificate.serial_number:
            assert time.monotonic() < deadline, "the new certificate was not served"
            time.sleep(0.1)
        # The connection opened before the reload is still the same one, still served.
        response = kept.get(f"{gateway.url}/healthz")
        assert response.status_code == 200
        assert kept._transport._pool.connections[0].info()  # still pooled, never reopened
        assert len(kept._transport._pool.connections) == 1
        assert gateway.proc.poll() is None
    log = gateway.log.read_text()
    assert "certificate not reloaded, still serving the previous one" in log
    assert "certificate reloaded from" in log


def test_admin_listener_tls(tmp_path, pki):
    ca, server = pki
    config = write_config(tmp_path, [], access_log=False)
    tls = {"cert": str(server.cert), "key": str(server.key)}
    config.write_text(config.read_text().replace("admin:\n", f"admin:\n    tls: {tls}\n", 1))
    port = yaml.safe_load(config.read_text())["listeners"]["admin"]["port"]
    with tiergate_up(config):
        response = httpx.get(f"https://127.0.0.1:{port}/metrics", verify=_client_context(ca))
        assert response.status_code == 200
        assert "tiergate_requests" in response.text
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_unloadable_certificate_stops_start_up(tmp_path):
    config = write_config(tmp_path, [], access_log=False)
    (tmp_path / "cert.pem").write_text("not a certificate")
    tls = {"cert": "cert.pem", "key": "missing.key"}
    config.write_text(config.read_text().replace("public:\n", f"public:\n    tls: {tls}\n", 1))
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "up", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
    )
    assert result.returncode == 2, result.stderr
    assert (
        f"{config.resolve()}: listeners.public.tls.cert: cannot load the certificate"
        in result.stderr
    )


def test_client_cert_needs_a_ca(tmp_path):
    tls = {"cert": "c.pem", "key": "k.pem", "client_cert": "required"}
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, [], listeners={"public": {"tls": tls}})
    assert "listeners.public.tls.client_cert: client certificates need client_ca" in str(
        error.value
    )
