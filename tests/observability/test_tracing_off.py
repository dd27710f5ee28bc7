"""`tracing.exporter: none` (the default): trace context is propagated, but the
OpenTelemetry SDK is never imported and no span is started. Run in a fresh
interpreter, since other tests in this process import the SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, json, sys, tempfile
from pathlib import Path
from gateway.stack import build_gateway
from gateway.loading import validate_config

async def main(upstream):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "c.yaml").write_text(
            "openapi: 3.1.0\ninfo: {title: t, version: '1'}\n"
            "paths: {/get: {get: {responses: {'200': {description: ok}}}}}\n")
        api = {"name": "bin", "tier": "experience", "contract": "c.yaml",
               "upstream": {"targets": [upstream]},
               "policies": {"request-validation": False}}
        raw = {"access_log": False, "registry_url": f"sqlite:///{tmp}/r.db", "apis": [api]}
        gateway = build_gateway(validate_config(raw, Path(tmp) / "tiergate.yaml", env={}))
        await gateway.startup()
        sent, seen = [], []
        scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
                 "path": "/experience/bin/v1/get", "raw_path": b"/experience/bin/v1/get",
                 "query_string": b"show_env=1", "root_path": "", "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80), "headers": [(b"host", b"gw")]}

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        # Sees each request's log before the observability component ends its span.
        gateway.observers = (lambda ctx, status: seen.append(dict(ctx.log)), *gateway.observers)
        try:
            await gateway(scope, receive, send)
        finally:
            await gateway.shutdown()
        body = json.loads(b"".join(
            m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
        print(json.dumps({
            "status": sent[0]["status"],
            "traceparent": body["headers"].get("Traceparent"),
            "tracer": gateway.tracer is not None,
            "span": any("_span" in log for log in seen),
            "sdk": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
        }))

asyncio.run(main(sys.argv[1]))
"""


def test_no_sdk_import_and_no_span_when_tracing_is_off(httpbin_url):
    done = subprocess.run(
        [sys.executable, "-c", CHILD, httpbin_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert result["traceparent"] and len(result["traceparent"].split("-")[1]) == 32  # propagated
    assert result["tracer"] is False and result["span"] is False
    assert result["sdk"] == []
