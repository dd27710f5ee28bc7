"""Reloads under wrk load: `tiergate up` (pinned to the SUT core) forwarding to nginx,
wrk on 32 keep-alive connections, once without reloads and once with 20 reloads through
the admin API, every other one with a config error. Prints requests, errors (socket
errors plus non-2xx) and the throughput ratio of the two runs.

    .venv/bin/python bench/reload.py [--duration 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml
from harness import LOAD_CORE, SUT_CORE, Process, WrkResult, free_port, run_wrk, start_nginx
from run import REPO, _check, _upstream_body
from scenarios import API_PREFIX, CONTRACT, UPSTREAM_PATH, gateway_config, scenarios

TOKEN = "bench-reload-token"
RELOADS = 20


def _reload(admin: str) -> int:
    request = urllib.request.Request(
        f"{admin}/admin/config/reload",
        method="POST",
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _variants(config: dict, count: int) -> list[dict]:
    """Alternately a valid change (the API's limit) and an error (an unknown policy)."""
    variants = []
    for index in range(count):
        changed = json.loads(json.dumps(config))
        api = changed["apis"][0]
        if index % 2:
            api["policies"]["no-such-policy"] = {}
        else:
            api["policies"]["rate-limit"] = {"anonymous": [f"{10**9 + index}/minute"]}
        variants.append(changed)
    return variants


def main() -> int:
    options = argparse.ArgumentParser()
    options.add_argument("--duration", type=float, default=8)
    options.add_argument("--connections", type=int, default=32)
    args = options.parse_args()
    if shutil.which("wrk") is None or shutil.which("nginx") is None:
        print("needs wrk and nginx: apt-get install wrk nginx-light", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tiergate-reload-") as tmp:
        workdir = Path(tmp)
        upstream_port = free_port()
        upstream = start_nginx("upstream", _upstream_body(upstream_port, "{}"), workdir, LOAD_CORE)
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        scenario = next(s for s in scenarios(upstream_url) if s.name == "tiergate")
        port, admin_port = free_port(), free_port()
        (workdir / "contract.yaml").write_text(CONTRACT)
        config = gateway_config(scenario, upstream_url, port, admin_port, str(workdir))
        config["admin_token"] = TOKEN
        config_file = workdir / "tiergate.yaml"
        config_file.write_text(yaml.safe_dump(config))
        argv = [sys.executable, "-m", "gateway.cli", "up", "--config", str(config_file)]
        gateway = Process("tiergate", argv, SUT_CORE, workdir / "stdout.log", cwd=REPO)
        url = f"http://127.0.0.1:{port}{API_PREFIX}{UPSTREAM_PATH}"
        admin = f"http://127.0.0.1:{admin_port}"
        try:
            _check(gateway, url)
            run_wrk(url, 2, args.connections)  # warm-up
            steady = run_wrk(url, args.duration, args.connections)
            outcomes: list[int] = []
            loaded: list[WrkResult] = []
            load = threading.Thread(
                target=lambda: loaded.append(run_wrk(url, args.duration, args.connections))
            )
            load.start()
            pause = args.duration * 0.8 / RELOADS
            time.sleep(args.duration * 0.1)
            for variant in _variants(config, RELOADS):
                config_file.write_text(yaml.safe_dump(variant))
                outcomes.append(_reload(admin))
                time.sleep(pause)
            load.join()
        finally:
            gateway.stop()
            upstream.stop()
    during = loaded[0]
    print(f"reloads: {outcomes.count(200)} applied (200), {outcomes.count(422)} refused (422)")
    for name, result in (("steady", steady), ("20 reloads", during)):
        print(
            f"{name:11} {result.requests:8d} requests  {result.rps:9.0f} req/s  "
            f"p99 {result.p99_ms:6.1f} ms  errors (socket + non-2xx) {result.errors}"
        )
    print(f"throughput during reloads / steady: {during.rps / steady.rps:.2f}")
    return 0 if during.errors == 0 and outcomes == [200, 422] * (RELOADS // 2) else 1


if __name__ == "__main__":
    raise SystemExit(main())
