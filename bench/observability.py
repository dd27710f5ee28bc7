"""What observability costs on the hot path: CPU µs per request, each mode on vs off.

    .venv/bin/python bench/observability.py [--rounds 5] [--requests 20000]
    .venv/bin/python bench/observability.py --modes off,metrics --compare HEAD~1

Calls `Gateway.__call__` in-process (32 requests in flight, as wrk does) against a
trivial in-process upstream (`asgi:` target), so the numbers are the gateway's own
path without HTTP server or sockets. Each mode runs in a fresh child process pinned
to one core, modes alternate round by round, and the median of the rounds is
reported with the difference to `off`. With --compare, every mode also runs
against the gateway/ of each git ref (alternating). A child in a mode with
`tracing: none` fails if anything imported the OpenTelemetry SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
BODY = b'{"ok":true}'

# mode -> (metrics.enabled, access_log, tracing.exporter)
MODES = {
    "off": (False, False, "none"),
    "metrics": (True, False, "none"),
    "log": (False, True, "none"),
    "tracing": (False, False, "memory"),
    "metrics+log": (True, True, "none"),
    "all": (True, True, "memory"),
}


async def upstream(scope: dict, receive: object, send: object) -> None:
    """The in-process upstream: a fixed JSON answer."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()  # type: ignore[operator]
            await send({"type": message["type"] + ".complete"})  # type: ignore[operator]
            if message["type"] == "lifespan.shutdown":
                return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": BODY})  # type: ignore[operator]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--compare", action="append", default=[], metavar="GITREF")
    parser.add_argument("--child", metavar="MODE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, os.getcwd())  # the gateway/ of the source under test
        print(json.dumps(asyncio.run(_drive(args.child, args.requests))))
        return 0
    with tempfile.TemporaryDirectory(prefix="tiergate-obsbench-") as tmp:
        sources = {"": REPO}
        for ref in args.compare:
            source = Path(tmp) / f"src-{len(sources)}"
            source.mkdir()
            archive = subprocess.run(
                ["git", "archive", ref, "gateway"], cwd=REPO, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
            sources[f"@{ref}"] = source
        _measure(args.modes.split(","), sources, args.rounds, args.requests)
    return 0


def _measure(modes: list[str], sources: dict[str, Path], rounds: int, requests: int) -> None:
    samples: dict[str, list[float]] = {m + s: [] for s in sources for m in modes}
    core = str(os.sched_getaffinity(0).pop())
    for index in range(rounds):
        for suffix, source in sources.items():
            for mode in modes:
                argv = ["taskset", "-c", core, sys.executable, __file__, "--child", mode]
                out = subprocess.run(
                    [*argv, "--requests", str(requests)],
                    cwd=source,
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=300,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                samples[mode + suffix].append(result["us"])
        print(
            f"round {index + 1}: " + "  ".join(f"{m} {v[-1]:.1f}" for m, v in samples.items()),
            flush=True,
        )
    print("\nCPU µs per request (in-process gateway path): median [min-max]  vs off")
    for suffix in sources:
        base = samples.get("off" + suffix)
        for mode in modes:
            values = samples[mode + suffix]
            median = statistics.median(values)
            delta = f"{median - statistics.median(base):+6.1f}" if base else ""
            print(
                f"  {mode + suffix:<22} {median:6.1f} [{min(values):.1f}-{max(values):.1f}]"
                f"  {delta}"
            )


async def _drive(mode: str, requests: int) -> dict[str, object]:
    from hotpath import _load

    from gateway.loading import validate_config
    from gateway.stack import build_gateway

    metrics, log, exporter = MODES[mode]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "contract.yaml").write_text(
            "openapi: 3.1.0\ninfo: {title: bench, version: '1'}\npaths: {/data.json: {}}\n"
        )
        raw = {
            "access_log": log,
            "registry_url": f"sqlite:///{tmp}/registry.db",
            "observability": {"metrics": {"enabled": metrics}, "tracing": {"exporter": exporter}},
            "apis": [
                {
                    "name": "bench",
                    "tier": "experience",
                    "contract": "contract.yaml",
                    "upstream": {"targets": ["asgi:__main__:upstream"]},
                    "policies": {"request-validation": False},
                }
            ],
        }
        config = validate_config(raw, Path(tmp) / "tiergate.yaml", env={})
        if log:
            from gateway.observability.access_log import configure_access_log

            configure_access_log(open(os.devnull, "wb"))  # noqa: SIM115
        gateway = build_gateway(config)
        await gateway.startup()
        path = b"/experience/bench/v1/data.json"
        try:
            await _load(gateway, path, 1000)
            exporter_ = gateway.services.span_exporter
            if exporter_ is not None:
                exporter_.clear()
            started = time.process_time()
            await _load(gateway, path, requests)
            us = (time.process_time() - started) * 1e6 / requests
        finally:
            await gateway.shutdown()
    sdk = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    if exporter == "none" and sdk:
        raise SystemExit(f"tracing: none imported {sdk[:3]}")
    return {"us": us, "otel_modules": len(sdk)}


if __name__ == "__main__":
    raise SystemExit(main())
