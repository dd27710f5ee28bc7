"""Reload the config without a restart: read and check everything first, then swap.

A reload reads the config file again (with the environment's overrides), runs the
checks `tiergate up` runs, compiles every changed API's contract and builds its policy
chain. Any error leaves the running config in place. On success the route table, the
upstream pools and the config are replaced in one step of the event loop (no `await`
between the assignments), so a request sees either the old table or the new one; a
request already routed finishes on the route, chain and pool it started with.

What did not change is kept: an API whose config, contract file and the global
settings are unchanged keeps its route, chain (and the caches policies hold) and pool
(breakers, health). Stores shared through `Services` (rate-limit counters,
registry, key ring, JWKS) are never rebuilt. Pools no longer used are drained: their
health checks stop and their idle connections close once their requests are done.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.checks import run_checks
from gateway.config import ConfigError
from gateway.config.loader import contract_path
from gateway.config.models import GatewayConfig
from gateway.loading import load_config
from gateway.operations import load_route_contract
from gateway.pipeline import build_chain
from gateway.proxy.balancer import TargetPool
from gateway.proxy.forward import Forwarder
from gateway.proxy.headers import ForwardedPolicy
from gateway.registry.plans import configured_plans
from gateway.routing import RouteTable

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("tiergate.reload")

# Settings read once by the listeners and stores: a reload that changes them is refused.
RESTART_ONLY = (
    "listeners",
    "registry_url",
    "limits_storage",
    "rate_limiting",
    "oauth",
    "observability",
    "catalogue",
    "admin_token",
    "admin_tokens",
    "workers",
)
RESTART_NEEDED = "{field}: changed, but this setting is read only at start-up; restart the gateway"
BUILD_FAILED = "apis.{api}: {error}"
RELOADED = "config reloaded from %s: %d added, %d changed, %d removed, %d unchanged"
REFUSED = "config reload refused; still serving the previous config:\n%s"


class ReloadFailed(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(slots=True)
class ReloadResult:
    ok: bool
    at: float
    problems: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "status": "reloaded" if self.ok else "refused",
            "at": self.at,
            "apis": {
                "added": self.added,
                "changed": self.changed,
                "removed": self.removed,
                "unchanged": self.unchanged,
            },
        }


def fingerprints(config: GatewayConfig) -> dict[str, str]:
    """Per API, a digest of everything its route depends on: its config, its contract
    file and the global settings (plans, defaults...). Equal digest: nothing to rebuild."""
    common = json.dumps(config.model_dump(mode="json", exclude={"apis"}), sort_keys=True)
    prints = {}
    for api in config.apis:
        digest = hashlib.sha256(common.encode())
        digest.update(api.model_dump_json().encode())
        if api.contract is not None:
            try:
                digest.update(Path(contract_path(config, api.contract)).read_bytes())
            except OSError:
                digest.update(b"\0unreadable")
        prints[api.name] = digest.hexdigest()
    return prints


def read_checked(source: Path | None, running: GatewayConfig) -> GatewayConfig:
    """The config file as `tiergate up` would accept it, or ReloadFailed with every problem."""
    try:
        config = load_config(source)
    except ConfigError as error:
        raise ReloadFailed(str(error).splitlines()) from None
    if not config.admin_token and running.admin_token:
        # `tiergate up` stored (or generated) it in var/admin-token: the same token still
        config = config.model_copy(update={"admin_token": running.admin_token})
    problems = run_checks(config, advisory=False)
    for name in RESTART_ONLY:
        if getattr(config, name) != getattr(running, name):
            problems.append(RESTART_NEEDED.format(field=name))
    if problems:
        raise ReloadFailed(problems)
    return config


class Reloader:
    """Reloads one gateway; one reload at a time."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.results = {"success": 0, "failure": 0}
        self.last_success: float | None = None
        self._lock = asyncio.Lock()
        self._prints: dict[str, str] = {}
        self._background: set[asyncio.Task] = set()

    def started(self) -> None:
        """Remember what the running config's routes were built from."""
        self._prints = fingerprints(self.gateway.config)

    async def reload(self) -> ReloadResult:
        async with self._lock:
            try:
                return await self._reload()
            except ReloadFailed as failed:
                return self._refused(failed.problems)

    async def _reload(self) -> ReloadResult:
        gateway = self.gateway
        running = gateway.config
        config = await asyncio.to_thread(read_checked, running.source, running)
        prints = await asyncio.to_thread(fingerprints, config)
        keep = {name for name, value in prints.items() if self._prints.get(name) == value}
        previous = {route.api.name: route for route in gateway.table.routes}
        table = RouteTable(config.apis)
        for route in table.routes:  # contracts and chains first: nothing to undo if one fails
            name = route.api.name
            if name in keep and name in previous:
                route.contract = previous[name].contract
                route.chain = previous[name].chain
                continue
            try:
                route.contract = load_route_contract(config, route.api)
                route.chain = build_chain(
                    gateway.policies, config, route.api, gateway.services, route.contract
                )
            except Exception as error:  # a policy's own build-time check
                raise ReloadFailed([BUILD_FAILED.format(api=name, error=error)]) from None
        try:
            upstreams, retired, stopped = await gateway.upstreams.successor(config, keep)
        except Exception as error:
            raise ReloadFailed([f"upstreams: {error}"]) from None
        forwarded = (
            gateway.forwarded
            if config.trusted_proxies == running.trusted_proxies
            else ForwardedPolicy(config.trusted_proxies)
        )
        for route in table.routes:
            name = route.api.name
            if name in keep and name in previous:
                route.upstream = previous[name].upstream
            else:
                route.upstream = Forwarder(name, upstreams.pool(name), forwarded)
        # The swap: plain assignments, no await in between.
        gateway.config, gateway.table, gateway.upstreams = config, table, upstreams
        gateway.forwarded, gateway.access_log = forwarded, config.access_log
        for component in gateway.components:
            if getattr(component, "config", None) is running:
                component.config = config  # type: ignore[attr-defined]
        self._prints = prints
        self.in_background(_drain(retired, stopped, upstreams, running.shutdown_grace))
        self.in_background(_sync_plans(gateway))
        result = ReloadResult(
            ok=True,
            at=time.time(),
            added=sorted(set(prints) - set(previous)),
            changed=sorted(set(prints) & set(previous) - keep),
            removed=sorted(set(previous) - set(prints)),
            unchanged=sorted(keep & set(previous)),
        )
        self.results["success"] += 1
        self.last_success = result.at
        log.warning(
            RELOADED,
            config.source,
            len(result.added),
            len(result.changed),
            len(result.removed),
            len(result.unchanged),
        )
        return result

    def _refused(self, problems: list[str]) -> ReloadResult:
        self.results["failure"] += 1
        log.error(REFUSED, "\n".join(problems))
        return ReloadResult(ok=False, at=time.time(), problems=problems)

    def in_background(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()


async def _drain(
    retired: list[TargetPool], stopped: list[asyncio.Task], current: Any, grace: float
) -> None:
    """Let the requests on pools no longer used finish, then stop their health checks
    and close idle connections to targets no current pool names."""
    deadline = time.monotonic() + grace
    targets = [target for pool in retired for target in pool.targets]
    while any(t.slots.active for t in targets) and time.monotonic() < deadline:  # noqa: ASYNC110 - slots have no "idle" event
        await asyncio.sleep(0.05)
    for task in stopped:
        task.cancel()
    in_use = {target["target"] for states in current.state().values() for target in states}
    for target in targets:
        close_idle = getattr(target.transport, "close_idle", None)
        if close_idle is not None and target.url not in in_use:
            try:
                close_idle(target.url)
            except Exception as error:  # an unusual URL: the connections expire on their own
                log.debug("idle connections to %s left to expire: %s", target.url, error)


async def _sync_plans(gateway: Gateway) -> None:
    registry = gateway.services.registry
    plans = configured_plans(gateway.config)
    if registry is not None and plans:
        try:
            await registry.sync_plans(plans)
        except Exception as error:
            log.error("plans not written to the registry after reload: %s", error)


def reload_on_signal(reloader: Reloader) -> Callable[[], None]:
    """A SIGHUP handler (loop.add_signal_handler) that starts a reload in the background."""

    def handler() -> None:
        reloader.in_background(reloader.reload())

    return handler


__all__ = ["ReloadFailed", "ReloadResult", "Reloader", "fingerprints", "reload_on_signal"]
