"""Two `tiergate up` processes sharing one PostgreSQL registry and one Redis (issue 5,
"Done when"): a partner key made through node A works on both nodes; its plan's limit
holds exactly across both; revoked through node A, node B refuses it within 5 s."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from tests.limits.redis_server import RedisServer
from tests.limits.support import UPSTREAM, burst
from tests.support.databases import postgres_database
from tests.support.processes import tiergate_up, write_config

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "two-nodes-" + os.urandom(8).hex()
PLAN_LIMIT = 40
PARTNER = "/experience/partner/v1"


@contextmanager
def node(tmp_path: Path, name: str, registry: str, redis: str, prefix: str) -> Iterator[dict]:
    """One gateway process (`tiergate up`) with its own config file and ports; the shared
    stores come from the environment, as in deploy/cluster.sh."""
    directory = tmp_path / name
    directory.mkdir()
    api = {
        "name": "partner",
        "upstream": {"targets": [UPSTREAM]},
        # The api-key policy's defaults: cache_ttl 5 s is the revocation delay.
        "policies": {"api-key": {}, "rate-limit": {}},
    }
    config = write_config(
        directory,
        [api],
        # Exactness, not timeouts: a loaded machine may answer a 1 s storage call late,
        # and fail-open would then serve unlimited (docs/rate-limits.md).
        rate_limiting={"key_prefix": prefix, "storage_timeout": 10},
        plans={"trial": {"limits": [f"{PLAN_LIMIT}/minute"]}},
        access_log=False,
    )
    env = {
        "TIERGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "TIERGATE_REGISTRY_URL": registry,
        "TIERGATE_LIMITS_STORAGE": redis,
        "PYTHONPATH": str(ROOT),  # the test upstream lives in tests/
    }
    admin = yaml.safe_load(config.read_text())["listeners"]["admin"]["port"]
    with tiergate_up(config, timeout=30, env=env) as process:
        yield {"url": process.url, "admin": f"http://127.0.0.1:{admin}"}


@pytest.fixture
def two_nodes(tmp_path) -> Iterator[tuple[dict, dict]]:
    with ExitStack() as stack:
        registry = stack.enter_context(postgres_database("twonodes"))
        redis = RedisServer(tmp_path).start()
        stack.callback(redis.stop)
        prefix = "t" + os.urandom(6).hex()
        a = stack.enter_context(node(tmp_path, "a", registry, redis.url, prefix))
        b = stack.enter_context(node(tmp_path, "b", registry, redis.url, prefix))
        yield a, b


def test_a_key_works_on_both_nodes_shares_its_plan_limit_and_is_revoked_on_both(two_nodes):
    a, b = two_nodes
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(timeout=10) as http:
        created = http.post(
            f"{a['admin']}/admin/keys",
            headers=admin,
            json={"consumer": "acme", "plan": "trial", "apis": ["partner"]},
        )
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["id"]

        # Created through A, known to B: both serve it, under the key's plan.
        for gateway in (a, b):
            r = http.get(f"{gateway['url']}{PARTNER}/x", headers={"X-API-Key": key})
            assert r.status_code == 200, r.text
            assert r.headers["ratelimit-policy"] == f'"trial/minute";q={PLAN_LIMIT};w=60'

        # The plan's limit is one count in Redis: a burst split across both nodes admits
        # exactly what the two requests above left of it.
        urls = [f"{a['url']}{PARTNER}/x", f"{b['url']}{PARTNER}/x"]
        replies = burst(urls, 200, headers={"X-API-Key": key})
        codes = [r.status_code for r in replies]
        assert codes.count(200) == PLAN_LIMIT - 2, sorted(set(codes))
        assert codes.count(429) == 200 - (PLAN_LIMIT - 2)
        # Each node decided half of the burst; separate counters would admit up to
        # PLAN_LIMIT - 1 on each node.
        assert [sum(r.url == url for r in replies) for url in urls] == [100, 100]

        revoked = http.post(f"{a['admin']}/admin/keys/{key_id}/revoke", headers=admin)
        assert revoked.status_code == 200, revoked.text
        revoked_at = time.monotonic()
        assert revoked.json()["state"] == "revoked", revoked.json()
        while True:  # B has the key cached (429 while limited); it must refuse it in 5 s
            r = http.get(f"{b['url']}{PARTNER}/x", headers={"X-API-Key": key})
            delay = time.monotonic() - revoked_at
            if r.status_code == 401:
                break
            assert r.status_code == 429, r.text
            assert delay <= 5, "node B still accepts the key revoked through node A"
            time.sleep(0.05)
        print(f"revocation through node A refused by node B after {delay:.2f} s")
        assert delay <= 5
        assert "has been revoked" in r.json()["detail"]
        r = http.get(f"{a['url']}{PARTNER}/x", headers={"X-API-Key": key})
        assert r.status_code == 401
