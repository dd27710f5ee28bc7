"""Micro-benchmark: CPU µs to split and decode one access token on a jwt-policy cache miss,
the policy's own strict parser vs pyjwt's, next to the RS256 signature check itself.

    .venv/bin/python bench/jwt_parse.py [--n 20000]

Both parsers refuse the same things (non-canonical base64url, non-JSON, non-objects);
pyjwt's checks canonical base64url by re-encoding each segment, the policy's by looking
at each segment's last character. The ratio is why the policy parses tokens itself
(docs/policies-auth.md).
"""

from __future__ import annotations

import argparse
import time
import timeit
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.policies import jwt as policy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    n = parser.parse_args().n
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": "http://bench.tiergate",
        "sub": "c1",
        "aud": "tiergate",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "client_id": "c1",
        "scope": "orders:read orders:write",
        "tg_kind": "client",
    }
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "k1", "typ": "at+jwt"})
    parsed = policy._parse(token)
    jws = jwt.PyJWS()
    rs256 = jws.get_algorithm_by_name("RS256")
    public = private.public_key()
    cases = {
        "policy _parse (strict)": (lambda: policy._parse(token), n),
        "pyjwt PyJWS._load (strict)": (lambda: jws._load(token), n),
        "RS256 signature check": (
            lambda: rs256.verify(parsed.signing_input, public, parsed.signature),
            n // 10,
        ),
    }
    results = {}
    for name, (call, number) in cases.items():
        best = min(timeit.repeat(call, number=number, repeat=5)) / number
        results[name] = best * 1e6
        print(f"{name:30s} {results[name]:7.1f} µs")
    ratio = results["pyjwt PyJWS._load (strict)"] / results["policy _parse (strict)"]
    print(f"pyjwt's parse / the policy's: {ratio:.1f}x")


if __name__ == "__main__":
    main()
