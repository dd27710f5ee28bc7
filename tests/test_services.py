"""Services: one typed field per shared service, frozen; `only` gives a policy the fields
its spec needs and nothing else."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.config.limits import RateLimitingConfig
from gateway.limits.engine import Limiter
from gateway.observability.dataflow import DataFlow
from gateway.services import NAMES, Services


def test_the_fields_are_the_services_in_start_up_order():
    assert NAMES == (
        "registry",
        "issuer",
        "revocations",
        "limiter",
        "response_cache",
        "dataflow",
        "tracer",
        "jwks",
        "service_credentials",
    )


def test_only_keeps_the_named_fields_and_shares_the_tables():
    limiter = Limiter("memory://", RateLimitingConfig())
    services = Services(limiter=limiter, dataflow=DataFlow(), service_credentials={"a": {}})
    given = services.only(("limiter", "jwks"))
    assert given.limiter is limiter
    assert given.jwks is services.jwks
    assert given.dataflow is None
    assert given.service_credentials == {}
    assert services.only(()) == Services()


def test_a_need_that_is_no_service_is_refused():
    with pytest.raises(ValueError, match="needs 'limits', which is not a service"):
        Services().only(("limits",))


def test_services_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Services().registry = None  # type: ignore[misc]
    assert Services().span_exporter is None
