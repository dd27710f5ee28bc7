"""Redocly CLI's recommended ruleset passes on every contract with 0 errors.

The set-up installs the pinned Redocly CLI into .tools/ (scripts/redocly.sh, a
no-op once done); without Node and npm on the machine the tests skip and say so
(`make test` installs them first).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "redocly.sh"
# openapi/components/ holds shared fragments copied into the contracts, not documents
CONTRACTS = sorted(p for p in (ROOT / "openapi").glob("*/*.yaml") if p.parent.name != "components")


@pytest.fixture(scope="module")
def redocly() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: `make test` installs them (scripts/redocly.sh)")
    subprocess.run(["bash", str(SCRIPT), "install"], check=True, timeout=600, cwd=ROOT)


def lint(*files: Path) -> tuple[int, list[dict]]:
    """Exit code, and one JSON report per file (Redocly prints them back to back)."""
    result = subprocess.run(
        ["bash", str(SCRIPT), "lint", "--format=json", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    decoder, text, reports = json.JSONDecoder(), result.stdout.strip(), []
    while text:
        report, end = decoder.raw_decode(text)
        reports.append(report)
        text = text[end:].lstrip()
    return result.returncode, reports


def test_every_contract_passes_with_no_errors(redocly):
    code, reports = lint(*CONTRACTS)
    assert len(reports) == len(CONTRACTS)
    errors = [
        f"{p['location'][0]['source']['ref']} {p['location'][0]['pointer']}: "
        f"{p['ruleId']}: {p['message']}"
        for report in reports
        for p in report["problems"]
        if p["severity"] == "error"
    ]
    assert errors == []
    assert code == 0


def test_an_error_fails_the_lint(redocly, tmp_path):
    """The check can fail: the catalogue's old shape (no security) is an error."""
    document = yaml.safe_load((ROOT / "openapi" / "gateway" / "catalogue.yaml").read_text())
    del document["security"]
    broken = tmp_path / "catalogue.yaml"
    broken.write_text(yaml.safe_dump(document))
    code, reports = lint(broken)
    rules = {p["ruleId"] for p in reports[0]["problems"] if p["severity"] == "error"}
    assert rules == {"security-defined"}
    assert code != 0
