"""Issue 7, done when: an order placed through the partner experience API carries ONE
trace id across the access-log lines of every hop and the exported span tree, the
metrics move by exactly that traffic, and the data-flow view shows the edges.

The demo estate (tiergate.yaml, all tier APIs in-process) on real uvicorn, with the
real identity parts: partners send an API key, tier APIs call the tier below with
their own service credentials (client-credentials JWTs of the built-in server).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml

from gateway.observability import access_log
from tests.support.auth_estate import with_registry
from tests.support.estate import ESTATE, ROOT, var_dir
from tests.support.identity import ADMIN_TOKEN, running_gateway

PARTNER = "/experience/partner/v1"
HOPS = {"partner", "order-fulfilment", "inventory", "orders"}


def observed_estate_apis() -> list[dict[str, Any]]:
    """tiergate.yaml's APIs with auth: an API key for partners, service JWTs below."""
    apis = yaml.safe_load(ESTATE.read_text())["apis"]
    for api in apis:
        api["contract"] = str(ROOT / api["contract"])
        api["policies"] = (
            {"api-key": {}, "object-binding": api["policies"]["object-binding"]}  # acme's account
            if api["name"] == "partner"
            else {"jwt": {"issuers": [{"builtin": True}]}}
        )
    return apis


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    tmp = tmp_path_factory.mktemp("traced")
    registry = f"sqlite:///{tmp}/registry.db"
    stream = io.BytesIO()
    saved = access_log._sink
    access_log.configure_access_log(stream)
    try:
        with (
            var_dir(tmp / "var"),
            running_gateway(
                tmp,
                registry,
                observed_estate_apis(),
                access_log=True,
                observability={"tracing": {"exporter": "memory"}},
            ) as gw,
        ):

            async def create(reg: Any) -> str:
                return (await reg.create_api_key("acme", "gold", ["partner"]))[1]

            key = with_registry(registry, create)
            sku = httpx.get(
                f"{gw.url}{PARTNER}/price-list",
                params={"limit": 1},
                headers={"x-api-key": key},
                timeout=30,
            ).json()["entries"][0]["sku"]
            yield SimpleNamespace(
                url=gw.url, admin=gw.admin_url, gateway=gw.gateway, log=stream, key=key, sku=sku
            )
    finally:
        access_log.flush_access_log()
        access_log._sink = saved


def log_lines(stream: io.BytesIO, trace_id: str, apis: set[str]) -> list[dict[str, Any]]:
    """The access-log lines of one trace, once every API in `apis` has its line."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        mine = [line for line in lines if line.get("trace_id") == trace_id]
        if {line["api"] for line in mine} >= apis or time.monotonic() > deadline:
            return mine
        time.sleep(0.02)


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def place_order(estate: SimpleNamespace, **headers: str) -> httpx.Response:
    """One request at the edge: a bulk order of one unit."""
    return httpx.post(
        f"{estate.url}{PARTNER}/orders/bulk",
        json={"customer_id": "cus_0002", "lines": [{"sku": estate.sku, "quantity": 1}]},
        headers={"x-api-key": estate.key, "idempotency-key": str(uuid.uuid4()), **headers},
        timeout=30,
    )


def test_one_trace_id_across_every_hop_and_the_span_tree(estate) -> None:
    exporter = estate.gateway.services.span_exporter
    exporter.clear()
    placed = place_order(estate)
    assert placed.status_code == 201, placed.text
    request_id = placed.headers["x-request-id"]

    lines = log_lines(estate.log, _trace_of(estate.log, request_id), HOPS)
    assert {line["api"] for line in lines} == HOPS  # every hop logged the same trace id
    assert {line["request_id"] for line in lines} == {request_id}  # and the same request id
    assert all(line["status"] < 300 for line in lines)
    caller = {line["api"]: line["consumer"] for line in lines}
    assert caller["partner"] == "acme" and caller["orders"] == "svc-order-fulfilment"

    spans = [
        s
        for s in exporter.get_finished_spans()
        if format(s.context.trace_id, "032x") == lines[0]["trace_id"]
    ]
    by_api = {}
    for span in spans:
        by_api.setdefault(span.attributes["tiergate.api"], []).append(span)
    assert set(by_api) == HOPS
    assert len(spans) == len(lines)  # one span per logged hop, nothing else in the trace
    (root,) = by_api["partner"]
    (fulfilment,) = by_api["order-fulfilment"]
    assert root.parent is None  # the edge started the trace
    assert fulfilment.parent.span_id == root.context.span_id
    for span in by_api["inventory"] + by_api["orders"]:
        assert span.parent.span_id == fulfilment.context.span_id
        assert span.attributes["tiergate.caller_api"] == "order-fulfilment"
    assert fulfilment.attributes["tiergate.caller_api"] == "partner"
    assert root.attributes["http.route"] == "/orders/bulk"


def test_a_callers_trace_is_continued_through_the_tiers(estate) -> None:
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    placed = place_order(estate, traceparent=f"00-{trace_id}-{parent}-01")
    assert placed.status_code == 201, placed.text
    lines = log_lines(estate.log, trace_id, HOPS)
    assert {line["api"] for line in lines} == HOPS
    spans = estate.gateway.services.span_exporter.get_finished_spans()
    root = next(
        s
        for s in spans
        if s.attributes["tiergate.request_id"] == placed.headers["x-request-id"]
        and s.attributes["tiergate.api"] == "partner"
    )
    assert format(root.context.trace_id, "032x") == trace_id
    assert format(root.parent.span_id, "016x") == parent


def test_metrics_move_by_exactly_the_known_traffic(estate) -> None:
    before = httpx.get(f"{estate.admin}/metrics").text
    placed = place_order(estate)
    assert placed.status_code == 201, placed.text
    lines = log_lines(estate.log, _trace_of(estate.log, placed.headers["x-request-id"]), HOPS)
    after = httpx.get(f"{estate.admin}/metrics").text

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    for api in HOPS:
        hops = sum(1 for line in lines if line["api"] == api)
        assert hops >= 1
        assert delta("tiergate_requests_total", api=api, status_class="2xx") == hops, api
        assert delta("tiergate_request_duration_seconds_count", api=api) == hops, api
        assert delta("tiergate_upstream_duration_seconds_count", api=api) == hops, api
    assert (
        delta(
            "tiergate_requests_total",
            api="partner",
            route="/orders/bulk",
            method="POST",
            plan="gold",
        )
        == 1
    )
    assert delta("tiergate_requests_total", api="customers") == 0
    assert delta("tiergate_requests_total", status_class="5xx") == 0
    assert "tiergate_in_flight_requests 0.0" in after
    assert 'target="asgi:apis.system.inventory:app"' in after


def test_dataflow_shows_the_edges_between_tier_apis(estate) -> None:
    placed = place_order(estate)
    assert placed.status_code == 201, placed.text
    flow = httpx.get(
        f"{estate.admin}/admin/dataflow", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ).json()
    edges = {(e["from"], e["to"]): e for e in flow["edges"]}
    for edge in [
        ("clients", "partner"),
        ("partner", "order-fulfilment"),
        ("order-fulfilment", "inventory"),
        ("order-fulfilment", "orders"),
    ]:
        assert edges[edge]["calls"] >= 1 and edges[edge]["error_rate"] == 0.0, edge
    assert not any(caller == "clients" and callee != "partner" for caller, callee in edges)
    assert not any(callee == "customers" for _, callee in edges)


def _trace_of(stream: io.BytesIO, request_id: str) -> str:
    """The trace id the edge's access-log line for `request_id` carries."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for raw in stream.getvalue().splitlines():
            line = json.loads(raw)
            if line.get("request_id") == request_id and line.get("api") == "partner":
                return str(line["trace_id"])
        time.sleep(0.02)
    raise AssertionError(f"no access-log line for request {request_id}")
