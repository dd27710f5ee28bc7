"""One JSON line per request. Never headers, query strings or bodies: no credentials."""

from __future__ import annotations

import json
import logging
import sys
import time

from gateway.context import RequestContext
from gateway.types import Scope

LOGGER_NAME = "tiergate.access"
logger = logging.getLogger(LOGGER_NAME)


def configure_access_log() -> None:
    """Send access lines to stdout as bare JSON (idempotent)."""
    if not any(getattr(h, "_tiergate", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._tiergate = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def log_request(ctx: RequestContext, status: int) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    record = {
        "ts": round(time.time(), 3),
        "request_id": ctx.request_id,
        "trace_id": ctx.trace.trace_id if ctx.trace else None,
        "api": ctx.route.api.name,
        "tier": ctx.route.api.tier,
        "method": ctx.method,
        "path": ctx.path,
        "status": status,
        "client_ip": ctx.client_ip,
        "consumer": ctx.identity.consumer_id if ctx.identity else None,
        "total_ms": round((time.perf_counter() - ctx.started) * 1000, 3),
    }
    if ctx.log:
        record.update((k, v) for k, v in ctx.log.items() if not k.startswith("_"))
    logger.info(json.dumps(record, separators=(",", ":")))


def log_outside(scope: Scope, status: int, started: float, request_id: str | None) -> None:
    """The line for a request no API handled: gateway endpoints, 400/404/405 answers."""
    if not logger.isEnabledFor(logging.INFO):
        return
    raw_path = scope.get("raw_path")
    record = {
        "ts": round(time.time(), 3),
        "request_id": request_id,
        "api": None,
        "method": scope["method"],
        "path": raw_path.decode("latin-1") if raw_path else scope["path"],
        "status": status,
        "client_ip": scope["client"][0] if scope.get("client") else None,
        "total_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    logger.info(json.dumps(record, separators=(",", ":")))
