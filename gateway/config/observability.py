"""Observability settings (the `observability:` section of tiergate.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.config.base import StrictModel


class TracingConfig(StrictModel):
    exporter: Literal["none", "otlp", "memory"] = Field(
        "none",
        description="Where spans go: none (W3C trace context is still propagated), "
        "otlp (OTLP/HTTP to otlp_endpoint) or memory (kept in process, for tests).",
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces."
    )
    service_name: str = Field("tiergate", description="service.name of the gateway's spans.")

    @model_validator(mode="after")
    def _endpoint_for_otlp(self) -> TracingConfig:
        if self.exporter == "otlp" and not self.otlp_endpoint:
            raise ValueError("exporter 'otlp' needs otlp_endpoint (an http(s) URL)")
        return self


class MetricsConfig(StrictModel):
    enabled: bool = Field(True, description="Expose Prometheus metrics on the admin /metrics.")
    consumer_label: bool = Field(
        False, description="Add a consumer label (high cardinality: only with few consumers)."
    )
    dataflow_window: int = Field(
        60, ge=10, le=3600, description="Seconds of traffic behind the data-flow view's rates."
    )


class ObservabilityConfig(StrictModel):
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
