"""What start-up hands over to policies, components and the app: one typed field per
shared service, built once by `gateway.stack.build_gateway` in start-up order.

The object is frozen: a service is never swapped or looked up by name. A field is None
when the gateway runs without that service (e.g. a policy tested alone with
`gateway.testing.build_policy`). Two fields are shared tables the services fill as they
run (JWKS caches, the embedded services' credentials); the table itself never changes.

A policy declares the fields it uses (`PolicySpec.needs`) and is built with a Services
holding exactly those (`Services.only`); the others are None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# Annotations only: this module sits below the policies (gateway/pipeline.py imports it),
# while the services it names are built above them. Importing them here at run time would
# pull every store into the pipeline and form import loops.
if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from gateway.cache.registry import CacheRegistry
    from gateway.limits.engine import Limiter
    from gateway.oauth.keys import KeyRing
    from gateway.oauth.revocations import RevocationCache
    from gateway.observability.dataflow import DataFlow
    from gateway.observability.tracing import SpanTracer
    from gateway.policies._jwks import JwksKeys
    from gateway.registry.store import Registry

# (issuer, jwks_uri, discovery_url) -> the one JwksKeys every jwt policy shares for it
JwksTable = dict[tuple[str, str | None, str | None], "JwksKeys"]
# API name -> {"client_id", "client_secret", "token_endpoint"} of its service identity
CredentialsTable = dict[str, dict[str, str]]

UNKNOWN_NEED = "needs {name!r}, which is not a service; services: {known}"


@dataclass(frozen=True, slots=True)
class Services:
    """The shared services of one gateway, in start-up order."""

    registry: Registry | None = None
    issuer: KeyRing | None = None  # the built-in authorization server's key ring
    revocations: RevocationCache | None = None
    limiter: Limiter | None = None
    response_cache: CacheRegistry | None = None
    dataflow: DataFlow | None = None
    tracer: SpanTracer | None = None  # only when span export is configured
    jwks: JwksTable = field(default_factory=dict)
    service_credentials: CredentialsTable = field(default_factory=dict)

    @property
    def span_exporter(self) -> InMemorySpanExporter | None:
        """The in-memory span exporter (observability.tracing.exporter: memory)."""
        return self.tracer.memory if self.tracer is not None else None

    def only(self, needs: Iterable[str]) -> Services:
        """A Services with the fields named in `needs` and None (or empty) elsewhere."""
        wanted = set(needs)
        unknown = wanted - set(NAMES)
        if unknown:
            raise ValueError(UNKNOWN_NEED.format(name=sorted(unknown)[0], known=", ".join(NAMES)))
        return Services(**{name: getattr(self, name) for name in NAMES if name in wanted})


NAMES: tuple[str, ...] = tuple(each.name for each in dataclasses.fields(Services))

__all__ = ["NAMES", "CredentialsTable", "JwksTable", "Services"]
