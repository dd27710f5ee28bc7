"""Metrics, data flow, trace propagation and spans on a real gateway over real sockets."""

from __future__ import annotations

import json
import logging
import socket
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.admin import create_admin_app
from gateway.listener import listener_options
from gateway.observability.access_log import LOGGER_NAME
from gateway.stack import build_gateway
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
        [
            {
                "name": "bin",
                "contract": contract,
                "upstream": {"targets": [httpbin_url]},
                "policies": {"rate-limit": {"default_plan": "free"}},
            }
        ],
        plans={"free": {"limits": ["100000/minute"]}},
        access_log=True,
        admin_token=ADMIN_TOKEN,
        observability={"tracing": {"exporter": "memory"}},
    )
    gateway = build_gateway(config)
    with (
        # the public listener as `tiergate up` runs it: its refusals reach the metrics
        serve_asgi(gateway, **listener_options(config.listeners.public, gateway.refused)) as public,
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


def test_requests_no_api_handled_are_counted_under_an_empty_api(stack):
    _, public, admin = stack
    before = httpx.get(admin + "/metrics").text
    assert httpx.get(public + "/wp-login.php").status_code == 404  # a scanner
    assert httpx.get(public + "/experience/bin/v1/nowhere").status_code == 404  # the contract's
    assert httpx.request("PROPFIND", public + "/pot").status_code in (404, 405)
    assert httpx.get(public + "/" + "x" * 9000).status_code == 414  # the listener refuses
    assert httpx.get(public + "/", headers={"x-big": "y" * 20000}).status_code == 431
    with socket.create_connection(("127.0.0.1", int(public.rsplit(":", 1)[1]))) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
        assert raw.recv(65536).startswith(b"HTTP/1.1 400 ")
    after = httpx.get(admin + "/metrics").text

    def counted(**labels: str) -> float:
        name = "tiergate_requests_total"
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert counted(api="", route="", method="GET", status_class="4xx", plan="") == 1
    assert counted(api="", method="other", status_class="4xx") == 1  # never the raw method
    assert counted(api="", method="", status_class="4xx") == 3  # 414, 431, 400 unparsed
    assert counted(api="bin", status_class="4xx") == 1
    assert "PROPFIND" not in after and "wp-login" not in after


def test_metrics_follow_prometheus_naming(stack):
    _, public, admin = stack
    httpx.get(public + "/experience/bin/v1/get")
    text = httpx.get(admin + "/metrics").text
    assert "_created" not in text
    families = list(text_string_to_metric_families(text))
    counters = {f.name for f in families if f.type == "counter"}
    assert {
        "tiergate_requests",
        "tiergate_upstream_errors",
        "tiergate_policy_rejections",
        "tiergate_ratelimit_storage_errors",
    } <= counters
    for family in families:
        if family.type == "counter":
            assert all(s.name == family.name + "_total" for s in family.samples), family
    assert "tiergate_ratelimit_storage_errors_total 0.0" in text


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
    exporter = gateway.services.span_exporter
    try:
        r = httpx.get(
            public + "/experience/bin/v1/get",
            params={"show_env": "1"},
            headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "v=1"},
        )
        # The span ends, and the access-log line is written (by its own thread), once the
        # response is complete: the client may read the body a moment before that.
        deadline = time.monotonic() + 5
        while not exporter.get_finished_spans() or not caplog.records:
            assert time.monotonic() < deadline, "no span or no access-log line within 5 s"
            time.sleep(0.01)
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(caplog.handler)
    sent = r.json()["headers"]
    version, trace_id, span_id, flags = sent["Traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert span_id != PARENT
    assert sent["Tracestate"] == "v=1"
    span = exporter.get_finished_spans()[-1]
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
