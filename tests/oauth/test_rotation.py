"""Signing-key rotation with overlap: old tokens keep verifying, the new key signs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import jwt

from tests.oauth.helpers import provision_client, token_request, verify_with_served_jwks
from tests.support.identity import running_gateway


def test_rotation_keeps_the_old_key_published_until_its_tokens_expire(tmp_path, registry_url):
    with running_gateway(tmp_path, registry_url) as gw:
        client = provision_client(registry_url, f"rot-{os.getpid()}-{time.time_ns()}", ["a"])
        old_token = token_request(gw.url, *client).json()["access_token"]
        old_kid = jwt.get_unverified_header(old_token)["kid"]

        config = tmp_path / "tiergate.yaml"
        config.write_text("oauth: {key_activation_delay: 0}\n")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "signing-keys",
                "rotate",
                "--config",
                str(config),
            ],
            env={**os.environ, "TIERGATE_REGISTRY_URL": registry_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

        deadline = time.monotonic() + 5  # the node refreshes its keys every 0.5 s here
        while True:
            new_token = token_request(gw.url, *client).json()["access_token"]
            new_kid = jwt.get_unverified_header(new_token)["kid"]
            if new_kid != old_kid:
                break
            assert time.monotonic() < deadline, "the new key did not start signing"
            time.sleep(0.2)

        kids = {key["kid"] for key in httpx.get(f"{gw.url}/.well-known/jwks.json").json()["keys"]}
        assert {old_kid, new_kid} <= kids
        assert verify_with_served_jwks(gw.url, old_token)["client_id"] == client[0]
        assert verify_with_served_jwks(gw.url, new_token)["client_id"] == client[0]
        introspected = httpx.post(
            f"{gw.url}/oauth/introspect", data={"token": old_token}, auth=client
        ).json()
        assert introspected["active"] is True
        assert old_kid in gw.gateway.services.issuer.public_keys()
