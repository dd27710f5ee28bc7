"""deploy/cluster.sh for real: nginx in front of two `tiergate up` processes sharing
their own Redis (and a PostgreSQL database made for this run), then down again."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.limits.support import burst
from tests.support.servers import free_port


def free_port_range(count: int) -> int:
    """First of `count` consecutive free ports (cluster.sh numbers the APIs' ports up
    from it), below the kernel's ephemeral range so the other free ports of the test,
    which come from that range, cannot land inside it."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(20000, 30000 - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


ROOT = Path(__file__).resolve().parents[2]
NEEDS = ("nginx", "redis-server", "psql", "curl")


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in NEEDS),
    reason=f"needs {', '.join(NEEDS)} (scripts/test-prerequisites.sh installs them)",
)
def test_cluster_up_shares_one_limit_across_nodes_and_goes_down(tmp_path):
    # Three tier APIs of the estate, each its own uvicorn (partner -> order-fulfilment ->
    # inventory), beside the demo echo service.
    # The estate's settings (plans, default policies) with three of its APIs.
    estate = yaml.safe_load((ROOT / "tiergate.yaml").read_text())
    apis = [a for a in estate["apis"] if a["name"] in ("inventory", "order-fulfilment", "partner")]
    for api in apis:
        api["contract"] = str(ROOT / api["contract"])
        api["depends_on"] = [d for d in api.get("depends_on", []) if d != "orders"]
    (tmp_path / "estate.yaml").write_text(yaml.safe_dump({**estate, "apis": apis}))
    lb = free_port()
    nodes = ",".join(f"{free_port()}:{free_port()}" for _ in range(2))
    database = "tg_limits_" + os.urandom(4).hex()
    env = {
        **os.environ,
        "TG_RUN_DIR": str(tmp_path / "run"),
        "TG_SOURCE_CONFIG": str(tmp_path / "estate.yaml"),
        "TG_LB_PORT": str(lb),
        "TG_NODES": nodes,
        "TG_API_PORT": str(free_port_range(8)),
        "TG_REDIS_PORT": str(free_port()),
        "TG_PG_DB": database,
        # Exactness, not timeouts: on a loaded machine a 1 s storage call can time out,
        # and fail-open then serves unlimited (docs/rate-limits.md).
        "TG_STORAGE_TIMEOUT": "10",
        "TG_PYTHON": str(ROOT / ".venv" / "bin" / "python"),
    }
    env.pop("TIERGATE_REGISTRY_URL", None)
    env.pop("TIERGATE_ADMIN_TOKEN", None)  # the cluster default, which the test uses
    script = ["bash", str(ROOT / "deploy" / "cluster.sh")]
    try:
        up = subprocess.run(
            [*script, "up"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{lb}/experience/echo/v1/hi"
        replies = burst([url], 250)
        assert sum(r.status_code == 200 for r in replies) == 100
        assert sum(r.status_code == 429 for r in replies) == 150
        refused = httpx.get(url, timeout=10)
        assert refused.status_code == 429
        assert refused.headers["ratelimit-policy"] == '"anonymous/minute";q=100;w=60'
        # A tier API calls the tier below through the load balancer with the service
        # identity cluster.sh provisioned for it (svc-<api>, kind service).
        admin = f"http://127.0.0.1:{nodes.split(',')[0].split(':')[1]}/admin"
        admin_auth = {"Authorization": "Bearer cluster-admin-token"}
        key = httpx.post(
            f"{admin}/keys",
            headers=admin_auth,
            json={"consumer": "acme", "plan": "gold", "apis": ["partner"]},
            timeout=10,
        ).json()["key"]
        r = httpx.get(
            f"http://127.0.0.1:{lb}/experience/partner/v1/availability?sku=SKU-0001",
            headers={"X-API-Key": key},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json()["availability"][0]["sku"] == "SKU-0001"
        usage = httpx.get(f"{admin}/usage", headers=admin_auth, timeout=10).json()
        issued = {c["client_id"]: c["tokens_issued"] for c in usage["clients"]}
        assert issued["svc-partner"] >= 1 and issued["svc-order-fulfilment"] >= 1, issued
        # Both nodes answered through nginx, each logging its share.
        for index in (1, 2):
            log = (tmp_path / "run" / f"node{index}.log").read_text()
            assert log.count('"api":"echo"') > 50, f"node{index} served too little"
    finally:
        down = subprocess.run(
            [*script, "down"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        subprocess.run(
            [
                "psql",
                "postgresql://postgres@127.0.0.1:5432/postgres",
                "-qc",
                f'DROP DATABASE IF EXISTS "{database}"',
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert not list((tmp_path / "run").glob("*.pid"))
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
