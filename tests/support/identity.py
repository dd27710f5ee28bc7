"""A gateway with the identity components on real uvicorn: public and admin listeners
in one event loop (as `tiergate up` runs them), on free ports."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from gateway.admin import create_admin_app
from gateway.app import Gateway
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import Server, free_socket

ADMIN_TOKEN = "test-admin-token-0123456789"


@dataclass
class RunningGateway:
    gateway: Gateway
    url: str
    admin_url: str


@contextmanager
def running_gateway(
    tmp_path: Path, registry_url: str, apis: list[dict[str, Any]] | None = None, **top: Any
) -> Iterator[RunningGateway]:
    top.setdefault("admin_token", ADMIN_TOKEN)
    oauth = {"key_activation_delay": 0, "refresh_interval": 0.5, **top.pop("oauth", {})}
    apis = apis or []
    config = make_config(tmp_path, apis, registry_url=registry_url, oauth=oauth, **top)
    # The file the config names as its source: what a reload reads again.
    raw = {"access_log": False, "registry_url": registry_url, "oauth": oauth, **top, "apis": apis}
    (tmp_path / "tiergate.yaml").write_text(yaml.safe_dump(raw))
    gateway = build_gateway(config)
    sockets = [free_socket(), free_socket()]
    servers = [
        Server(uvicorn.Config(gateway, log_level="warning", lifespan="on")),
        Server(uvicorn.Config(create_admin_app(gateway), log_level="warning", lifespan="off")),
    ]

    async def serve_both() -> None:
        public = asyncio.create_task(servers[0].serve(sockets=[sockets[0]]))
        while not servers[0].started and not public.done():
            await asyncio.sleep(0.01)
        await asyncio.gather(public, servers[1].serve(sockets=[sockets[1]]))

    thread = threading.Thread(target=lambda: asyncio.run(serve_both()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not all(s.started for s in servers):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    ports = [s.getsockname()[1] for s in sockets]
    try:
        yield RunningGateway(
            gateway, f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
        )
    finally:
        for server in servers:
            server.exit()
        thread.join(30)
        for sock in sockets:
            sock.close()
