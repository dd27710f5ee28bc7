"""`tiergate up` with several worker processes on one public port.

Each worker listens on the public port with its own socket and SO_REUSEPORT, so the
kernel spreads connections evenly over the workers (one shared socket lets whichever
worker wakes first take a whole burst). The supervisor holds the port (bound, not
listening: it receives no connection) so that port 0 resolves once for all workers;
it runs no event loop and serves nothing itself.

- Start: worker 0 starts first (it creates the registry's schema and the first signing
  key when there are none), the others once it accepts connections. A worker listens
  before its start-up runs: connections it is handed meanwhile wait in its backlog.
- SIGTERM/SIGINT: passed to every worker, which stops accepting and lets requests in
  flight finish within `shutdown_grace`; the supervisor exits when they all have.
- SIGHUP: passed to every worker.
- A worker that dies while serving is started again (at most once per second).
- Worker i serves the admin listener (and its /metrics) on admin port + i: Prometheus
  scrapes each worker as its own target (with admin port 0, each takes a free port).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from gateway.config.models import GatewayConfig
from gateway.reload.component import WORKER_ENV
from gateway.server import ListenerFailed, Worker, run

log = logging.getLogger("tiergate.workers")

MEMORY_NEEDS_ONE_WORKER = (
    "{source}: workers: {workers} with limits_storage {storage!r}: each worker would count "
    "on its own and admit up to {workers} times every limit and quota. Use a redis:// "
    "limits_storage for exact limits across workers, or set rate_limiting.per_worker: true "
    "to accept up to {workers} times the limits."
)
SYNC_NEEDS_REDIS = (
    "{source}: rate_limiting.sync needs a plain Redis limits_storage (redis://, rediss://, "
    "redis+unix://), not {storage!r}: it batches counts to Redis"
)
WORKER_FAILED = "worker {index} exited with code {code} before it was ready; stopping"
WORKER_DIED = "worker %d exited with code %s; starting it again"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
BACKLOG = 2048


def worker_problems(config: GatewayConfig, workers: int) -> list[str]:
    """What refuses `workers` processes with this config (sentences naming the field)."""
    source = config.source or "config"
    storage = config.limits_storage
    scheme = storage.removeprefix("async+").split("://", 1)[0]
    problems = []
    if workers > 1 and scheme.startswith("memory") and not config.rate_limiting.per_worker:
        problems.append(
            MEMORY_NEEDS_ONE_WORKER.format(source=source, workers=workers, storage=storage)
        )
    if config.rate_limiting.sync is not None and scheme not in ("redis", "rediss", "redis+unix"):
        problems.append(SYNC_NEEDS_REDIS.format(source=source, storage=storage))
    return problems


def reuse_port_socket(host: str, port: int, listen: bool, reuse: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        raise ListenerFailed(f"cannot listen on {where}; is another process using it?") from exc
    return sock


def admin_port(config: GatewayConfig, index: int) -> int:
    base = config.listeners.admin.port
    return 0 if base == 0 else base + index


def _worker_main(config: GatewayConfig, index: int, port: int, ready: Any) -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    signal.signal(signal.SIGHUP, lambda *_: print(f"tiergate: worker {index}: SIGHUP", flush=True))
    os.environ[WORKER_ENV] = str(index)  # the admin reload endpoint asks the supervisor
    try:
        sock = reuse_port_socket(config.listeners.public.host, port, listen=True)
        run(config, Worker(index, sock, admin_port(config, index), ready.set))
    except ListenerFailed as error:
        print(f"tiergate: worker {index}: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


class Supervisor:
    def __init__(self, config: GatewayConfig, workers: int) -> None:
        self.config = config
        self.count = workers
        self.context = multiprocessing.get_context("fork")
        self.processes: dict[int, Any] = {}
        self.ready: dict[int, Any] = {}
        self.started_at: dict[int, float] = {}
        self.port = 0

    def _start(self, index: int) -> None:
        ready = self.context.Event()
        process = self.context.Process(
            target=_worker_main,
            args=(self.config, index, self.port, ready),
            name=f"tiergate-worker-{index}",
        )
        process.start()
        self.processes[index] = process
        self.ready[index] = ready
        self.started_at[index] = time.monotonic()

    def _wait_ready(self, indexes: list[int]) -> int:
        """0 when every worker in `indexes` accepts connections; else an exit code."""
        while True:
            if all(self.ready[i].is_set() for i in indexes):
                return 0
            for i in indexes:
                process = self.processes[i]
                if not process.is_alive() and not self.ready[i].is_set():
                    print(
                        "tiergate: " + WORKER_FAILED.format(index=i, code=process.exitcode),
                        file=sys.stderr,
                        flush=True,
                    )
                    self._stop()
                    return 1
            received = signal.sigtimedwait(SIGNALS, 0.05)
            if received is not None and received.si_signo in (signal.SIGINT, signal.SIGTERM):
                self._stop()
                return 0

    def _signal_all(self, signo: int) -> None:
        for process in self.processes.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signo)

    def _stop(self) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.config.shutdown_grace + 10
        for process in self.processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(5)

    def _restart_dead(self) -> None:
        for index, process in list(self.processes.items()):
            if process.is_alive():
                continue
            process.join()
            if time.monotonic() - self.started_at[index] < 1.0:
                time.sleep(1.0)  # a worker that dies at once is not restarted in a tight loop
            log.warning(WORKER_DIED, index, process.exitcode)
            print(f"tiergate: worker {index} exited ({process.exitcode}); restarting", flush=True)
            self._start(index)

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        host = self.config.listeners.public.host
        # A plain bind first: it fails when anything, another Tiergate's workers included,
        # holds the port (SO_REUSEPORT alone would join their group).
        probe = reuse_port_socket(
            host, self.config.listeners.public.port, listen=False, reuse=False
        )
        self.port = probe.getsockname()[1]
        probe.close()
        holder = reuse_port_socket(host, self.port, listen=False)
        try:
            self._start(0)
            code = self._wait_ready([0])
            if code or not self.processes[0].is_alive():
                return code
            for index in range(1, self.count):
                self._start(index)
            code = self._wait_ready(list(range(self.count)))
            if code:
                return code
            print(f"tiergate: {self.count} workers on {host}:{self.port}", flush=True)
            return self._serve()
        finally:
            holder.close()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)

    def _serve(self) -> int:
        while True:
            received = signal.sigtimedwait(SIGNALS, 1.0)
            signo = received.si_signo if received is not None else None
            if signo in (signal.SIGINT, signal.SIGTERM):
                self._stop()
                return 0
            if signo == signal.SIGHUP:
                self._signal_all(signal.SIGHUP)
            self._restart_dead()


def run_workers(config: GatewayConfig, workers: int, serve_one: Callable[[], None]) -> int:
    """Serve with `workers` processes; one worker is the plain single process."""
    if workers <= 1:
        serve_one()
        return 0
    return Supervisor(config, workers).run()
