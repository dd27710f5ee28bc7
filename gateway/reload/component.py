"""The reload component: POST /admin/config/reload and the reload metrics."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from gateway.admin.auth import require_admin
from gateway.components import Component
from gateway.observability.metrics import GatewayMetrics
from gateway.problem import Answer, ProblemResponse
from gateway.reload import Reloader, watch

if TYPE_CHECKING:
    from gateway.app import Gateway

RELOAD_REFUSED = "The new config was not applied; the gateway still serves the previous one."
# Set by `tiergate up --workers N` in each worker: the supervisor is the parent process.
WORKER_ENV = "TIERGATE_WORKER_INDEX"


class ReloadComponent(Component):
    name = "reload"

    def __init__(self, gateway: Gateway, metrics: GatewayMetrics | None) -> None:
        self.admin_token = gateway.config.admin_token  # a restart-only setting
        self.metrics = metrics
        self.reloader = Reloader(gateway)

    async def start(self) -> None:
        self.reloader.started()
        if os.environ.get(watch.ENV) == "1":
            self.reloader.in_background(watch.watch(self.reloader))
        if self.metrics is not None:
            self.metrics.add_gauges(self._collect)

    async def stop(self) -> None:
        await self.reloader.aclose()

    def admin_routes(self) -> list[BaseRoute]:
        endpoint = require_admin(self.admin_token, self.reload)
        return [Route("/admin/config/reload", endpoint, methods=["POST"])]

    async def reload(self, request: Request) -> Answer:
        result = await self.reloader.reload()
        if not result.ok:
            return ProblemResponse(422, RELOAD_REFUSED, problems=result.problems, at=result.at)
        answer = result.public()
        if os.environ.get(WORKER_ENV) is not None:
            # This worker has checked and loaded the file; the supervisor passes SIGHUP on to
            # every worker, so they all load it (this one again, with nothing left to change).
            os.kill(os.getppid(), signal.SIGHUP)
            answer["workers"] = "every worker reloads"
        return JSONResponse(answer)

    def _collect(self) -> Iterator[Any]:
        total = CounterMetricFamily(
            "tiergate_config_reload",
            "Config reloads by result (success, failure).",
            labels=["result"],
        )
        for result, count in self.reloader.results.items():
            total.add_metric([result], count)
        yield total
        if self.reloader.last_success is not None:
            yield GaugeMetricFamily(
                "tiergate_config_last_reload_success_timestamp_seconds",
                "When the config was last reloaded successfully (POSIX seconds).",
                value=self.reloader.last_success,
            )
