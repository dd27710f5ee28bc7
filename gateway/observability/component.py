"""Observability as a gateway component: metrics, data flow and spans per request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin.auth import require_admin
from gateway.components import Component
from gateway.config.models import GatewayConfig
from gateway.context import Observer, RequestContext, UnroutedObserver
from gateway.observability.dataflow import DataFlow
from gateway.observability.metrics import GatewayMetrics
from gateway.services import Services

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.observability.tracing import SpanTracer

UNKNOWN_ROUTE = "other"  # the route label of an API without a contract


class ObservabilityComponent(Component):
    name = "observability"

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        settings = config.observability
        self.metrics = (
            GatewayMetrics(settings.metrics.consumer_label) if settings.metrics.enabled else None
        )
        self.dataflow = DataFlow(settings.metrics.dataflow_window)
        self.tracer: SpanTracer | None = None
        if settings.tracing.exporter != "none":
            # Optional heavy dependency: tracing loads the OpenTelemetry SDK, only when on.
            from gateway.observability.tracing import SpanTracer

            self.tracer = SpanTracer(settings.tracing)

    def observers(self) -> tuple[Observer, ...]:
        return (self.observe,)

    def unrouted_observers(self) -> tuple[UnroutedObserver, ...]:
        return (self.metrics.observe_unrouted,) if self.metrics is not None else ()

    async def stop(self) -> None:
        if self.tracer is not None:
            self.tracer.shutdown()

    def observe(self, ctx: RequestContext, status: int) -> None:
        # The resolved operation's template: low-cardinality by construction.
        route = ctx.operation.template if ctx.operation is not None else UNKNOWN_ROUTE
        ctx.log["route"] = route
        seconds = time.perf_counter() - ctx.started
        if self.metrics is not None:
            self.metrics.observe(ctx, status, seconds, route)
        self.dataflow.record(ctx, status)
        span = ctx.log.pop("_span", None)
        if span is not None and self.tracer is not None:
            self.tracer.end(span, ctx, status, route)

    def admin_routes(self) -> list[BaseRoute]:
        token = self.config.admin_token
        routes: list[BaseRoute] = [
            Route("/admin/dataflow", require_admin(token, self._dataflow), methods=["GET"])
        ]
        if self.metrics is not None:
            routes.append(Route("/metrics", self._metrics, methods=["GET"]))
        return routes

    async def _metrics(self, request: Request) -> Response:
        assert self.metrics is not None
        return Response(
            generate_latest(self.metrics.registry), headers={"content-type": CONTENT_TYPE_LATEST}
        )

    async def _dataflow(self, request: Request) -> Response:
        return JSONResponse(
            {"window_seconds": self.dataflow.window, "edges": self.dataflow.snapshot()}
        )


class GatewayGauges(Component):
    """Values read off the running gateway at each scrape of /metrics: requests in flight,
    open circuits, rate-limit and response-cache storage errors."""

    name = "gauges"

    def __init__(self, gateway: Gateway, metrics: GatewayMetrics, services: Services) -> None:
        self.gateway = gateway
        self.metrics = metrics
        self.services = services

    async def start(self) -> None:
        self.metrics.add_gauges(self._gauges)

    def _gauges(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        gateway = self.gateway
        yield GaugeMetricFamily(
            "tiergate_in_flight_requests", "Requests being handled now.", value=gateway.in_flight
        )
        ejected = GaugeMetricFamily(
            "tiergate_circuit_open",
            "1 while a target is ejected or unhealthy.",
            labels=["api", "target"],
        )
        for api, targets in gateway.upstreams.state().items():
            for target in targets:
                is_open = bool(target["ejected_for"]) or not target["healthy"]
                ejected.add_metric([api, str(target["target"])], 1.0 if is_open else 0.0)
        yield ejected
        limiter = self.services.limiter
        if limiter is not None:
            yield CounterMetricFamily(
                "tiergate_ratelimit_storage_errors",
                "Rate-limit storage failures (fail-open or fail-closed).",
                value=float(limiter.storage_errors),
            )
        caches = self.services.response_cache
        if caches is not None:
            yield CounterMetricFamily(
                "tiergate_response_cache_storage_errors",
                "Response-cache Redis failures (each served from upstream).",
                value=float(caches.errors),
            )
