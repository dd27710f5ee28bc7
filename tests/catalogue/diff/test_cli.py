"""`tiergate diff` as a process: what it prints and its exit codes
(0 compatible or no change, 1 breaking, 2 a file it cannot compare)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.catalogue.diff.test_operations import BASE, changed


def tiergate_diff(tmp_path: Path, old: Path, new: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "diff", str(old), str(new), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        # Hermetic: a TIERGATE_CONFIG in the shell must not pick the dependants.
        env={k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")},
    )


def write(tmp_path: Path, name: str, document: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def run_cli(tmp_path: Path, new: dict, *extra: str) -> subprocess.CompletedProcess:
    old_file, new_file = write(tmp_path, "old.yaml", BASE), write(tmp_path, "new.yaml", new)
    return tiergate_diff(tmp_path, old_file, new_file, *extra)


def test_cli_exit_codes_and_dependants(tmp_path, estate):
    result = run_cli(
        tmp_path,
        changed(lambda d: d["paths"].pop("/orders/{order_id}")),
        "--config",
        str(estate),
        "--api",
        "stock",
    )
    assert result.returncode == 1, result.stderr
    assert "BREAKING  GET /orders/{order_id}: operation removed" in result.stdout
    assert "APIs that depend on it: orders-proc, shop" in result.stdout
    result = run_cli(tmp_path, copy.deepcopy(BASE))
    assert result.returncode == 0
    assert "no breaking changes" in result.stdout


def test_json_lists_the_changes_with_the_same_exit_codes(tmp_path, estate):
    removed = changed(lambda d: d["paths"].pop("/orders/{order_id}"))
    result = run_cli(tmp_path, removed, "--json", "--config", str(estate), "--api", "stock")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["api"] == "stock" and report["breaking"] == 1
    assert report["dependants"] == ["orders-proc", "shop"]
    assert {
        "breaking": True,
        "where": "GET /orders/{order_id}",
        "message": "operation removed",
    } in (report["changes"])
    result = run_cli(tmp_path, copy.deepcopy(BASE), "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["changes"] == []


def test_compatible_changes_are_listed_and_exit_0(tmp_path):
    def add_optional(d):
        d["paths"]["/orders"]["get"]["parameters"].append(
            {"name": "region", "in": "query", "schema": {"type": "string"}}
        )

    result = run_cli(tmp_path, changed(add_optional))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok        GET /orders: new optional query parameter 'region'" in result.stdout
    assert "no breaking changes; 1 compatible change(s)" in result.stdout


def test_narrowed_pattern_exits_1(tmp_path):
    """The audit's case: a cursor pattern cut from 15 to 8 hex digits."""

    def cursor(pattern):
        def mutate(d):
            d["paths"]["/orders"]["get"]["parameters"].append(
                {"name": "cursor", "in": "query", "schema": {"type": "string", "pattern": pattern}}
            )

        return changed(mutate)

    old = write(tmp_path, "old.yaml", cursor("^[0-9a-f]{1,15}$"))
    new = write(tmp_path, "new.yaml", cursor("^[0-9a-f]{1,8}$"))
    result = tiergate_diff(tmp_path, old, new)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BREAKING  GET /orders: query parameter 'cursor': pattern narrowed" in result.stdout
    assert tiergate_diff(tmp_path, new, old).returncode == 0


def test_added_scope_exits_1(tmp_path):
    def scopes(*names):
        def mutate(d):
            d["components"]["securitySchemes"] = {
                "oauth": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "/token", "scopes": {}}},
                }
            }
            d["security"] = [{"oauth": list(names)}]

        return changed(mutate)

    old = write(tmp_path, "old.yaml", scopes("orders:read"))
    new = write(tmp_path, "new.yaml", scopes("orders:read", "orders:admin"))
    result = tiergate_diff(tmp_path, old, new)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "now needs scope(s) orders:admin" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not: [valid", "bad.yaml is not valid YAML or JSON"),
        ("just: a mapping", "bad.yaml is not an OpenAPI 3 document"),
        ("- a list", "bad.yaml is not an OpenAPI 3 document"),
        (
            "openapi: 3.1.0\ninfo: {title: x}\npaths: {}",
            'bad.yaml is not a valid OpenAPI document: at info: "version" is a required property',
        ),
        (
            "openapi: 3.9.0\ninfo: {title: x, version: '1'}\npaths: {}",
            "unsupported OpenAPI version",
        ),
    ],
)
def test_cli_refuses_what_is_not_a_contract(tmp_path, content, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    result = tiergate_diff(tmp_path, write(tmp_path, "good.yaml", BASE), bad)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_missing_or_unreadable_file_exits_2(tmp_path):
    good = write(tmp_path, "good.yaml", BASE)
    result = tiergate_diff(tmp_path, tmp_path / "missing.yaml", good)
    assert result.returncode == 2
    assert "tiergate diff: cannot read" in result.stderr and "missing.yaml" in result.stderr
    assert "No such file or directory" in result.stderr
    result = tiergate_diff(tmp_path, good, tmp_path)  # a directory
    assert result.returncode == 2 and "cannot read" in result.stderr
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00openapi")
    result = tiergate_diff(tmp_path, good, binary)
    assert result.returncode == 2 and "not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr
