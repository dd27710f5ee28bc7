"""Run the public and admin listeners in one process with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import uvicorn

from gateway.admin import create_admin_app
from gateway.app import Gateway
from gateway.config.models import GatewayConfig
from gateway.listener import listener_options
from gateway.observability.access_log import configure_access_log, flush_access_log
from gateway.reload import reload_on_signal
from gateway.reload.component import ReloadComponent
from gateway.stack import build_gateway
from gateway.tls import ListenerTLS, SecureResponses


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled once for both listeners."""

    tls: ListenerTLS | None = None
    listen_sockets: list[socket.socket] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def admin_app(gateway: Gateway) -> Any:
    return create_admin_app(gateway)


def uvicorn_options(config: GatewayConfig) -> dict[str, Any]:
    """Options of both listeners."""
    return {
        "log_level": "warning",
        "access_log": False,
        # X-Forwarded-* is the gateway's business (trusted_proxies), not uvicorn's.
        "proxy_headers": False,
        "server_header": False,
        "date_header": True,
        "timeout_graceful_shutdown": config.shutdown_grace,
        "timeout_keep_alive": 15,
    }


def build_servers(
    config: GatewayConfig, gateway: Gateway, worker: Worker | None = None
) -> list[uvicorn.Server]:
    public = _listener(config, "public", gateway, "on", on_refused=gateway.refused)
    admin_port = None if worker is None else worker.admin_port
    admin = _listener(config, "admin", admin_app(gateway), "off", port=admin_port)
    if worker is not None:  # the public socket is the supervisor's, shared by all workers
        public.listen_sockets = [worker.public_socket]
    return [public, admin]


def _listener(
    config: GatewayConfig,
    name: str,
    app: Any,
    lifespan: Literal["on", "off"],
    port: int | None = None,
    on_refused: Callable[[int], None] | None = None,
) -> _Server:
    listener = getattr(config.listeners, name)
    tls = listener_tls(config, name)
    options = {**uvicorn_options(config), **listener_options(listener, on_refused)}
    if tls is not None:
        app = SecureResponses(app, tls.config.hsts)
        options["ssl_context_factory"] = lambda _config, _default: tls.context
    server = _Server(
        uvicorn.Config(
            app,
            host=listener.host,
            port=listener.port if port is None else port,
            lifespan=lifespan,
            **options,
        )
    )
    server.tls = tls
    return server


@dataclass
class Worker:
    """One of `workers` processes: its index, the shared public socket, its admin port
    and what to call once both listeners accept connections."""

    index: int
    public_socket: socket.socket
    admin_port: int
    ready: Callable[[], None]


def listener_tls(config: GatewayConfig, name: str) -> ListenerTLS | None:
    """The listener's TLS context, loaded now: a file that cannot be loaded stops start-up."""
    tls = getattr(config.listeners, name).tls
    if tls is None:
        return None
    base = config.source.parent if config.source else Path.cwd()
    source = str(config.source or "configuration")
    return ListenerTLS(tls, base, f"listeners.{name}.tls", source)


async def _started(server: uvicorn.Server, task: asyncio.Task) -> bool:
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    return server.started


def _url(server: uvicorn.Server) -> str:
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    scheme = "https" if getattr(server, "tls", None) else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class ListenerFailed(Exception):
    """A listener could not start; uvicorn has logged why (e.g. the port is taken)."""


async def _serve(server: uvicorn.Server, servers: list[uvicorn.Server]) -> None:
    try:
        await server.serve(sockets=getattr(server, "listen_sockets", None))
    except SystemExit:  # uvicorn exits the process when it cannot bind
        for other in servers:
            other.should_exit = True
        lifespan = getattr(server, "lifespan", None)
        if getattr(lifespan, "startup_failed", False):
            raise ListenerFailed("start-up failed: see the error above") from None
        where = f"{server.config.host}:{server.config.port}"
        raise ListenerFailed(f"cannot listen on {where}; is another process using it?") from None


def sighup_handlers(gateway: Gateway) -> list[Callable[[], None]]:
    """What SIGHUP does, in order: each entry is a plain callable run on the event loop
    (reload the config; other reloadable parts append theirs)."""
    return [reload_on_signal(gateway.component(ReloadComponent).reloader)]


async def serve(config: GatewayConfig, worker: Worker | None = None) -> None:
    if config.access_log:
        configure_access_log()
    gateway = build_gateway(config)
    servers = build_servers(config, gateway, worker)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tls = [each for each in (getattr(s, "tls", None) for s in servers) if each is not None]
    hangup = sighup_handlers(gateway)
    if worker is not None:
        index = worker.index
        hangup.insert(0, lambda: print(f"tiergate: worker {index}: SIGHUP", flush=True))
    hangup += [each.reload for each in tls]  # certificates reloaded in place, no connection dropped
    loop.add_signal_handler(signal.SIGHUP, lambda: [handler() for handler in hangup])
    public, admin = servers
    public_task = asyncio.create_task(_serve(public, servers))
    if await _started(public, public_task):  # the public listener first: the lifespan runs there
        admin_task = asyncio.create_task(_serve(admin, servers))
        if await _started(admin, admin_task):
            name = "" if worker is None else f"worker {worker.index} (pid {os.getpid()}): "
            print(f"tiergate: {name}public {_url(public)}  admin {_url(admin)}", flush=True)
            if worker is not None:
                worker.ready()
    else:
        admin_task = asyncio.create_task(asyncio.sleep(0))
    # Both finish (a failed listener has asked the other to stop) before any error is raised.
    results = await asyncio.gather(public_task, admin_task, return_exceptions=True)
    flush_access_log()
    for result in results:
        if isinstance(result, BaseException):
            raise result


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed (uvicorn[standard]): the cheaper event loop."""
    try:
        import uvloop  # optional: only with uvicorn[standard]
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(config: GatewayConfig, worker: Worker | None = None) -> None:
    """Serve until SIGINT/SIGTERM, on uvloop when available."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(config, worker))
