"""The request series are plain numbers, exposed byte for byte as prometheus_client's own
Counter and Histogram would expose the same observations."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.observability.metrics import (
    LATENCY_BUCKETS,
    CountSeries,
    GatewayMetrics,
    HistogramSeries,
    observe,
)


def _reference(consumer_label: bool) -> tuple[CollectorRegistry, Counter, Histogram, Histogram]:
    """The three families as prometheus_client's classes, in GatewayMetrics' order."""
    registry = CollectorRegistry(auto_describe=True)
    labels = ["api", "tier", "route", "method", "status_class", "plan"]
    labels += ["consumer"] if consumer_label else []
    requests = Counter(
        "tiergate_requests", "Requests answered, by API and outcome.", labels, registry=registry
    )
    duration = Histogram(
        "tiergate_request_duration_seconds",
        "Time from request to last response byte.",
        ["api", "route", "method", "status_class"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    upstream = Histogram(
        "tiergate_upstream_duration_seconds",
        "Time until the upstream's response headers.",
        ["api", "target_set", "target"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    return registry, requests, duration, upstream


def _requests_part(exposition: bytes) -> bytes:
    """The lines of the three request families (GatewayMetrics has further families)."""
    names = (b"tiergate_requests", b"tiergate_request_duration", b"tiergate_upstream_duration")
    return b"\n".join(
        line for line in exposition.splitlines() if any(name in line for name in names)
    )


@pytest.mark.parametrize("consumer_label", [False, True])
def test_exposition_equals_prometheus_clients_own(consumer_label):
    rng = random.Random(5)
    ours = GatewayMetrics(consumer_label)
    registry, requests, duration, upstream = _reference(consumer_label)
    empty = generate_latest(registry).strip()
    assert _requests_part(generate_latest(ours.registry)) == empty
    assert empty.count(b"# TYPE") == 3
    extra = ("c1",) if consumer_label else ()
    for _ in range(3000):
        labels = (rng.choice(["a", "b"]), "experience", rng.choice(["/x", "/y/{id}"]), "GET")
        status_class, plan = rng.choice(["2xx", "4xx", "5xx"]), rng.choice(["free", "none"])
        seconds = rng.choice([0.0, 0.001, 0.0025, 30.0, 31.0, rng.random(), rng.random() / 100])
        ours.requests.series((*labels, status_class, plan, *extra))[0] += 1.0
        requests.labels(*labels, status_class, plan, *extra).inc()
        observe(ours.duration.series((labels[0], labels[2], "GET", status_class)), seconds)
        duration.labels(labels[0], labels[2], "GET", status_class).observe(seconds)
        target = rng.choice(["http://t1", "http://t2"])
        observe(ours.upstream_duration.series((labels[0], "default", target)), seconds / 3)
        upstream.labels(labels[0], "default", target).observe(seconds / 3)
    theirs = generate_latest(registry).strip()
    assert b'le="+Inf"' in theirs and b"_sum{" in theirs
    assert _requests_part(generate_latest(ours.registry)) == theirs


def test_a_bucket_takes_what_is_at_most_its_bound():
    series = HistogramSeries("h", "h", []).series(())
    for amount in (0.001, 0.0010001, 30.0, 31.0):
        observe(series, amount)
    assert series[0] == 1 and series[1] == 1  # 0.001 <= 0.001; the next bound takes 0.0010001
    assert series[-3] == 1 and series[-2] == 1  # 30 in the 30 s bucket, 31 in +Inf
    assert series[-1] == 0.001 + 0.0010001 + 30.0 + 31.0


def test_label_values_are_text():
    counts = CountSeries("c", "c", ["n"])
    assert counts.series((5,)) is counts.series(("5",))  # type: ignore[arg-type]
