"""Real keys, real signed JWTs and a real external IdP (discovery + JWKS on uvicorn)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BUILTIN_ISSUER = "http://gateway.test"  # `oauth.issuer` of the gateways under test


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def jwk(self) -> dict[str, Any]:
        algorithm = (
            jwt.algorithms.RSAAlgorithm if self.alg[0] in "RP" else jwt.algorithms.ECAlgorithm
        )
        data = json.loads(algorithm.to_jwk(self.public))
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str, alg: str = "RS256") -> SigningKey:
    return SigningKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def claims(iss: str, aud: str | None = "tiergate", lifetime: float = 300, **extra: Any) -> dict:
    now = int(time.time())
    out: dict[str, Any] = {
        "iss": iss,
        "sub": "client-1",
        "client_id": "client-1",
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "scope": "orders:read",
    }
    if aud is not None:
        out["aud"] = aud
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def sign(key: SigningKey, payload: dict, typ: str | None = "at+jwt", **headers: Any) -> str:
    header = {"kid": key.kid, **headers}
    if typ is not None:
        header["typ"] = typ
    return jwt.encode(payload, key.private, algorithm=key.alg, headers=header)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, payload: dict, secret: bytes | None = None) -> str:
    """A token pyjwt would refuse to make: alg none, or HMAC keyed with a public key."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


class IdP:
    """A real OIDC provider's public face: discovery and JWKS, with a fetch counter."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.down = False
        self.url = ""  # set once served
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
            ]
        )

    @property
    def issuer(self) -> str:
        return self.url

    async def _discovery(self, request: Request) -> Response:
        self.discovery_fetches += 1
        if self.down:
            return Response(status_code=503)
        return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"})

    async def _jwks(self, request: Request) -> Response:
        self.jwks_fetches += 1
        if self.down:
            return Response(status_code=503)
        return JSONResponse({"keys": [k.jwk() for k in self.keys]})
