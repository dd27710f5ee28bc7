"""https:// targets go over TLS with certificate verification (the aiohttp transport)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.processes import tiergate_up, write_config
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tiergate test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_target_is_verified_and_used(tmp_path):
    cert, key = self_signed(tmp_path)
    with serve_asgi(echo, ssl_certfile=str(cert), ssl_keyfile=str(key)) as upstream:
        target = upstream.url.replace("http://", "https://")
        api = {"name": "secure", "base_path": "/secure", "upstream": {"targets": [target]}}
        # Not trusted: refused, as any unverifiable certificate must be.
        untrusted = make_config(tmp_path, [dict(api, upstream={**api["upstream"], "retries": 0})])
        with serve_asgi(build_gateway(untrusted)) as gw:
            assert httpx.get(f"{gw.url}/secure/x").status_code == 502
        # Trusted through the standard OpenSSL variable: forwarded over TLS.
        config = write_config(tmp_path, [api], access_log=False)
        with tiergate_up(config, env={"SSL_CERT_FILE": str(cert)}) as gateway:
            response = httpx.get(f"{gateway.url}/secure/x?y=1")
    assert response.status_code == 200, response.text
    assert response.json()["path"] == "/x"
    assert response.json()["query"] == "y=1"
