"""Tiergate against its peers, in one run, on one core each (see bench/README.md).

    .venv/bin/python bench/run.py [--duration 10] [--warmup 2] [--connections 32]
                                  [--only direct,nginx,fast-gateway,tiergate,...]

Prints rps, p50, p99 and CPU µs per request of each system under test, the
ratios tiergate/fast-gateway and tiergate/nginx, and writes the same as JSON
under bench/results/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from harness import (
    BENCH_DIR,
    LOAD_CORE,
    NODE_DIR,
    PROXY_SERVER,
    SUT_CORE,
    UPSTREAM_SERVER,
    Measurement,
    Process,
    System,
    ensure_tools,
    free_port,
    machine,
    start_nginx,
    start_redis,
    tool_versions,
)
from scenarios import (
    API_PREFIX,
    CONTRACT,
    JSON_BODY,
    JWKS_PATH,
    UPSTREAM_PATH,
    JwtMaterial,
    Scenario,
    gateway_config,
    scenarios,
)

REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
PEERS = ("direct", "nginx", "fast-gateway")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ensure_tools()
    sys.path.insert(0, str(REPO))
    from gateway.policies import POLICIES

    jwt = JwtMaterial()
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tiergate-bench-") as tmp:
        workdir = Path(tmp)
        upstream_port = free_port()
        upstream_body = _upstream_body(upstream_port, jwt.jwks)
        upstream = start_nginx("upstream", upstream_body, workdir, LOAD_CORE)
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        redis = _Redis(workdir)
        try:
            _check(upstream, upstream_url + UPSTREAM_PATH)
            systems: list[tuple[str, Callable[[], tuple[Process, str]], dict[str, str]]] = []
            systems.append(("direct", lambda: _direct(workdir, jwt.jwks), {}))
            systems.append(("nginx", lambda: _nginx_proxy(workdir, upstream_port), {}))
            systems.append(("fast-gateway", lambda: _fast_gateway(workdir, upstream_url), {}))
            for scenario in scenarios(upstream_url):
                missing = [name for name in scenario.needs() if name not in POLICIES]
                if missing:
                    skipped.append(scenario.name)
                    print(f"skipped: policy {', '.join(missing)} not available ({scenario.name})")
                    continue
                if scenario.redis and shutil.which("redis-server") is None:
                    skipped.append(scenario.name)
                    print(f"skipped: no redis-server, apt-get install it ({scenario.name})")
                    continue
                headers = {"Authorization": f"Bearer {jwt.token}"} if scenario.jwt else {}
                systems.append(
                    (
                        scenario.name,
                        lambda s=scenario: _tiergate(s, workdir, upstream_url, redis=redis),
                        headers,
                    )
                )
            base = next(s for s in scenarios(upstream_url) if s.name == args.compare_scenario)
            for ref in args.compare:
                systems.append(
                    (
                        f"{base.name}@{ref}",
                        lambda r=ref: _tiergate_at(r, workdir, upstream_url, base, redis),
                        {"Authorization": f"Bearer {jwt.token}"} if base.jwt else {},
                    )
                )
            chosen = [
                system
                for system in systems
                if not args.only
                or any(
                    system[0] == o or (o[-1] == "*" and system[0].startswith(o[:-1]))
                    for o in args.only
                )
            ]
            results = _measure_all(chosen, args)
        finally:
            redis.stop()
            upstream.stop()
    _report(results, skipped, args)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=4.0, help="measured seconds per system and round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per system")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--only",
        type=lambda s: [p.strip() for p in s.split(",") if p.strip()],
        default=[],
        help="comma-separated systems; a trailing * matches a prefix: fast-gateway,tiergate*",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="GITREF",
        help="also run Tiergate as of GITREF, e.g. HEAD~1 (repeatable)",
    )
    parser.add_argument(
        "--compare-scenario", default="tiergate", help="the scenario --compare runs"
    )
    return parser


def _upstream_body(port: int, jwks: str) -> str:
    return UPSTREAM_SERVER.format(
        port=port, data_path=UPSTREAM_PATH, json_body=JSON_BODY, jwks_path=JWKS_PATH, jwks=jwks
    )


def _check(process: Process, url: str, headers: dict[str, str] | None = None) -> None:
    """The system answers the upstream's JSON, byte for byte."""
    import urllib.request

    deadline = time.monotonic() + 30
    body = b""
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2) as response:
                body = response.read()
                break
        except Exception as exc:
            if process.proc.poll() is not None:
                raise RuntimeError(f"{process.name} exited: {process.tail()}") from exc
            body = str(exc).encode()
            time.sleep(0.1)
    if body != JSON_BODY.encode():
        raise RuntimeError(f"{process.name} answered {body[:300]!r}; log:\n{process.tail()}")


def _direct(workdir: Path, jwks: str) -> tuple[Process, str]:
    """A second copy of the upstream, pinned to the SUT core: the ceiling."""
    port = free_port()
    return start_nginx("direct", _upstream_body(port, jwks), workdir, SUT_CORE), (
        f"http://127.0.0.1:{port}{UPSTREAM_PATH}"
    )


def _nginx_proxy(workdir: Path, upstream_port: int) -> tuple[Process, str]:
    port = free_port()
    body = PROXY_SERVER.format(upstream_port=upstream_port, port=port, prefix=API_PREFIX)
    return start_nginx("nginx-proxy", body, workdir, SUT_CORE), (
        f"http://127.0.0.1:{port}{API_PREFIX}{UPSTREAM_PATH}"
    )


def _fast_gateway(workdir: Path, upstream_url: str) -> tuple[Process, str]:
    port = free_port()
    argv = ["node", str(BENCH_DIR / "fast_gateway.js"), str(port), upstream_url, API_PREFIX]
    process = Process(
        "fast-gateway",
        argv,
        SUT_CORE,
        workdir / "fast-gateway.log",
        env={
            "NODE_PATH": str(NODE_DIR / "node_modules"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        },
    )
    return process, f"http://127.0.0.1:{port}{API_PREFIX}{UPSTREAM_PATH}"


class _Redis:
    """The bench's own redis-server, started when a scenario first needs it, on the load
    core (like the upstream, it stands for another machine), stopped at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: Process | None = None
        self.url = ""

    def start(self) -> str:
        if self.process is None:
            self.process, self.url = start_redis(self.workdir, LOAD_CORE)
        return self.url

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def _tiergate(
    scenario: Scenario,
    workdir: Path,
    upstream_url: str,
    source: Path = REPO,
    redis: _Redis | None = None,
) -> tuple[Process, str]:
    """Tiergate as `tiergate up` runs it; `source` is a checkout whose gateway/ is used."""
    directory = workdir / scenario.name
    directory.mkdir()
    (directory / "contract.yaml").write_text(CONTRACT)
    port = free_port()
    redis_url = redis.start() if scenario.redis and redis is not None else None
    config = gateway_config(scenario, upstream_url, port, free_port(), str(directory), redis_url)
    config_file = directory / "tiergate.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [sys.executable, "-m", "gateway.cli", "up", "--config", str(config_file)]
    # The access log goes to a file, as it would to a log shipper's pipe.
    process = Process(scenario.name, argv, SUT_CORE, directory / "stdout.log", cwd=source)
    return process, f"http://127.0.0.1:{port}{API_PREFIX}{UPSTREAM_PATH}"


def _tiergate_at(
    ref: str, workdir: Path, upstream_url: str, base: Scenario, redis: _Redis
) -> tuple[Process, str]:
    """Tiergate as of a git ref, to compare a change within one run."""
    source = workdir / f"src-{ref.replace('/', '_')}"
    source.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "gateway"], cwd=REPO, capture_output=True, check=True, timeout=60
    )
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True, timeout=60)
    scenario = dataclasses.replace(base, name=f"{base.name}@{ref.replace('/', '_')}")
    return _tiergate(scenario, workdir, upstream_url, source, redis)


def _measure_all(
    chosen: list[tuple[str, Callable[[], tuple[Process, str]], dict[str, str]]],
    args: argparse.Namespace,
) -> list[Measurement]:
    """Start every system, then measure them round-robin so load drift hits all alike."""
    running: list[System] = []
    try:
        for name, start, headers in chosen:
            process, url = start()
            running.append(System(name, process, url, headers))
            _check(process, url, headers)
        for system in running:
            system.warm_up(args.warmup, args.connections)
        for index in range(args.rounds):
            print(f"round {index + 1}/{args.rounds}", flush=True)
            for system in running:
                r = system.measure_round(args.duration, args.connections)
                cpu = system.rounds[-1][1] * 1e6 / max(r.requests, 1)
                print(
                    f"  {system.name:<26} {r.rps:>9.0f} rps  p50 {r.p50_ms:6.2f} ms"
                    f"  p99 {r.p99_ms:7.2f} ms  {cpu:5.0f} µs/req",
                    flush=True,
                )
    finally:
        for system in running:
            system.process.stop()
    results = [system.result() for system in running]
    for result in results:
        if result.errors:
            result.note = f"{result.errors} errors (non-2xx or socket)"
    return results


def _report(results: list[Measurement], skipped: list[str], args: argparse.Namespace) -> None:
    by_name = {r.system: r for r in results}
    fast, nginx = by_name.get("fast-gateway"), by_name.get("nginx")
    print()
    header = (
        f"{'system':<26}{'rps':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}{'CPU %':>7}"
        f"{'÷fast-gw':>10}{'÷nginx':>8}"
    )
    print(header)
    print("-" * len(header))
    ratios: dict[str, dict[str, float]] = {}
    for r in results:
        line = (
            f"{r.system:<26}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.cpu_us_per_request:>12.0f}{r.cpu_utilisation * 100:>7.0f}"
        )
        if r.system.startswith("tiergate"):
            ratios[r.system] = {}
            for label, peer in (("fast-gateway", fast), ("nginx", nginx)):
                if peer is not None:
                    ratios[r.system][label] = round(r.rps / peer.rps, 3)
            line += "".join(
                f"{ratios[r.system][label]:>{width}.2f}"
                if label in ratios[r.system]
                else " " * width
                for label, width in (("fast-gateway", 10), ("nginx", 8))
            )
        if r.note:
            line += f"  ({r.note})"
        print(line)
    for name in skipped:
        print(f"{name:<26}skipped (policy or redis-server not available)")
    cpu = {r.system: r.cpu_us_per_request for r in results}
    if "tiergate" in cpu and "tiergate+log" in cpu:
        print(f"\naccess log line: {cpu['tiergate+log'] - cpu['tiergate']:+.0f} µs CPU per request")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = RESULTS / f"bench-{stamp}.json"
    document = {
        "date": stamp,
        "machine": machine(),
        "tools": tool_versions(),
        "settings": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "sut_core": SUT_CORE,
            "load_core": LOAD_CORE,
        },
        "results": [r.as_dict() for r in results],
        "ratios_rps": ratios,
        "skipped": skipped,
    }
    out.write_text(json.dumps(document, indent=2))
    print(f"\nwritten: {out.relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
