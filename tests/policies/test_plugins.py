"""Policies are found through the `tiergate.policies` entry points, built-ins included;
a plugin distribution installed beside the gateway is used from a config."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import EntryPoint
from pathlib import Path

import httpx
import pytest

from gateway.pipeline import PRIORITY, PolicySpec
from gateway.policies import GROUP, POLICIES, PluginError, discover, policies
from tests.support.environment import clean_environ
from tests.support.processes import tiergate_up, write_config
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy-plugin"


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


def test_builtins_are_published_as_entry_points():
    specs = policies()
    assert set(PRIORITY) <= set(specs)
    for name, spec in specs.items():
        assert isinstance(spec, PolicySpec)
        assert spec.name == name
    assert POLICIES is specs  # the module attribute is the same, single list


def test_a_plugin_that_fails_to_import_is_named():
    with pytest.raises(PluginError) as error:
        discover([_entry("jwt", "gateway.policies.jwt:SPEC"), _entry("bad", "no_such_mod:SPEC")])
    assert "'bad'" in str(error.value)
    assert "ModuleNotFoundError" in str(error.value)
    assert "no_such_mod:SPEC" in str(error.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("gateway.policies:GROUP", "is str, not a gateway.pipeline.PolicySpec"),
        ("gateway.policies.jwt:SPEC", "publishes a PolicySpec named 'jwt'"),
        ("gateway.policies.jwt:NOT_THERE", "AttributeError"),
    ],
)
def test_a_plugin_that_publishes_no_valid_spec_is_named(value, problem):
    with pytest.raises(PluginError) as error:
        discover([_entry("odd", value)])
    assert str(error.value).startswith("policy plugin 'odd'")
    assert problem in str(error.value)


def test_a_plugin_needing_what_is_no_service_is_named(tmp_path, monkeypatch):
    (tmp_path / "needy_policy_mod.py").write_text(
        "from pydantic import BaseModel\n"
        "from gateway.pipeline import PolicySpec\n"
        "class Config(BaseModel): pass\n"
        "SPEC = PolicySpec('needy', 100, Config, lambda c, ctx: None, needs=('database',))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as error:
        discover([_entry("needy", "needy_policy_mod:SPEC")])
    assert str(error.value).startswith("policy plugin 'needy'")
    assert "needs must be a tuple of Services field names" in str(error.value)
    assert "'database'" in str(error.value)


def test_a_name_published_twice_is_refused():
    entry = _entry("jwt", "gateway.policies.jwt:SPEC")
    with pytest.raises(PluginError, match="published twice"):
        discover([entry, entry])


def _dist_info(where: Path, name: str, entry_points: str) -> Path:
    """A distribution's metadata on sys.path: what `pip install` leaves behind."""
    info = where / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{entry_points}\n")
    return where


def test_a_broken_plugin_stops_start_up_with_its_name(tmp_path):
    site = _dist_info(tmp_path / "site", "broken-policy", "broken = broken_policy_mod:SPEC")
    (site / "broken_policy_mod.py").write_text("raise RuntimeError('half-installed')\n")
    config = write_config(tmp_path, [])
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "up", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(PYTHONPATH=f"{site}:{ROOT}"),
    )
    assert result.returncode == 2, result.stderr
    assert "policy plugin 'broken' (broken-policy 0.1: broken_policy_mod:SPEC)" in result.stderr
    assert "RuntimeError: half-installed" in result.stderr


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory) -> str:
    """A fresh venv that sees the project's packages and has only the plugin installed."""
    venv = tmp_path_factory.mktemp("plugin-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")
    source = shutil.copytree(EXAMPLE, venv / "source")  # the build leaves files behind
    # Processed like a site directory, so the gateway's own editable install is seen too.
    Path(site, "_tiergate_project.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", python, "install", "--quiet"),
            *("--no-deps", "--no-build-isolation", "--no-index", str(source)),
        ],
        check=True,
        timeout=180,
        env=clean_environ(PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
    return python


def test_the_example_plugin_is_listed_only_where_it_is_installed(plugin_python):
    probe = "from gateway.policies import policies; print(sorted(policies()))"
    listed = subprocess.run(
        [plugin_python, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    assert "'example-header'" in listed
    assert "'jwt'" in listed
    assert "example-header" not in policies()  # not in the project's own environment


def test_the_example_plugin_runs_in_tiergate_up(tmp_path, plugin_python):
    with serve_asgi(echo) as upstream:
        apis = [
            {
                "name": "plugged",
                "tier": "experience",
                "base_path": "/plugged",
                "upstream": {"targets": [upstream.url]},
                "policies": {"example-header": {}},
            },
            {
                "name": "beta",
                "tier": "experience",
                "base_path": "/beta",
                "upstream": {"targets": [upstream.url]},
                "policies": {"example-header": {"value": "beta"}},
            },
            {
                "name": "plain",
                "tier": "experience",
                "base_path": "/plain",
                "upstream": {"targets": [upstream.url]},
            },
        ]
        config = write_config(tmp_path, apis, access_log=False)
        with tiergate_up(config, python=plugin_python) as gateway:
            plugged = httpx.get(f"{gateway.url}/plugged/x")
            beta = httpx.get(f"{gateway.url}/beta/x")
            plain = httpx.get(f"{gateway.url}/plain/x")
    assert plugged.status_code == 200, plugged.text
    assert plugged.headers["x-example-policy"] == "on"
    assert beta.headers["x-example-policy"] == "beta"
    assert "x-example-policy" not in plain.headers


def test_a_plugin_config_is_validated_like_a_builtin(tmp_path, plugin_python):
    apis = [
        {
            "name": "plugged",
            "tier": "experience",
            "base_path": "/plugged",
            "upstream": {"targets": ["http://127.0.0.1:9"]},
            "policies": {"example-header": {"value": "two words", "extra": 1}},
        }
    ]
    config = write_config(tmp_path, apis)
    result = subprocess.run(
        [plugin_python, "-m", "gateway.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
    )
    assert result.returncode == 2, result.stderr
    assert str(config) in result.stderr
    assert "apis[0].policies.example-header.value" in result.stderr
    assert "apis[0].policies.example-header.extra" in result.stderr


def test_the_example_plugins_own_tests_pass_with_the_testing_helpers(plugin_python):
    result = subprocess.run(
        [plugin_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=EXAMPLE,
        env=clean_environ(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
