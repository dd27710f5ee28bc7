"""Spans through the OpenTelemetry SDK, only when an exporter is configured.

When tracing is off this module is never imported on the request path: the
gateway still propagates W3C trace context (tracecontext.py), at no span cost.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from gateway.config.observability import TracingConfig
from gateway.context import RequestContext


class SpanTracer:
    def __init__(self, config: TracingConfig) -> None:
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": config.service_name})
        )
        self.memory: InMemorySpanExporter | None = None
        if config.exporter == "memory":
            self.memory = InMemorySpanExporter()
            self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        else:
            # Optional heavy dependency: the OTLP exporter (protobuf, requests) only for otlp.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=5)
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("tiergate")

    def start(self, ctx: RequestContext) -> Any:
        """Open the gateway hop's span; its ids become the trace context sent upstream."""
        tc = ctx.trace
        assert tc is not None
        parent = None
        if tc.parent_id is not None:
            remote = SpanContext(
                trace_id=int(tc.trace_id, 16),
                span_id=int(tc.parent_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(int(tc.flags, 16)),
            )
            parent = trace.set_span_in_context(NonRecordingSpan(remote))
        api = ctx.route.api
        span = self.tracer.start_span(
            f"{ctx.method} {api.name}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": ctx.method,
                "url.path": ctx.path,
                "tiergate.api": api.name,
                "tiergate.tier": api.tier,
                "tiergate.request_id": ctx.request_id,
            },
        )
        own = span.get_span_context()
        tc.trace_id = format(own.trace_id, "032x")
        tc.span_id = format(own.span_id, "016x")
        return span

    def end(self, span: Any, ctx: RequestContext, status: int, route: str) -> None:
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("http.route", route)
        if ctx.identity is not None:
            span.set_attribute("tiergate.consumer_kind", ctx.identity.kind)
            if ctx.identity.api:
                span.set_attribute("tiergate.caller_api", ctx.identity.api)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def shutdown(self) -> None:
        self.provider.shutdown()
