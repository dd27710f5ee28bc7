"""Benchmark plumbing: tools, processes pinned to cores, wrk runs and CPU accounting."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
NODE_DIR = BENCH_DIR / ".node"  # fast-gateway's npm install (gitignored)
FAST_GATEWAY_VERSION = "5.0.1"
# fast-gateway 5.0.1 asks for fast-proxy-lite ^1.1.3, which the registry does not
# have; 1.1.2 works with it, so npm is told to use that.
NODE_PACKAGE = {
    "name": "tiergate-bench-peers",
    "private": True,
    "dependencies": {"fast-gateway": FAST_GATEWAY_VERSION},
    "overrides": {"fast-proxy-lite": "1.1.2"},
}
SUT_CORE = "1"  # the system under test
LOAD_CORE = "0"  # wrk and the upstream
CLK_TCK = os.sysconf("SC_CLK_TCK")
# command -> Debian package
_APT = {
    "wrk": "wrk",
    "nginx": "nginx-light",
    "node": "nodejs",
    "npm": "npm",
    "taskset": "util-linux",
}


# -- tools -----------------------------------------------------------------------


def ensure_tools() -> None:
    """Install wrk, nginx, node and fast-gateway when they are missing."""
    missing = [pkg for cmd, pkg in _APT.items() if shutil.which(cmd) is None]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        subprocess.run(["apt-get", "update", "-q"], check=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, timeout=900)
    if not (NODE_DIR / "node_modules" / "fast-gateway" / "package.json").exists():
        print(f"installing fast-gateway {FAST_GATEWAY_VERSION} into {NODE_DIR}", flush=True)
        NODE_DIR.mkdir(exist_ok=True)
        (NODE_DIR / "package.json").write_text(json.dumps(NODE_PACKAGE, indent=2))
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=600,
        )


def tool_versions() -> dict[str, str]:
    def out(*cmd: str) -> str:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (run.stdout + run.stderr).strip().splitlines()[0]

    package = NODE_DIR / "node_modules" / "fast-gateway" / "package.json"
    return {
        "nginx": out("nginx", "-v"),
        "wrk": out("wrk", "-v"),
        "node": out("node", "--version"),
        "fast-gateway": json.loads(package.read_text())["version"],
    }


def machine() -> dict[str, object]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": os.uname().release,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- processes -------------------------------------------------------------------


class Process:
    """A child process in its own session, pinned to a core, stopped by its id."""

    def __init__(self, name: str, argv: list[str], core: str, log: Path, **kwargs) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", core, *argv],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
        self.pid = self.proc.pid

    def pids(self) -> list[int]:
        """This process and its descendants (nginx workers, node's children)."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in task.read_text().split())
        return found

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


# -- nginx -----------------------------------------------------------------------

_NGINX_MAIN = """
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server_tokens off;
{body}
}}
"""

UPSTREAM_SERVER = """
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = {data_path} {{
            default_type application/json;
            return 200 '{json_body}';
        }}
        location = {jwks_path} {{
            default_type application/json;
            return 200 '{jwks}';
        }}
    }}
"""

PROXY_SERVER = """
    upstream backend {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location {prefix}/ {{
            proxy_pass http://backend/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
"""


def start_nginx(name: str, body: str, workdir: Path, core: str) -> Process:
    directory = workdir / name
    directory.mkdir()
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(_NGINX_MAIN.format(dir=directory, body=body, user=user))
    return Process(
        name, ["nginx", "-p", str(directory), "-c", str(conf)], core, directory / "stdout.log"
    )


def start_redis(workdir: Path, core: str, timeout: float = 10.0) -> tuple[Process, str]:
    """The bench's own redis-server on a free port (never the machine's shared one)."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(workdir), "--loglevel", "warning"]
    process = Process("redis", argv, core, workdir / "redis.log")
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return process, f"redis://127.0.0.1:{port}/0"
        if time.monotonic() > deadline or process.proc.poll() is not None:
            process.stop()
            raise RuntimeError(f"redis-server did not start: {process.tail()}")
        time.sleep(0.05)


# -- wrk ---------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx plus socket errors


def run_wrk(
    url: str, duration: float, connections: int, headers: dict[str, str] | None = None
) -> WrkResult:
    argv = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
    ]
    argv += ["--latency", "--timeout", "5s"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    run = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=duration + 30, check=True
    )
    return parse_wrk(run.stdout)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(text: str) -> WrkResult:
    def latency(pct: str) -> float:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")

    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if total is None or rps is None:
        raise RuntimeError(f"cannot read wrk's output:\n{text}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNITS[total.group(3)] / 1000,
        rps=float(rps.group(1)),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        errors=errors,
    )


@dataclass
class Measurement:
    system: str
    rps: float  # all rounds' requests / all rounds' seconds
    p50_ms: float  # median over rounds
    p99_ms: float  # median over rounds
    cpu_us_per_request: float  # CPU of the system under test / requests
    cpu_utilisation: float  # CPU seconds of the system under test / wall seconds
    requests: int
    errors: int
    rounds: list[dict[str, float]] = field(default_factory=list)  # one entry per round
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class System:
    """A running system under test, measured round after round."""

    name: str
    process: Process
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    rounds: list[tuple[WrkResult, float]] = field(default_factory=list)  # (wrk, CPU seconds)

    def warm_up(self, seconds: float, connections: int) -> None:
        if seconds > 0:
            run_wrk(self.url, seconds, connections, self.headers)

    def measure_round(self, seconds: float, connections: int) -> WrkResult:
        cpu_before = self.process.cpu_seconds()
        result = run_wrk(self.url, seconds, connections, self.headers)
        self.rounds.append((result, self.process.cpu_seconds() - cpu_before))
        return result

    def result(self) -> Measurement:
        requests = sum(r.requests for r, _ in self.rounds)
        seconds = sum(r.seconds for r, _ in self.rounds)
        cpu = sum(c for _, c in self.rounds)
        return Measurement(
            system=self.name,
            rps=round(requests / seconds, 1),
            p50_ms=round(statistics.median(r.p50_ms for r, _ in self.rounds), 3),
            p99_ms=round(statistics.median(r.p99_ms for r, _ in self.rounds), 3),
            cpu_us_per_request=round(cpu * 1e6 / max(requests, 1), 1),
            cpu_utilisation=round(cpu / seconds, 3),
            requests=requests,
            errors=sum(r.errors for r, _ in self.rounds),
            rounds=[
                {
                    "rps": round(r.rps, 1),
                    "cpu_us_per_request": round(c * 1e6 / max(r.requests, 1), 1),
                    "p50_ms": r.p50_ms,
                    "p99_ms": r.p99_ms,
                }
                for r, c in self.rounds
            ],
        )
