"""Run the public and admin listeners in one process with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from gateway.app import Gateway
from gateway.config.models import GatewayConfig
from gateway.listener import listener_options
from gateway.observability.access_log import configure_access_log, flush_access_log


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled once for both listeners."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def admin_app(gateway: Gateway) -> Any:
    from gateway.admin import create_admin_app

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


def build_servers(config: GatewayConfig, gateway: Gateway) -> list[uvicorn.Server]:
    common = uvicorn_options(config)
    public = uvicorn.Config(
        gateway,
        host=config.listeners.public.host,
        port=config.listeners.public.port,
        lifespan="on",
        **{**common, **listener_options(config.listeners.public)},
    )
    admin = uvicorn.Config(
        admin_app(gateway),
        host=config.listeners.admin.host,
        port=config.listeners.admin.port,
        lifespan="off",
        **{**common, **listener_options(config.listeners.admin)},
    )
    return [_Server(public), _Server(admin)]


async def _started(server: uvicorn.Server, task: asyncio.Task) -> bool:
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    return server.started


def _url(server: uvicorn.Server) -> str:
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ListenerFailed(Exception):
    """A listener could not start; uvicorn has logged why (e.g. the port is taken)."""


async def _serve(server: uvicorn.Server, servers: list[uvicorn.Server]) -> None:
    try:
        await server.serve()
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
    from gateway.reload import reload_on_signal

    return [reload_on_signal(gateway.services["reloader"])]


async def serve(config: GatewayConfig) -> None:
    if config.access_log:
        configure_access_log()
    gateway = Gateway(config)
    servers = build_servers(config, gateway)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    hangup = sighup_handlers(gateway)
    loop.add_signal_handler(signal.SIGHUP, lambda: [handler() for handler in hangup])
    public, admin = servers
    public_task = asyncio.create_task(_serve(public, servers))
    if await _started(public, public_task):  # the public listener first: the lifespan runs there
        admin_task = asyncio.create_task(_serve(admin, servers))
        if await _started(admin, admin_task):
            print(f"tiergate: public {_url(public)}  admin {_url(admin)}", flush=True)
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
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(config: GatewayConfig) -> None:
    """Serve until SIGINT/SIGTERM, on uvloop when available."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(config))
