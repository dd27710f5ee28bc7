"""Where Tiergate's CPU per request goes: py-spy samples one worker under wrk load.

    .venv/bin/python bench/profile.py [--scenario tiergate] [--duration 10] [--native]

Writes a flame graph (SVG) and the collapsed stacks under bench/results/ and
prints the share of samples by component (self time) and by key function
(inclusive time).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import LOAD_CORE, ensure_tools, free_port, run_wrk, start_nginx
from run import REPO, RESULTS, _check, _Redis, _tiergate, _upstream_body
from scenarios import UPSTREAM_PATH, JwtMaterial, scenarios

# Self time is charged to the first component whose fragment is in the innermost frame.
# py-spy names files relative to sys.path, so gateway modules may appear bare.
COMPONENTS = [
    ("(gateway/app.py", "gateway: app (route, context, chain)"),
    ("(gateway/routing.py", "gateway: routing"),
    ("forward.py:", "gateway: forward"),
    ("headers.py:", "gateway: headers"),
    ("aiohttp_transport.py:", "gateway: aiohttp transport"),
    ("access_log.py:", "gateway: access log"),
    ("(gateway/", "gateway: other"),
    ("balancer.py:", "gateway: other"),
    ("<string>:", "gateway: other (dataclass __init__)"),
    ("(aiohttp/", "aiohttp client"),
    ("(multidict/", "multidict"),
    ("(yarl/", "yarl (URLs)"),
    ("(uvicorn/", "uvicorn (server protocol)"),
    ("(logging/", "logging"),
    ("(json/", "json"),
    ("(asyncio/", "asyncio loop (Python) + uvloop (C)"),
    ("(selectors.py", "asyncio loop (Python) + uvloop (C)"),
    ("(uvloop/", "asyncio loop (Python) + uvloop (C)"),
]
# Inclusive time of these frames (qualified function names as py-spy prints them).
KEY_FUNCTIONS = [
    "RequestResponseCycle.run_asgi",
    "Gateway.__call__",
    "Gateway._handle",
    "Forwarder.forward",
    "Forwarder._request_parts",
    "AiohttpTransport.send",
    "ClientSession._request",
    "Forwarder._respond",
    "log_request",
    "HttpToolsProtocol.data_received",
    "ResponseHandler.data_received",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="tiergate", help="a scenario name from run.py")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--native", action="store_true", help="also sample C frames")
    args = parser.parse_args(argv)
    ensure_tools()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is missing: .venv/bin/pip install py-spy", file=sys.stderr)
        return 1
    jwt = JwtMaterial()
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = RESULTS / f"profile-{args.scenario}-{stamp}"
    with tempfile.TemporaryDirectory(prefix="tiergate-profile-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        upstream = start_nginx("upstream", _upstream_body(port, jwt.jwks), workdir, LOAD_CORE)
        upstream_url = f"http://127.0.0.1:{port}"
        scenario = next(s for s in scenarios(upstream_url) if s.name == args.scenario)
        headers = {"Authorization": f"Bearer {jwt.token}"} if scenario.jwt else {}
        redis = _Redis(workdir)
        gateway, url = _tiergate(scenario, workdir, upstream_url, redis=redis)
        try:
            _check(upstream, upstream_url + UPSTREAM_PATH)
            _check(gateway, url, headers)
            run_wrk(url, 2, 32, headers)  # warm-up
            load = threading.Thread(
                target=lambda: print(run_wrk(url, args.duration + 2, 32, headers)), daemon=True
            )
            load.start()
            time.sleep(1)
            record = [py_spy, "record", "--pid", str(gateway.pid), "--duration", str(args.duration)]
            record += ["--rate", str(args.rate), "--nonblocking", "--format", "raw"]
            record += ["--output", f"{base}.txt"] + (["--native"] if args.native else [])
            subprocess.run(record, check=True, timeout=args.duration + 60, capture_output=True)
            load.join(args.duration + 30)
        finally:
            gateway.stop()
            redis.stop()
            upstream.stop()
    summarise(Path(f"{base}.txt"))
    print(f"\ncollapsed stacks: {base}.txt")
    return 0


def summarise(collapsed: Path) -> None:
    selfs: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        selfs[_component(frames[-1])] += count
        functions[_short(frames[-1]).rsplit(":", 1)[0] + ")"] += count
        names = {frame.split(" (", 1)[0] for frame in frames}
        for name in KEY_FUNCTIONS:
            if name in names:
                inclusive[name] += count
    if not total:
        print("no samples")
        return
    print(f"\n{total} samples (CPU only, idle excluded)\n\nself time by component")
    for label, count in selfs.most_common():
        print(f"  {count * 100 / total:5.1f}%  {label}")
    print("\ninclusive time of key functions")
    for name in KEY_FUNCTIONS:
        print(f"  {inclusive[name] * 100 / total:5.1f}%  {name}")
    print("\ntop 25 functions by self time")
    for label, count in functions.most_common(25):
        print(f"  {count * 100 / total:5.1f}%  {label}")


def _component(frame: str) -> str:
    for fragment, label in COMPONENTS:
        if fragment in frame:
            return label
    return "other: " + _short(frame).split(" ")[-1].split(":")[0]


def _short(frame: str) -> str:
    # "func (path/to/site-packages/pkg/mod.py:123)" -> "func (pkg/mod.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3.11/", f"{REPO}/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


if __name__ == "__main__":
    raise SystemExit(main())
