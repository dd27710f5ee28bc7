"""`tiergate up` without TIERGATE_ADMIN_TOKEN: the admin API is on with a token generated
at first start into var/admin-token (0600), printed once and reused; the CLI reads it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from gateway.admin.token import ensure_admin_token, stored_admin_token
from gateway.config.loader import validate_config
from tests.support.configs import write_contract
from tests.support.environment import clean_environ
from tests.support.processes import tiergate_up, write_config


def tiergate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_environ(PYTHONPATH=str(Path(__file__).resolve().parents[2])),
        timeout=60,
    )


def test_up_without_a_token_generates_stores_and_reuses_one(tmp_path):
    contract = write_contract(tmp_path, "ledger", ["GET /entries"], tier="system")
    api = {"name": "ledger", "tier": "system", "contract": contract}
    config = write_config(tmp_path, [{**api, "upstream": {"targets": ["http://127.0.0.1:9"]}}])
    admin = yaml.safe_load(config.read_text())["listeners"]["admin"]
    admin_url = f"http://127.0.0.1:{admin['port']}"
    token_file = tmp_path / "var" / "admin-token"
    with tiergate_up(config) as first:
        token = token_file.read_text().strip()
        assert len(token) >= 40
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{admin_url}/admin/plans", headers=auth).status_code == 200
        assert httpx.get(f"{admin_url}/admin/plans").status_code == 401
        # the catalogue's internal view: a system API is listed to the admin token only
        listed = httpx.get(f"{first.url}/catalogue/apis", headers=auth).json()
        assert "ledger" in json.dumps(listed)
        assert "ledger" not in json.dumps(httpx.get(f"{first.url}/catalogue/apis").json())
        # the CLI in the same folder picks the stored token up
        usage = tiergate("usage", "acme", "--config", str(config), cwd=tmp_path)
        assert usage.returncode == 0, usage.stderr
        assert usage.stdout.startswith("consumer acme")
    assert first.log.read_text().count(token) == 1  # printed once
    assert "Warning" not in first.log.read_text()
    with tiergate_up(config) as second:
        assert token_file.read_text().strip() == token  # reused
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{admin_url}/admin/plans", headers=auth).status_code == 200
    assert token not in second.log.read_text()  # not printed again


def test_a_configured_token_wins_and_nothing_is_written(tmp_path):
    config = validate_config({"admin_token": "from-config"}, tmp_path / "t.yaml", {})
    path = tmp_path / "var" / "admin-token"
    assert ensure_admin_token(config, path).admin_token == "from-config"
    assert not path.exists()


def test_an_existing_file_is_reused_without_printing(tmp_path, capsys):
    path = tmp_path / "var" / "admin-token"
    path.parent.mkdir()
    path.write_text("stored-token\n")
    config = validate_config({}, tmp_path / "t.yaml", {})
    assert ensure_admin_token(config, path).admin_token == "stored-token"
    assert capsys.readouterr().out == ""
    path.write_text("\n")  # an empty file is no token
    assert stored_admin_token(path) is None


def test_usage_without_any_token_says_how_to_get_one(tmp_path):
    config = write_config(tmp_path, [])
    result = tiergate("usage", "acme", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "Illegal header" not in result.stderr and "Traceback" not in result.stderr
    assert "no admin token: set TIERGATE_ADMIN_TOKEN" in result.stderr
    assert "var/admin-token" in result.stderr


def test_an_empty_file_is_replaced_by_a_token_and_made_private(tmp_path, capsys):
    path = tmp_path / "var" / "admin-token"
    path.parent.mkdir()
    path.write_text("")
    path.chmod(0o644)
    token = ensure_admin_token(validate_config({}, tmp_path / "t.yaml", {}), path).admin_token
    assert token and path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert capsys.readouterr().out.count(token) == 1
