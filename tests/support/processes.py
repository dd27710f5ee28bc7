"""`tiergate up` in a subprocess on free ports, for tests that need a separate process
(memory, signals, the access log on stdout)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.configs import add_contracts
from tests.support.environment import clean_environ
from tests.support.servers import free_port, free_port_block


class GatewayProcess:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def write_config(tmp_path: Path, apis: list[dict[str, Any]], **top: Any) -> Path:
    add_contracts(tmp_path, apis)
    raw = {
        "listeners": {
            "public": {"host": "127.0.0.1", "port": free_port()},
            # worker i of `up --workers N` listens on the admin port + i
            "admin": {"host": "127.0.0.1", "port": free_port_block(4)},
        },
        **top,
        "apis": apis,
    }
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# The line `up` prints once both listeners accept connections.
LISTENING = re.compile(r"public \S+\s+admin \S+")


@contextmanager
def tiergate_up(
    config: Path,
    timeout: float = 20.0,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    command: list[str] | None = None,
    port: int | None = None,
    python: str = sys.executable,
) -> Iterator[GatewayProcess]:
    """`command` (default: `python -m gateway.cli`) + `up --config CONFIG`;
    `port`: the public port when the environment moves it from the config's."""
    public = yaml.safe_load(config.read_text())["listeners"]["public"]
    scheme = "https" if public.get("tls") else "http"
    url = f"{scheme}://127.0.0.1:{port or public['port']}"
    log = config.parent / "tiergate.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(command or [python, "-m", "gateway.cli"]),
                *("up", "--config", str(config), *args),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
            env=clean_environ(**(env or {})),
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tiergate up exited: {log.read_text()}")
            try:
                # Only "is it up": TLS tests verify the certificate chain themselves.
                healthy = httpx.get(f"{url}/healthz", timeout=1, verify=False).status_code == 200
                # Up means both listeners: the admin one starts after the public one.
                if healthy and LISTENING.search(log.read_text(errors="replace")):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"tiergate up did not start: {log.read_text()}")
            time.sleep(0.05)
        yield GatewayProcess(proc, url, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
