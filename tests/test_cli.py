"""`tiergate check` and `tiergate up` as an operator runs them: real subprocesses
(config errors, health, the access log on stdout, graceful shutdown)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.processes import tiergate_up, write_config
from tests.support.servers import free_port, serve_asgi
from tests.support.upstreams import echo


def tiergate(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


def api(**fields: object) -> dict:
    return {"name": "shop", "upstream": {"targets": ["http://127.0.0.1:9"]}, **fields}


BAD_CONFIGS = {
    "unknown-key": (
        [api(upstrem={})],
        "apis[0].upstrem: unknown key; remove it or check its spelling",
    ),
    "bad-url": (
        [api(upstream={"targets": ["localhost"]})],
        "apis[0].upstream.targets: 'localhost' is not a valid target; use http://host:port",
    ),
    "duplicate-base-path": (
        [api(base_path="/s"), api(name="other", base_path="/s")],
        "apis[1].base_path: APIs 'shop' and 'other' share base path '/s'",
    ),
    "missing-contract": (
        [api(contract="gone.yaml")],
        "apis[0].contract: file 'gone.yaml' not found",
    ),
    "unknown-policy": ([api(policies={"magic": {}})], "apis[0].policies.magic: unknown policy"),
}


def test_check_rejects_bad_configs_without_traceback(tmp_path):
    cases = {}
    for name, (apis, expected) in BAD_CONFIGS.items():
        (tmp_path / name).mkdir()
        cases[name] = (write_config(tmp_path / name, apis), expected)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("listeners: {public: [}\n")
    cases["bad-yaml"] = (bad_yaml, "line 1, column 22: not valid YAML")
    cases["missing-file"] = (tmp_path / "none.yaml", "cannot read the file")
    # One process per case, all at once: each is a full interpreter start-up.
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "check", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for name, (config, _) in cases.items()
    }
    for name, proc in running.items():
        _, stderr = proc.communicate(timeout=60)
        config, expected = cases[name]
        assert proc.returncode == 2, name
        assert "Traceback" not in stderr, name
        assert f"{config}: {expected}" in stderr, (name, stderr)


def test_check_accepts_a_good_config_named_by_env(tmp_path):
    config = write_config(tmp_path, [api()])
    env = {"PATH": "/usr/bin:/bin", "TIERGATE_CONFIG": str(config)}
    result = tiergate("check", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"ok: {config}: 1 APIs" in result.stdout


@pytest.mark.parametrize("listener", ["public", "admin"])
def test_up_reports_a_taken_port_without_traceback(tmp_path, listener):
    config = write_config(tmp_path, [])
    raw = yaml.safe_load(config.read_text())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        raw["listeners"][listener]["port"] = port
        config.write_text(yaml.safe_dump(raw))
        result = tiergate("up", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert f"tiergate: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_serves_healthz_on_the_configured_port(tmp_path):
    config = write_config(tmp_path, [])
    port = yaml.safe_load(config.read_text())["listeners"]["public"]["port"]
    with tiergate_up(config) as gateway:
        assert gateway.url.endswith(f":{port}")
        response = httpx.get(f"{gateway.url}/healthz")
        assert response.json() == {"status": "ok"}
        assert httpx.get(f"{gateway.url}/readyz").json()["status"] == "ready"
    assert gateway.proc.returncode == 0


SECRETS = ("tok-SECRET-1", "key-SECRET-2", "query-SECRET-3", "cookie-SECRET-4")


def test_up_writes_one_access_line_per_request(tmp_path):
    with serve_asgi(echo) as upstream:
        apis = [
            {"name": "shop", "base_path": "/shop", "upstream": {"targets": [upstream.url]}},
            {
                "name": "down",
                "base_path": "/down",
                "upstream": {"targets": [f"http://127.0.0.1:{free_port()}"], "retries": 0},
            },
        ]
        with tiergate_up(write_config(tmp_path, apis)) as gateway:
            ok = httpx.get(
                f"{gateway.url}/shop/orders?api_key={SECRETS[2]}",
                headers={
                    "Authorization": f"Bearer {SECRETS[0]}",
                    "X-API-Key": SECRETS[1],
                    "Cookie": f"session={SECRETS[3]}",
                    "X-Request-ID": "log-test-1",
                },
            )
            assert ok.status_code == 200
            assert httpx.get(f"{gateway.url}/down/x").status_code == 502
            assert httpx.get(f"{gateway.url}/nowhere").status_code == 404
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # lines are written after the response
                text = gateway.log.read_text()
                if all(f'"path":"{p}"' in text for p in ("/shop/orders", "/down/x", "/nowhere")):
                    break
                time.sleep(0.05)
    for secret in SECRETS:
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    by_path = {line["path"]: line for line in lines}
    shop, down, missing = by_path["/shop/orders"], by_path["/down/x"], by_path["/nowhere"]
    assert len(lines) == 3 + sum(line["path"] == "/healthz" for line in lines)
    assert shop["request_id"] == "log-test-1"
    assert shop["api"] == "shop"
    assert shop["route"] == "other"  # the contract's path template; this one has none
    assert shop["path"] == "/shop/orders"
    assert shop["status"] == 200
    assert 0 < shop["upstream_ms"] <= shop["total_ms"]
    assert down["status"] == 502
    assert down["upstream_error"] == "UpstreamConnectError"
    assert len(down["request_id"]) == 32
    assert missing["status"] == 404
    assert missing["api"] is None


class Slow:
    def __init__(self) -> None:
        self.arrived = threading.Event()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.arrived.set()
        await asyncio.sleep(1.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})


def test_sigterm_lets_in_flight_requests_finish(tmp_path):
    slow = Slow()
    result: dict[str, object] = {}
    with serve_asgi(slow) as upstream:
        api = {"name": "slow", "base_path": "/slow", "upstream": {"targets": [upstream.url]}}
        with tiergate_up(write_config(tmp_path, [api], access_log=False)) as gateway:

            def call() -> None:
                try:
                    result["response"] = httpx.get(f"{gateway.url}/slow/x", timeout=10)
                except httpx.HTTPError as error:
                    result["error"] = error

            client = threading.Thread(target=call)
            client.start()
            assert slow.arrived.wait(5)
            gateway.proc.send_signal(signal.SIGTERM)
            client.join(10)
            assert gateway.proc.wait(10) == 0
    response = result.get("response")
    assert isinstance(response, httpx.Response), result
    assert response.status_code == 200
    assert response.text == "finished"


def test_up_refuses_what_check_refuses_without_traceback(tmp_path):
    # A plan reference is only known to be wrong across sections: `up` must still refuse
    # it before listening, with the field path, like `tiergate check` does.
    shop = {
        "name": "shop",
        "upstream": {"targets": ["http://127.0.0.1:9"]},
        "policies": {"rate-limit": {"default_plan": "free"}},
    }
    config = write_config(tmp_path, [shop])
    result = tiergate("up", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "apis[shop].rate-limit.default_plan: plan 'free' is not defined" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_and_up_refuse_a_config_key_naming_no_operation(tmp_path):
    from tests.support.configs import write_contract

    contract = write_contract(tmp_path, "shop", ["GET /products", "POST /orders"])
    shop = api(
        contract=contract, policies={"rate-limit": {"operations": {"POST /order": "1/second"}}}
    )
    config = write_config(tmp_path, [shop])
    for command in ("check", "up"):
        result = tiergate(command, "--config", str(config), cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert f"{config}: apis[0].policies.rate-limit.operations.POST /order: " in result.stderr
        assert "did you mean 'POST /orders'?" in result.stderr


def test_version_and_a_global_config_before_or_after_the_subcommand(tmp_path):
    from importlib.metadata import version

    config = write_config(tmp_path, [api()])
    shown = tiergate("--version", cwd=tmp_path)
    assert (shown.returncode, shown.stdout.strip()) == (0, f"tiergate {version('tiergate')}")
    for args in (("--config", str(config), "check"), ("check", "--config", str(config))):
        result = tiergate(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        assert f"ok: {config}" in result.stdout
    # the subcommand's own --config wins over the global one
    result = tiergate("--config", "nowhere.yaml", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_every_subcommand_takes_config():
    from gateway.cli import _leaf_parsers, parser

    root = parser()
    (sub,) = [a for a in root._actions if isinstance(a, argparse._SubParsersAction)]
    leaves = list(_leaf_parsers(sub))
    assert len(leaves) >= 10
    for leaf in leaves:
        assert "--config" in leaf._option_string_actions, leaf.prog


CONTRACT_WITHOUT_TIER = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n"


def test_exit_codes_are_the_documented_ones(tmp_path):
    """0 ok, 1 the check found problems, 2 usage or load error; the same for every command."""
    good = write_config(tmp_path, [api()])
    (tmp_path / "untiered.yaml").write_text(CONTRACT_WITHOUT_TIER)
    (tmp_path / "problems").mkdir()
    problems = write_config(tmp_path / "problems", [api()])
    raw = yaml.safe_load(problems.read_text())
    raw["apis"][0]["contract"] = str(tmp_path / "untiered.yaml")
    problems.write_text(yaml.safe_dump(raw))
    cases = {
        ("check", "--config", str(good)): 0,
        ("check", "--config", str(problems)): 1,  # loads, but the contract says no tier
        ("check", "--config", str(tmp_path / "missing.yaml")): 2,
        ("check", "--no-such-option"): 2,
        ("keys", "list", "--config", str(tmp_path / "missing.yaml")): 2,
        ("usage", "acme", "--config", str(tmp_path / "missing.yaml")): 2,
        ("no-such-command",): 2,
    }
    running = {
        args: subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for args in cases
    }
    for args, proc in running.items():
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == cases[args], (args, stderr)
        assert "Traceback" not in stderr, args


def test_main_commands_print_no_warnings(tmp_path):
    """Every warning is an error here (-W error): a command that would print one fails."""
    config = write_config(tmp_path, [api()])
    env = {
        **os.environ,
        "PYTHONWARNINGS": "error",
        "TIERGATE_REGISTRY_URL": f"sqlite:///{tmp_path}/r.db",
    }
    env.pop("TIERGATE_CONFIG", None)
    commands = [
        ("--version",),
        ("--help",),
        ("check", "--config", str(config)),
        ("clients", "list", "--config", str(config)),
        ("keys", "list", "--config", str(config), "--json"),
        ("init", "--api", "x", "--tier", "system", "--upstream", "http://127.0.0.1:9",
         "--contract", str(tmp_path / "untiered.yaml"), "--config", str(tmp_path / "new.yaml")),
    ]  # fmt: skip
    (tmp_path / "untiered.yaml").write_text(CONTRACT_WITHOUT_TIER)
    for args in commands:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-m", "gateway.cli", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, (args, result.stderr)
        assert "Warning" not in result.stderr, (args, result.stderr)


def test_check_json(tmp_path):
    config = write_config(tmp_path, [api()])
    (tmp_path / "untiered.yaml").write_text(CONTRACT_WITHOUT_TIER)
    result = tiergate("check", "--json", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"config": str(config), "apis": 1, "problems": []}
    raw = yaml.safe_load(config.read_text())
    raw["apis"][0]["contract"] = "untiered.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = tiergate("check", "--json", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    problems = json.loads(result.stdout)["problems"]
    assert any("declares x-tier None" in problem for problem in problems), problems
