"""Two `tiergate up --workers 2` processes sharing one Redis, one of them under load:
a plan limit L holds exactly across the four workers (L of 5L concurrent requests)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml

from tests.limits.redis_server import RedisServer
from tests.limits.support import UPSTREAM, burst
from tests.support.processes import tiergate_up, write_config

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "workers-" + os.urandom(8).hex()
PLAN_LIMIT = 30


@pytest.fixture
def two_nodes(tmp_path) -> Iterator[list[dict]]:
    redis = RedisServer(tmp_path).start()
    prefix = "t" + os.urandom(6).hex()
    registry = f"sqlite:///{tmp_path / 'registry.db'}"  # one file, shared by both nodes
    with ExitStack() as stack:
        stack.callback(redis.stop)
        nodes = []
        for name in ("a", "b"):
            directory = tmp_path / name
            directory.mkdir()
            apis = [
                {
                    "name": "partner",
                    "base_path": "/partner",
                    "upstream": {"targets": [UPSTREAM]},
                    "policies": {"api-key": {}, "rate-limit": {}},
                },
                {"name": "busy", "base_path": "/busy", "upstream": {"targets": [UPSTREAM]}},
            ]
            config = write_config(
                directory,
                apis,
                # Exactness, not timeouts: a loaded machine may answer late (fail-open).
                rate_limiting={"key_prefix": prefix, "storage_timeout": 10},
                plans={"trial": {"limits": [f"{PLAN_LIMIT}/minute"]}},
                access_log=False,
                registry_url=registry,
                limits_storage=redis.url,
                admin_token=ADMIN_TOKEN,
            )
            admin = yaml.safe_load(config.read_text())["listeners"]["admin"]["port"]
            env = {"PYTHONPATH": str(ROOT)}  # the test upstream lives in tests/
            process = stack.enter_context(
                tiergate_up(config, timeout=30, env=env, args=("--workers", "2"))
            )
            nodes.append({"url": process.url, "admin": f"http://127.0.0.1:{admin}"})
        yield nodes


def _load(url: str, count: int) -> subprocess.Popen:
    """Keeps a node busy: `count` requests, 16 at a time, from another process."""
    lines = [f'url = "{url}"\noutput = "/dev/null"' for _ in range(count)]
    process = subprocess.Popen(
        ["curl", "--silent", "--parallel", "--parallel-max", "16", "--config", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write("\n".join(lines) + "\n")
    process.stdin.close()
    return process


def test_two_nodes_with_two_workers_each_admit_exactly_the_plan_limit(two_nodes):
    a, b = two_nodes
    with httpx.Client(timeout=10) as http:
        created = http.post(
            f"{a['admin']}/admin/keys",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"consumer": "acme", "plan": "trial", "apis": ["partner"]},
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        load = _load(f"{a['url']}/busy/x", 100_000)
        try:
            busy = http.get(f"{a['url']}/busy/x")
            assert busy.status_code == 200
            urls = [f"{a['url']}/partner/x", f"{b['url']}/partner/x"]
            replies = burst(urls, 5 * PLAN_LIMIT, headers={"X-API-Key": key})
            assert load.poll() is None, "the load ended before the burst did"
        finally:
            load.kill()
            load.wait()
    codes = [r.status_code for r in replies]
    assert codes.count(200) == PLAN_LIMIT, sorted(set(codes))
    assert codes.count(429) == 4 * PLAN_LIMIT
    refused = [r for r in replies if r.status_code == 429]
    assert all(r.headers["content-type"] == "application/problem+json" for r in refused)
    assert all(r.headers["x-ratelimit-remaining"] == "0" for r in refused)
