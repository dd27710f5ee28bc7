"""Metrics, data flow, trace propagation and spans on a real gateway over real sockets."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from gateway.admin import create_admin_app
from gateway.app import Gateway
from gateway.observability.access_log import LOGGER_NAME
from tests.support.configs import make_config, write_contract
from tests.support.servers import serve_asgi

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
ADMIN_TOKEN = "observability-admin-token"


@pytest.fixture
def stack(tmp_path, httpbin_url):
    contract = write_contract(
        tmp_path, "bin", ["GET /get", "GET /status/{code}", "GET /anything/{rest}"]
    )
    config = make_config(
        tmp_path,
        [{"name": "bin", "contract": contract, "upstream": {"targets": [httpbin_url]}}],
        access_log=True,
        admin_token=ADMIN_TOKEN,
        observability={"tracing": {"exporter": "memory"}},
    )
    gateway = Gateway(config)
    with (
        serve_asgi(gateway) as public,
        serve_asgi(create_admin_app(gateway), lifespan="off") as admin,
    ):
        yield gateway, public.url, admin.url


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_known_traffic(stack):
    _, public, admin = stack
    before = httpx.get(admin + "/metrics").text
    for _ in range(3):
        assert httpx.get(public + "/experience/bin/v1/get").status_code == 200
    assert httpx.get(public + "/experience/bin/v1/status/503").status_code == 503
    after = httpx.get(admin + "/metrics").text
    ok = dict(api="bin", route="/get", method="GET", status_class="2xx", plan="anonymous")
    assert (
        metric(after, "tiergate_requests_total", **ok)
        - metric(before, "tiergate_requests_total", **ok)
        == 3
    )
    assert metric(after, "tiergate_requests_total", route="/status/{code}", status_class="5xx") == 1
    assert metric(after, "tiergate_request_duration_seconds_count", route="/get") == 3
    assert metric(after, "tiergate_upstream_duration_seconds_count", api="bin") == 4
    assert "tiergate_in_flight_requests 0.0" in after
    assert "/status/503" not in after  # raw paths never become labels


def test_dataflow_endpoint_reports_edges(stack):
    _, public, admin = stack
    httpx.get(public + "/experience/bin/v1/get")
    httpx.get(public + "/experience/bin/v1/status/500")
    assert httpx.get(admin + "/admin/dataflow").status_code == 401
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    edges = httpx.get(admin + "/admin/dataflow", headers=auth).json()["edges"]
    edge = next(e for e in edges if e["from"] == "clients" and e["to"] == "bin")
    assert edge["calls"] == 2 and edge["error_rate"] == 0.5


def test_trace_context_is_continued_and_exported(stack, caplog):
    gateway, public, _ = stack
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    logging.getLogger(LOGGER_NAME).addHandler(caplog.handler)
    try:
        r = httpx.get(
            public + "/experience/bin/v1/get",
            params={"show_env": "1"},
            headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "v=1"},
        )
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(caplog.handler)
    sent = r.json()["headers"]
    version, trace_id, span_id, flags = sent["Traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert span_id != PARENT
    assert sent["Tracestate"] == "v=1"
    spans = gateway.services["span_exporter"].get_finished_spans()
    span = spans[-1]
    assert format(span.context.trace_id, "032x") == TRACE
    assert format(span.context.span_id, "016x") == span_id  # upstream's parent = our span
    assert format(span.parent.span_id, "016x") == PARENT
    assert span.attributes["http.route"] == "/get"
    line = json.loads(caplog.records[-1].getMessage())
    assert line["trace_id"] == TRACE and line["route"] == "/get"


def test_client_cannot_inject_a_malformed_traceparent(stack):
    _, public, _ = stack
    r = httpx.get(
        public + "/experience/bin/v1/get",
        params={"show_env": "1"},
        headers={"traceparent": "00-zzzz-1-01"},
    )
    sent = r.json()["headers"]["Traceparent"]
    assert sent.startswith("00-") and "zzzz" not in sent and len(sent) == 55
