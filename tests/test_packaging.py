"""The package as a user gets it: the wheel built from this tree, installed with a plain
`pip install <wheel>` (no extras) into a fresh virtualenv, then the installed `tiergate`
run from a folder that is not the source tree.

One venv for the module (building and installing take ~15 s); `-m packaging` selects
these tests, `-m "not packaging"` leaves them out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.environment import clean_environ
from tests.support.processes import tiergate_up, write_config
from tests.support.servers import free_port, serve_asgi

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "gateway", "apis")
TEST_TOOLS = ("schemathesis", "pytest", "hypothesis", "werkzeug")
PIP_QUIET = ("--disable-pip-version-check",)
# Installed with --no-compile: the installed copy writes its bytecode as a user's would,
# on first import, even where the shell says not to (each `tiergate` run would compile
# the gateway and its dependencies again: seconds a run).
WRITE_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy: the build leaves build/ and *.egg-info behind in its source.
    tree = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tree / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(tree)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("tiergate-*.whl")
    return built


@pytest.fixture(scope="module")
def bin_dir(wheel, tmp_path_factory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    # The venv gets no pip of its own (ensurepip alone took ~5 s, and its bundled pip
    # resolved twice as slowly): this interpreter's pip installs into it (`--python`).
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python)),
            *("install", "--quiet", "--no-compile", *PIP_QUIET, str(wheel)),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return env_dir / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed `tiergate`, away from the source tree, without TIERGATE_* variables."""
    return subprocess.run(
        [str(bin_dir / "tiergate"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_environ(**WRITE_BYTECODE),
        timeout=60,
    )


def assert_quiet(result: subprocess.CompletedProcess) -> None:
    assert "Warning" not in result.stderr and "warning" not in result.stderr, result.stderr


def test_wheel_carries_licence_types_and_templates(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"tiergate-{PROJECT['version']}.dist-info/METADATA").decode()
    assert f"tiergate-{PROJECT['version']}.dist-info/licenses/LICENSE" in names
    assert {"gateway/py.typed", "apis/py.typed"} <= names
    assert "gateway/catalogue/templates/index.html" in names
    assert "gateway/catalogue/static/catalogue.css" in names
    assert "License-Expression: Apache-2.0" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(line.startswith("Requires-Dist: sqlalchemy[asyncio]") for line in requires)
    for tool in TEST_TOOLS:  # only under extras, never in a plain install
        assert all("extra ==" in line for line in requires if f": {tool}" in line), tool
    assert "Provides-Extra: contract-test" in metadata


def test_plain_install_leaves_test_tools_out(bin_dir, tmp_path):
    probe = (
        "import importlib.util, json, gateway;"
        f"print(json.dumps([[m for m in {TEST_TOOLS!r} if importlib.util.find_spec(m)],"
        "gateway.__file__, bool(importlib.util.find_spec('greenlet'))]))"
    )
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_environ(**WRITE_BYTECODE),
    )
    present, location, greenlet = json.loads(result.stdout)
    assert present == []
    assert location.startswith(str(bin_dir.parent)), location  # the installed copy
    assert greenlet  # SQLAlchemy's asyncio support


def test_version(bin_dir, tmp_path):
    result = run(bin_dir, "--version", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"tiergate {PROJECT['version']}")
    assert result.stderr == ""


def test_check_and_up_from_another_folder(bin_dir, tmp_path, httpbin_url):
    (tmp_path / "conf").mkdir()
    config = write_config(
        tmp_path / "conf", [{"name": "bin", "upstream": {"targets": [httpbin_url]}}]
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run(bin_dir, "--config", str(config), "check", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {config}")
    assert_quiet(result)
    installed = [str(bin_dir / "tiergate")]
    with tiergate_up(config, 90, WRITE_BYTECODE, command=installed) as gateway:
        assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
        page = httpx.get(f"{gateway.url}/catalogue")  # templates and assets from the wheel
        assert page.status_code == 200 and "bin" in page.text
        css = httpx.get(f"{gateway.url}/catalogue/static/catalogue.css")
        assert css.status_code == 200
    output = gateway.log.read_text()
    assert "Traceback" not in output
    assert "Warning" not in output


def test_contract_test_names_its_extra(bin_dir, tmp_path):
    config = write_config(
        tmp_path, [{"name": "bin", "upstream": {"targets": ["http://127.0.0.1:9"]}}]
    )
    result = run(bin_dir, "contract-test", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "pip install 'tiergate[contract-test]'" in result.stderr


HELLO_CONTRACT = {
    "openapi": "3.1.0",
    "info": {"title": "Greetings", "version": "1.0.0"},
    "paths": {
        "/hello/{name}": {
            "get": {
                "operationId": "greet",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "A greeting"}},
            }
        }
    },
}


async def _openapi(request):
    return JSONResponse(HELLO_CONTRACT)


async def _greet(request):
    return JSONResponse({"greeting": f"hello {request.path_params['name']}"})


greetings = Starlette(routes=[Route("/openapi.json", _openapi), Route("/hello/{name}", _greet)])


def test_init_then_up_serves_your_own_api(bin_dir, tmp_path):
    """The first hour: `tiergate init` against a local upstream, `check`, `up`, a client,
    a token, a call through the gateway."""
    folder = tmp_path / "mine"
    folder.mkdir()
    with serve_asgi(greetings) as upstream:
        result = run(
            bin_dir,
            "init",
            "--api",
            "greetings",
            "--tier",
            "experience",
            "--upstream",
            upstream.url,
            cwd=folder,
        )
        assert result.returncode == 0, result.stderr
        assert (folder / "openapi" / "greetings.json").is_file()  # fetched from the upstream
        check = run(bin_dir, "check", cwd=folder)
        assert check.returncode == 0, check.stderr
        assert_quiet(check)
        # `up` on free ports: the generated config says 8080/8081, the variables move them
        public, admin = free_port(), free_port()
        config = folder / "tiergate.yaml"
        env = {
            "TIERGATE_PUBLIC_PORT": str(public),
            "TIERGATE_ADMIN_PORT": str(admin),
            **WRITE_BYTECODE,
        }
        installed = [str(bin_dir / "tiergate")]
        with tiergate_up(config, 90, env, command=installed, port=public) as gw:
            created = run(bin_dir, "clients", "create", "my-app", "--json", cwd=folder)
            assert created.returncode == 0, created.stderr
            client = json.loads(created.stdout)
            token = httpx.post(
                f"{gw.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client["client_id"], client["client_secret"]),
            ).json()["access_token"]
            assert httpx.get(f"{gw.url}/experience/greetings/v1/hello/ada").status_code == 401
            r = httpx.get(
                f"{gw.url}/experience/greetings/v1/hello/ada",
                headers={"authorization": f"Bearer {token}"},
            )
            assert (r.status_code, r.json()) == (200, {"greeting": "hello ada"})
            meta = httpx.get(f"{gw.url}/.well-known/oauth-authorization-server").json()
            assert meta["issuer"] == f"http://127.0.0.1:{public}"  # follows the listener
            stored = (folder / "var" / "admin-token").read_text().strip()
            plans = httpx.get(
                f"http://127.0.0.1:{admin}/admin/plans",
                headers={"authorization": f"Bearer {stored}"},
            )
            assert plans.status_code == 200 and plans.json()["items"][0]["name"] == "free"
    assert "Warning" not in gw.log.read_text()
