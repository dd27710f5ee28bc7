"""Revocation holds as long as any node could still accept the token: past `exp` by the
largest jwt leeway, and at once on every node's introspection endpoint (which reads the
shared registry, not the node's copy). Two gateway apps share one registry and one Redis,
as the cluster deployment does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from gateway.oauth.revocations import KEPT_AFTER_EXP
from gateway.policies.jwt import REVOKED, IssuerConfig
from tests.limits.redis_server import RedisServer
from tests.oauth.helpers import provision_client, token_request
from tests.support.auth_estate import identity_gateway
from tests.support.identity import running_gateway
from tests.support.tokens import BUILTIN_ISSUER, claims, sign

ORDERS = "/experience/orders/v1"


def test_revoked_ids_are_kept_at_least_as_long_as_the_largest_leeway_allowed():
    bound = [m.le for m in IssuerConfig.model_fields["leeway"].metadata if hasattr(m, "le")]
    assert bound and bound[0] <= KEPT_AFTER_EXP


def test_a_revoked_token_stays_refused_within_the_leeway_after_exp(tmp_path, httpbin_url):
    apis = [
        {
            "name": "orders",
            "upstream": {"targets": [httpbin_url]},
            "policies": {"jwt": {"issuers": [{"builtin": True, "leeway": 30}]}},
        }
    ]
    with identity_gateway(tmp_path, apis) as gw:

        async def create(registry):
            client, secret = await registry.create_client("leeway", ["orders:read"])
            return client.client_id, secret

        client = gw.registry(create)
        exp = int(time.time()) + 2
        token = sign(gw.key, claims(BUILTIN_ISSUER, exp=exp, client_id=client[0]))
        url = f"{gw.url}{ORDERS}/get"
        bearer = {"authorization": f"Bearer {token}"}
        assert httpx.get(url, headers=bearer).status_code == 200
        revoked = httpx.post(f"{gw.url}/oauth/revoke", data={"token": token}, auth=client)
        assert revoked.status_code == 200
        assert httpx.get(url, headers=bearer).status_code == 401
        # Past exp, within the 30 s leeway: the policy still takes the token as unexpired,
        # so the revocation must still be known (the cache refreshes every 0.5 s here).
        time.sleep(max(0.0, exp - time.time()) + 1.5)
        r = httpx.get(url, headers=bearer)
        assert r.status_code == 401, r.text
        assert r.json()["detail"] == REVOKED


@pytest.fixture
def two_nodes(tmp_path, registry_url) -> Iterator[tuple[object, object]]:
    """Nodes A and B on one registry and one Redis; revocation caches refresh only every
    5 s (the largest interval allowed), so B's cache is stale right after a revoke on A."""
    with ExitStack() as stack:
        redis = RedisServer(tmp_path).start()
        stack.callback(redis.stop)
        shared = {
            "limits_storage": redis.url,
            "rate_limiting": {"key_prefix": "t" + uuid.uuid4().hex[:8]},
            "oauth": {"refresh_interval": 5},
        }
        nodes = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            nodes.append(
                stack.enter_context(running_gateway(tmp_path / name, registry_url, **shared))
            )
        yield nodes[0], nodes[1]


def test_introspection_on_another_node_is_inactive_right_after_a_revoke(two_nodes, registry_url):
    a, b = two_nodes
    client = provision_client(registry_url, f"nodes-{uuid.uuid4().hex[:8]}", ["a"])
    token = token_request(a.url, *client).json()["access_token"]
    introspect = f"{b.url}/oauth/introspect"
    assert httpx.post(introspect, data={"token": token}, auth=client).json()["active"] is True
    assert httpx.post(f"{a.url}/oauth/revoke", data={"token": token}, auth=client).is_success
    assert httpx.post(introspect, data={"token": token}, auth=client).json() == {"active": False}
    # Revoking again through B is idempotent (RFC 7009 §2.2) and B answers from the registry.
    assert httpx.post(f"{b.url}/oauth/revoke", data={"token": token}, auth=client).is_success
    assert httpx.post(introspect, data={"token": token}, auth=client).json() == {"active": False}
