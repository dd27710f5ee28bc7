"""The catalogue's own contract: valid, and the live endpoints conform (schemathesis)."""

import subprocess
import sys
from pathlib import Path

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

CONTRACT = Path(__file__).parents[2] / "openapi" / "gateway" / "catalogue.yaml"


def test_contract_is_valid_openapi():
    document, _ = read_from_filename(str(CONTRACT))
    validate(document)


def test_endpoints_conform_to_the_contract(gateway_server, tmp_path):
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            str(CONTRACT),
            "--url",
            gateway_server.url,
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Tested: 4" in result.stdout  # every operation of the contract ran
