"""`tiergate up --workers N` as an operator runs it: real processes on real sockets
(one port shared by the workers, an admin listener and /metrics per worker, SIGTERM
drain, SIGHUP passed on, a dead worker started again, memory storage refused)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.limits.support import UPSTREAM, burst
from tests.support.processes import GatewayProcess, tiergate_up, write_config
from tests.support.servers import serve_asgi

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"tiergate: worker (\d+) \(pid (\d+)\): public \S+  admin (\S+)")


def _env() -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT)}  # the test upstream lives in tests/


def wait_for(process: GatewayProcess, pattern: str, count: int = 1, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = process.log.read_text()
        if len(re.findall(pattern, text)) >= count:
            return text
        assert process.proc.poll() is None, text
        assert time.monotonic() < deadline, f"no {pattern!r} in: {text}"
        time.sleep(0.05)


def workers_of(process: GatewayProcess, count: int) -> dict[int, tuple[int, str]]:
    """Worker index → (pid, admin URL), from the lines the workers print when ready."""
    text = wait_for(process, rf"tiergate: {count} workers on ")
    found = {int(i): (int(pid), admin) for i, pid, admin in READY.findall(text)}
    assert sorted(found) == list(range(count)), text
    return found


def requests_counted(admin: str, api: str) -> int:
    text = httpx.get(f"{admin}/metrics", timeout=10).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "tiergate_requests"
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels.get("api") == api
        )
    )


def _echo_config(tmp_path: Path, **top) -> Path:
    api = {"name": "echo", "base_path": "/echo", "upstream": {"targets": [UPSTREAM]}}
    config = write_config(tmp_path, [api], access_log=False, **top)
    raw = yaml.safe_load(config.read_text())
    raw["listeners"]["admin"]["port"] = 0  # each worker takes a free one and prints it
    config.write_text(yaml.safe_dump(raw))
    return config


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> Iterator[tuple[GatewayProcess, dict[int, tuple[int, str]]]]:
    tmp_path = tmp_path_factory.mktemp("workers")
    config = _echo_config(tmp_path, rate_limiting={"per_worker": True})
    with tiergate_up(config, env=_env(), args=("--workers", "2")) as process:
        yield process, workers_of(process, 2)


def test_workers_share_the_port_and_prometheus_sees_each(two_workers):
    process, workers = two_workers
    replies = burst([f"{process.url}/echo/x"], 60)
    assert [r.status_code for r in replies] == [200] * 60
    counts = [requests_counted(admin, "echo") for _, admin in workers.values()]
    # One connection per request: the kernel spreads them over both workers' sockets.
    assert sum(counts) == 60, counts
    assert all(count > 0 for count in counts), counts


def test_sighup_is_passed_on_and_a_dead_worker_is_started_again(two_workers):
    process, workers = two_workers
    process.proc.send_signal(signal.SIGHUP)
    wait_for(process, r"tiergate: worker 0: SIGHUP")
    wait_for(process, r"tiergate: worker 1: SIGHUP")
    assert httpx.get(f"{process.url}/echo/x", timeout=10).status_code == 200

    pid = workers[1][0]
    os.kill(pid, signal.SIGKILL)
    wait_for(process, r"tiergate: worker 1 exited \(-9\); restarting")
    text = wait_for(process, r"tiergate: worker 1 \(pid \d+\): public", count=2)
    new_pid = int(READY.findall(text)[-1][1])
    assert new_pid != pid
    replies = burst([f"{process.url}/echo/x"], 20)
    assert [r.status_code for r in replies] == [200] * 20


def reloads_counted(admin: str) -> int:
    text = httpx.get(f"{admin}/metrics", timeout=10).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "tiergate_config_reload"
            for sample in family.samples
            if sample.labels.get("result") == "success"
        )
    )


def test_a_reload_through_one_worker_s_admin_api_reloads_every_worker(two_workers):
    process, _ = two_workers
    # The latest admin URL of each worker (one may have been started again meanwhile).
    workers = {
        int(i): (int(pid), admin) for i, pid, admin in READY.findall(process.log.read_text())
    }
    token = (process.log.parent / "var" / "admin-token").read_text().strip()
    before = {index: reloads_counted(admin) for index, (_, admin) in workers.items()}
    answer = httpx.post(
        f"{workers[0][1]}/admin/config/reload",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["workers"] == "every worker reloads"
    wait_for(process, r"tiergate: worker 1: SIGHUP")
    deadline = time.monotonic() + 20
    while reloads_counted(workers[1][1]) <= before[1]:  # the other worker loaded it too
        assert time.monotonic() < deadline, process.log.read_text()
        time.sleep(0.1)
    assert reloads_counted(workers[0][1]) > before[0]


class Slow:
    def __init__(self) -> None:
        self.arrived = 0
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        with self.lock:
            self.arrived += 1
        await asyncio.sleep(1.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})


def test_sigterm_drains_requests_in_flight_on_every_worker(tmp_path):
    slow = Slow()
    with serve_asgi(slow) as upstream:
        api = {"name": "slow", "base_path": "/slow", "upstream": {"targets": [upstream.url]}}
        config = write_config(tmp_path, [api], access_log=False, rate_limiting={"per_worker": True})
        with tiergate_up(config, args=("--workers", "2")) as process:
            workers = workers_of(process, 2)
            curl = subprocess.Popen(  # 12 connections: both workers get some
                ["curl", "--silent", "--parallel", "--parallel-immediate", "--max-time", "20",
                 "--write-out", "%{http_code}\n",
                 *[a for i in range(12) for a in ("-o", "/dev/null", f"{process.url}/slow/{i}")]],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            started = time.monotonic()
            deadline = started + 10
            while slow.arrived < 12:
                assert time.monotonic() < deadline, slow.arrived
                time.sleep(0.02)
            process.proc.send_signal(signal.SIGTERM)
            out, _ = curl.communicate(timeout=30)
            assert process.proc.wait(20) == 0
            print(f"drained and stopped in {time.monotonic() - started:.2f} s")
            assert out.split() == ["200"] * 12
            for pid, _ in workers.values():  # the workers are gone with the supervisor
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{process.url}/slow/late", timeout=2)


@pytest.mark.parametrize("how", ["flag", "config"])
def test_memory_storage_with_workers_refuses_to_start_without_per_worker(tmp_path, how):
    config = write_config(
        tmp_path, [{"name": "echo", "upstream": {"targets": [UPSTREAM]}}],
        **({"workers": 3} if how == "config" else {}),
    )  # fmt: skip
    args = ["--workers", "3"] if how == "flag" else []
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "up", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{config}: workers: 3 with limits_storage 'memory://'" in result.stderr
    assert "admit up to 3 times every limit" in result.stderr
    assert "rate_limiting.per_worker: true" in result.stderr
