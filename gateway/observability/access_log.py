"""One JSON line per request. Never headers, query strings or bodies: no credentials.

`tiergate up` calls `configure_access_log()`, which sends lines straight to stdout,
joined once per event-loop iteration (after the responses of that iteration went out)
and written by a thread of their own, so a slow stdout (a full pipe, a slow disk) never
blocks the event loop: going through `logging` (a LogRecord, a formatter, a lock and a
flush per line) cost more than building the line itself.
Without it (an embedding application, tests) lines go to the `tiergate.access`
logger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sys
import threading
import time
from typing import IO

import orjson

from gateway.context import RequestContext
from gateway.types import Scope

LOGGER_NAME = "tiergate.access"
logger = logging.getLogger(LOGGER_NAME)
_ascii_json = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps builds one per call


def _encode(record: dict[str, object]) -> bytes:
    """The record as one JSON line, ASCII only: orjson (a tenth of json's cost), or, when
    a value holds non-ASCII (an IdP's `sub`, say), json's \\u escapes, so that a log
    viewer shows what was sent rather than rendering bidi overrides or C1 controls."""
    line = orjson.dumps(record)
    return line if line.isascii() else _ascii_json(record).encode()


class _Sink:
    """Collects lines; once per event-loop iteration hands them, joined, to the writer
    thread (one blocking write per batch, off the event loop)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lines: list[bytes] = []
        self._batches: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="access-log", daemon=True)
        self._writer.start()

    def _write(self) -> None:
        while True:
            data = self._batches.get()
            if data is None:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):  # stdout closed: nothing to write to any more
                pass

    def close(self) -> None:
        """Write what is pending and stop the writer (at shutdown)."""
        self.flush()
        self._batches.put(None)
        self._writer.join(10)

    def __call__(self, line: bytes) -> None:
        if not self._lines:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: write now
                self._lines.append(line)
                self.flush()
                return
        self._lines.append(line)

    def flush(self) -> None:
        if self._lines:
            data = b"\n".join(self._lines) + b"\n"
            self._lines.clear()
            self._batches.put(data)


_sink: _Sink | None = None


def configure_access_log(stream: IO[bytes] | None = None) -> None:
    """Send access lines to stdout (or `stream`) as bare JSON (idempotent)."""
    global _sink
    if _sink is not None:
        _sink.close()
    _sink = _Sink(stream if stream is not None else sys.stdout.buffer)


def flush_access_log() -> None:
    """Write every pending line before returning (at shutdown); logging goes on after."""
    global _sink
    if _sink is not None:
        stream = _sink._stream
        _sink.close()
        _sink = _Sink(stream)


def log_request(ctx: RequestContext, status: int) -> None:
    sink = _sink
    if sink is None and not logger.isEnabledFor(logging.INFO):
        return
    identity = ctx.identity
    trace = ctx.trace
    api = ctx.route.api
    record = {
        "ts": round(time.time(), 3),
        "request_id": ctx.request_id,
        "trace_id": trace.trace_id if trace is not None else None,
        "api": api.name,
        "tier": api.tier,
        "method": ctx.method,
        "path": ctx.path,
        "status": status,
        "client_ip": ctx.client_ip,
        "consumer": identity.consumer_id if identity is not None else None,
    }
    user = identity.end_user if identity is not None else None
    if user is not None:  # a signed-in user's token: `user` and `actor` (nearest first)
        record["user"] = user.username
        record["actor"] = " ".join(user.actors) or None
    record["total_ms"] = round((time.perf_counter() - ctx.started) * 1000, 3)
    extra = ctx.log
    if extra:
        record.update(extra)
        for key in extra:
            if key.startswith("_"):  # private to the gateway (a span): never logged
                del record[key]
    _emit(sink, record)


def log_outside(scope: Scope, status: int, started: float, request_id: str | None) -> None:
    """The line for a request no API handled: gateway endpoints, 400/404/405 answers."""
    sink = _sink
    if sink is None and not logger.isEnabledFor(logging.INFO):
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
    _emit(sink, record)


def _emit(sink: _Sink | None, record: dict[str, object]) -> None:
    if sink is not None:
        sink(_encode(record))
    else:
        logger.info(_encode(record).decode())
