"""`tiergate up --watch`: reload whenever the config file or a contract it names changes.
For development; watchfiles is a development dependency (`pip install tiergate[dev]`)."""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.config.loader import contract_path
from gateway.config.models import GatewayConfig
from gateway.reload import Reloader

log = logging.getLogger("tiergate.reload")

ENV = "TIERGATE_WATCH"  # set by `tiergate up --watch`, so every worker watches
NO_WATCHFILES = "--watch needs the watchfiles package (pip install 'tiergate[dev]')"


def watched(config: GatewayConfig) -> list[Path]:
    paths = [config.source] if config.source is not None else []
    paths += [contract_path(config, api.contract) for api in config.apis if api.contract]
    return sorted({path.resolve() for path in paths if path.exists()})


async def watch(reloader: Reloader) -> None:
    """Reload after each burst of changes; the files watched follow the running config."""
    try:
        from watchfiles import awatch
    except ImportError:
        log.error(NO_WATCHFILES)
        return
    while paths := watched(reloader.gateway.config):
        before = paths
        async for _ in awatch(*paths, debounce=200, step=50):
            await reloader.reload()
            if watched(reloader.gateway.config) != before:
                break  # contracts added or removed: watch the new set
