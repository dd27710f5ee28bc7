"""Run the public and admin listeners in one process with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

from gateway.app import Gateway
from gateway.config.models import GatewayConfig
from gateway.observability.access_log import configure_access_log


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled once for both listeners."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def admin_app(gateway: Gateway) -> Any:
    from gateway.admin import create_admin_app

    return create_admin_app(gateway)


def build_servers(config: GatewayConfig, gateway: Gateway) -> list[uvicorn.Server]:
    from gateway.listener import listener_options  # edge limits (docs/policies-edge.md)

    common: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
        "date_header": True,
        "timeout_graceful_shutdown": config.shutdown_grace,
        "timeout_keep_alive": 15,
    }
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
    public, admin = servers
    public_task = asyncio.create_task(public.serve())
    while not public.started and not public_task.done():
        await asyncio.sleep(0.05)
    if public_task.done():  # start-up failed; uvicorn has said why
        await public_task
        raise SystemExit(1)
    admin_task = asyncio.create_task(admin.serve())
    print(
        f"tiergate: public http://{config.listeners.public.host}:{config.listeners.public.port}"
        f"  admin http://{config.listeners.admin.host}:{config.listeners.admin.port}",
        flush=True,
    )
    await asyncio.gather(public_task, admin_task)
