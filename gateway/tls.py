"""TLS on the listeners: one SSLContext per listener, built at start-up and reloaded in
place on SIGHUP, and what a TLS listener adds to responses (HSTS, Secure cookies).

Reloading calls `load_cert_chain` on the live context: handshakes after it use the
new certificate, connections already open keep theirs, nothing is dropped. The files
are first loaded into a scratch context, so a half-written or mismatched pair is
refused and the listener keeps serving the previous certificate.
"""

from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Any

from gateway.config.errors import ConfigError
from gateway.config.tls import ListenerTLSConfig
from gateway.types import ASGIApp, Message, Receive, Scope, Send

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
CANNOT_LOAD_PAIR = "cannot load the certificate {cert} with its key {key}: {error}"
CANNOT_LOAD_CA = "cannot load the CA bundle {path}: {error}"
RELOADED = "tiergate: {where}: certificate reloaded from {cert}"
NOT_RELOADED = (
    "tiergate: {where}: certificate not reloaded, still serving the previous one: {error}"
)
# ASGI TLS extension: tls_version as the TLS protocol's number.
_VERSION_NUMBERS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class ListenerTLS:
    """The TLS side of one listener (`where` is its config path, for messages)."""

    def __init__(self, config: ListenerTLSConfig, base: Path, where: str, source: str) -> None:
        self.config = config
        self.where = where
        self.source = source
        self.cert = base / config.cert
        self.key = base / config.key
        self.client_ca = base / config.client_ca if config.client_ca else None
        self.context = self._new_context()

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[self.config.min_version]
        context.set_alpn_protocols(["http/1.1"])
        self._load_pair(context)
        if self.client_ca is not None:
            try:
                context.load_verify_locations(cafile=str(self.client_ca))
            except (OSError, ssl.SSLError) as error:
                problem = CANNOT_LOAD_CA.format(path=self.client_ca, error=_reason(error))
                raise ConfigError(self.source, [(f"{self.where}.client_ca", problem)]) from None
            mode = self.config.client_mode
            context.verify_mode = ssl.CERT_REQUIRED if mode == "required" else ssl.CERT_OPTIONAL
        return context

    def _load_pair(self, context: ssl.SSLContext) -> None:
        try:
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as error:
            problem = CANNOT_LOAD_PAIR.format(cert=self.cert, key=self.key, error=_reason(error))
            raise ConfigError(self.source, [(f"{self.where}.cert", problem)]) from None

    def reload(self) -> bool:
        """Load the files again into the live context; False (and a message) if they fail."""
        try:
            self._new_context()  # the whole configuration must load before the live one changes
            self._load_pair(self.context)
            if self.client_ca is not None:
                self.context.load_verify_locations(cafile=str(self.client_ca))
        except (ConfigError, OSError, ssl.SSLError) as error:
            print(NOT_RELOADED.format(where=self.where, error=error), file=sys.stderr, flush=True)
            return False
        print(RELOADED.format(where=self.where, cert=self.cert), file=sys.stderr, flush=True)
        return True


def _reason(error: Exception) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error)
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


def tls_extension(transport: Any) -> dict[str, Any] | None:
    """The ASGI TLS extension (`scope["extensions"]["tls"]`) for a connection, or None."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    peer = ssl_object.getpeercert(binary_form=True)
    extension: dict[str, Any] = {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(peer)] if peer else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _VERSION_NUMBERS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "client_cert_der": peer,  # the verified leaf as DER, parsed once by whoever needs it
    }
    if peer:
        from cryptography import x509

        name = x509.load_der_x509_certificate(peer).subject.rfc4514_string()
        extension["client_cert_name"] = name
    return extension


class SecureResponses:
    """A TLS listener's responses: Strict-Transport-Security when configured, and
    `Secure` on every cookie set without it (a cookie sent over HTTPS must not travel
    back over plain HTTP; `__Secure-`/`__Host-` cookies and `SameSite=None` need it)."""

    def __init__(self, app: ASGIApp, hsts: int | None) -> None:
        self.app = app
        self.hsts = (b"strict-transport-security", f"max-age={hsts}".encode()) if hsts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, secure_cookie(v) if k == b"set-cookie" else v)
                    for k, v in message.get("headers", ())
                    if not (self.hsts and k == b"strict-transport-security")
                ]
                if self.hsts:
                    headers.append(self.hsts)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secured)


def secure_cookie(value: bytes) -> bytes:
    """A Set-Cookie value with the Secure attribute (added when missing)."""
    attributes = value.split(b";")[1:]
    if any(a.strip(b" \t").lower() == b"secure" for a in attributes):
        return value
    return value.rstrip(b" \t;") + b"; Secure"


__all__ = ["ListenerTLS", "SecureResponses", "secure_cookie", "tls_extension"]
