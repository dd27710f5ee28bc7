"""Prometheus metrics of one gateway, in a registry of its own.

Labels are low-cardinality by construction: API names, route templates from the
contracts, methods, status classes, plans, configured targets; never raw paths and
never consumer ids unless the operator asks for them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate
from math import inf as INF
from typing import Any

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway.context import RequestContext

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# Methods outside this set (anything a client sends) are counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

# No `_created` series: a counter's start time is the process start, and Prometheus
# does not need a second series per counter to see resets.
disable_created_metrics()

Family = GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily


class GatewayMetrics:
    def __init__(self, consumer_label: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.consumer_label = consumer_label
        request_labels = ["api", "tier", "route", "method", "status_class", "plan"]
        if consumer_label:
            request_labels.append("consumer")
        # Counted on every request: plain numbers, exposed like prometheus_client's own.
        self.requests = CountSeries(
            "tiergate_requests", "Requests answered, by API and outcome.", request_labels
        )
        self.duration = HistogramSeries(
            "tiergate_request_duration_seconds",
            "Time from request to last response byte.",
            ["api", "route", "method", "status_class"],
        )
        self.upstream_duration = HistogramSeries(
            "tiergate_upstream_duration_seconds",
            "Time until the upstream's response headers.",
            ["api", "target_set", "target"],
        )
        self.registry.register(
            _SeriesCollector((self.requests, self.duration, self.upstream_duration))
        )
        self.upstream_errors = Counter(
            "tiergate_upstream_errors",
            "Upstream failures (refused, timeout, invalid, open).",
            ["api", "target_set", "target", "kind"],
            registry=self.registry,
        )
        self.policy_rejections = Counter(
            "tiergate_policy_rejections",
            "Requests a policy answered itself (401, 403, 429...).",
            ["api", "policy", "status"],
            registry=self.registry,
        )
        # The series of each label set, looked up once per label set.
        self._children: dict[tuple, tuple[list[float], list[float]]] = {}
        self._upstream_children: dict[tuple[str, str, str], list[float]] = {}
        self._unrouted_children: dict[tuple[str, str], list[float]] = {}

    def observe(self, ctx: RequestContext, status: int, seconds: float, route: str) -> None:
        api = ctx.route.api
        status_class = STATUS_CLASSES.get(status // 100, "other")
        identity = ctx.identity
        plan = (identity.plan or "none") if identity else "anonymous"
        key: tuple[str, ...] = (api.name, route, ctx.method, status_class, plan)
        if self.consumer_label:
            key += (identity.consumer_id if identity else "anonymous",)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.series((api.name, api.tier, *key[1:])),
                self.duration.series((api.name, route, ctx.method, status_class)),
            )
            self._children[key] = children
        children[0][0] += 1.0
        observe(children[1], seconds)
        log = ctx.log
        if log:
            self._observe_extras(api.name, status, log)

    def observe_unrouted(self, method: str, status: int) -> None:
        """A request no API handled (404, gateway endpoints, the listener's refusals):
        counted under api="" so scanners and broken clients show up."""
        if method and method not in METHODS:
            method = "other"
        key = (method, STATUS_CLASSES.get(status // 100, "other"))
        child = self._unrouted_children.get(key)
        if child is None:
            labels = ("", "", "", *key, "") + (("",) if self.consumer_label else ())
            child = self._unrouted_children[key] = self.requests.series(labels)
        child[0] += 1.0

    def _observe_extras(self, api: str, status: int, log: dict[str, Any]) -> None:
        target = str(log.get("upstream_target", "unknown"))
        target_set = str(log.get("upstream_set", "default"))
        upstream_ms = log.get("upstream_ms")
        if upstream_ms is not None:
            key = (api, target_set, target)
            child = self._upstream_children.get(key)
            if child is None:
                child = self.upstream_duration.series(key)
                self._upstream_children[key] = child
            observe(child, upstream_ms / 1000)
        if "upstream_error" in log:
            kind = str(log["upstream_error"])
            self.upstream_errors.labels(api, target_set, target, kind).inc()
        if "ended_by" in log:
            self.policy_rejections.labels(api, str(log["ended_by"]), str(status)).inc()

    def add_gauges(self, collect: Callable[[], Iterator[Family]]) -> None:
        """Register values read at scrape time (in-flight, circuit state, storage errors)."""
        self.registry.register(_CallbackCollector(collect))


class _Series:
    """A metric family whose series are lists of plain numbers the event loop adds to: no
    lock and no label check per request (prometheus_client's metrics take a lock per call).
    The gateway counts and serves /metrics on its one event loop thread."""

    width = 1  # numbers per series

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.values: dict[tuple[str, ...], list[float]] = {}

    def series(self, labels: tuple[str, ...]) -> list[float]:
        """The series of `labels`, created at zeros on first use."""
        labels = tuple(str(value) for value in labels)
        found = self.values.get(labels)
        if found is None:
            found = self.values[labels] = [0.0] * self.width
        return found


class CountSeries(_Series):
    """A counter family: each series is [value]."""

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, (value,) in self.values.items():
            family.add_metric(labels, value)
        return family


# Upper bounds of the latency buckets, +Inf last, as prometheus_client's Histogram has them.
BOUNDS = (*(float(b) for b in LATENCY_BUCKETS), INF)
_BUCKET_NAMES = tuple(floatToGoString(b) for b in BOUNDS)


def observe(series: list[float], amount: float) -> None:
    """Count `amount` in a HistogramSeries series: in the first bucket whose upper bound
    is >= amount (prometheus_client's rule), and in the sum."""
    series[bisect_left(BOUNDS, amount)] += 1.0
    series[-1] += amount


class HistogramSeries(_Series):
    """A histogram family over LATENCY_BUCKETS whose series are lists of plain numbers
    (a count per bucket, then the sum), exposed as prometheus_client's Histogram is."""

    width = len(BOUNDS) + 1

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, counts in self.values.items():
            cumulative = list(zip(_BUCKET_NAMES, accumulate(counts[:-1]), strict=True))
            family.add_metric(labels, cumulative, counts[-1])
        return family


class _SeriesCollector(Collector):
    def __init__(self, families: Sequence[CountSeries | HistogramSeries]) -> None:
        self._families = families

    def collect(self) -> Iterator[Family]:
        for family in self._families:
            yield family.family()

    def describe(self) -> list:
        return [family.family() for family in self._families]


class _CallbackCollector(Collector):
    def __init__(self, collect: Callable[[], Iterator[Family]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Family]:
        yield from self._collect()

    def describe(self) -> list:
        return []
