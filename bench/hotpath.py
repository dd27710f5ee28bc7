"""CPU per request of the gateway's own path, without the HTTP server, A/B between commits.

    .venv/bin/python bench/hotpath.py [--compare HEAD~1] [--rounds 5] [--requests 20000]
                                      [--scenario tiergate+jwt+rl+log]

Calls `Gateway.__call__` directly (32 requests in flight, as wrk does) with real
aiohttp forwarding to the bench's nginx upstream, and reports the process CPU time
per request (`time.process_time`, so time lost to other processes on this shared
machine is not counted). `--scenario` runs one of bench/scenarios.py's policy sets (with
its bearer token and the access log to /dev/null when the scenario logs) instead of
bare forwarding. With --compare, the same child runs against the gateway/
of each git ref, alternating, so a small change can be measured within noise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
IN_FLIGHT = 32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="append", default=[], metavar="GITREF")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--access-log", action="store_true", help="log each request to a file")
    parser.add_argument("--scenario", help="a policy scenario of bench/scenarios.py")
    parser.add_argument("--child", metavar="UPSTREAM_URL", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        sys.path.insert(0, os.getcwd())  # the gateway/ of the source under test
        drive = _drive(
            args.child, args.requests, args.access_log, args.scenario, args.token, args.redis
        )
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            print(runner.run(drive))
        return 0

    from harness import LOAD_CORE, SUT_CORE, free_port, start_nginx, start_redis
    from run import _check, _upstream_body
    from scenarios import UPSTREAM_PATH, JwtMaterial, scenarios

    with tempfile.TemporaryDirectory(prefix="tiergate-hotpath-") as tmp:
        workdir = Path(tmp)
        sources = {"working tree": REPO}
        for ref in args.compare:
            source = workdir / f"src-{len(sources)}"
            source.mkdir()
            archive = subprocess.run(
                ["git", "archive", ref, "gateway"], cwd=REPO, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
            sources[ref] = source
        port = free_port()
        material = JwtMaterial()
        body = _upstream_body(port, material.jwks)
        upstream = start_nginx("upstream", body, workdir, LOAD_CORE)
        url = f"http://127.0.0.1:{port}"
        redis = redis_url = None
        if args.scenario and any(s.redis for s in scenarios(url) if s.name == args.scenario):
            redis, redis_url = start_redis(workdir, LOAD_CORE)
        try:
            _check(upstream, url + UPSTREAM_PATH)
            samples: dict[str, list[float]] = {name: [] for name in sources}
            for index in range(args.rounds):
                for name, source in sources.items():
                    argv = ["taskset", "-c", SUT_CORE, sys.executable, __file__]
                    argv += ["--child", url, "--requests", str(args.requests)]
                    argv += ["--access-log"] if args.access_log else []
                    if args.scenario:
                        argv += ["--scenario", args.scenario, "--token", material.token]
                    if redis_url:
                        argv += ["--redis", redis_url]
                    out = subprocess.run(
                        argv, cwd=source, capture_output=True, text=True, timeout=300
                    )
                    if out.returncode:
                        raise SystemExit(f"the {name} child failed:\n{out.stderr}")
                    samples[name].append(float(out.stdout.strip().splitlines()[-1]))
                print(
                    f"round {index + 1}: "
                    + "  ".join(f"{n} {v[-1]:.1f} µs" for n, v in samples.items()),
                    flush=True,
                )
        finally:
            upstream.stop()
            if redis is not None:
                redis.stop()
    print("\nCPU µs per request (gateway path only, no HTTP server): median [min-max]")
    for name, values in samples.items():
        print(
            f"  {name:<14} {statistics.median(values):6.1f} [{min(values):.1f}-{max(values):.1f}]"
        )
    return 0


async def _drive(
    upstream: str,
    requests: int,
    access_log: bool,
    scenario: str | None,
    token: str | None,
    redis_url: str | None = None,
) -> float:
    from scenarios import API_PREFIX, CONTRACT, UPSTREAM_PATH, gateway_config, scenarios

    from gateway.loading import validate_config
    from gateway.stack import build_gateway

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "contract.yaml").write_text(CONTRACT)
        raw: dict = {
            "access_log": access_log,
            "apis": [
                {
                    "name": "bench",
                    "tier": "experience",
                    "contract": "contract.yaml",
                    "upstream": {"targets": [upstream]},
                    "policies": {"request-validation": False},
                }
            ],
        }
        headers = [(b"host", b"127.0.0.1:8080")]
        if scenario is not None:
            chosen = next(s for s in scenarios(upstream) if s.name == scenario)
            raw = gateway_config(chosen, upstream, 8080, 8081, tmp, redis_url)
            raw.pop("workers", None)  # one process: the gateway path, in-process
            access_log = chosen.access_log
            if chosen.jwt:
                headers.append((b"authorization", f"Bearer {token}".encode()))
        config = validate_config(raw, Path(tmp) / "tiergate.yaml", env={})
        if access_log:
            from gateway.observability.access_log import configure_access_log

            configure_access_log(open(os.devnull, "wb"))  # noqa: SIM115
        gateway = build_gateway(config)
        await gateway.startup()
        path = (API_PREFIX + UPSTREAM_PATH).encode()
        try:
            await _load(gateway, path, headers, 1000)
            started = time.process_time()
            await _load(gateway, path, headers, requests)
            return (time.process_time() - started) * 1e6 / requests
        finally:
            await gateway.shutdown()


async def _load(gateway: object, path: bytes, headers: list, requests: int) -> None:
    per_task = requests // IN_FLIGHT

    async def client() -> None:
        for _ in range(per_task):
            scope = {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": "1.1",
                "server": ("127.0.0.1", 8080),
                "client": ("127.0.0.1", 50000),
                "scheme": "http",
                "method": "GET",
                "root_path": "",
                "path": path.decode(),
                "raw_path": path,
                "query_string": b"",
                "headers": headers,
            }
            status: list[int] = []

            async def receive() -> dict:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict, status: list[int] = status) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await gateway(scope, receive, send)  # type: ignore[operator]
            if status != [200]:
                raise RuntimeError(f"gateway answered {status}")

    await asyncio.gather(*(client() for _ in range(IN_FLIGHT)))


if __name__ == "__main__":
    raise SystemExit(main())
