"""Schemathesis runs openapi/gateway/admin.yaml against the running admin listener."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.identity import ADMIN_TOKEN, running_gateway

CONTRACT = Path(__file__).resolve().parents[2] / "openapi" / "gateway" / "admin.yaml"


def test_admin_api_conforms_to_its_contract(tmp_path):
    apis = [{"name": "partner", "upstream": {"targets": ["http://127.0.0.1:9"]}}]
    with running_gateway(tmp_path, f"sqlite:///{tmp_path}/r.db", apis) as gw:
        done = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "run", str(CONTRACT),
                "--url", gw.admin_url,
                "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
                "--checks", "all",
                "--max-examples", "5",
                "--workers", "1",
                "--seed", "1",
                "--request-timeout", "10",
                "--max-time", "40",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
