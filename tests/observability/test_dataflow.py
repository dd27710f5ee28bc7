from gateway.context import Identity, RequestContext
from gateway.observability.dataflow import DataFlow
from tests.support.configs import make_config


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def ctx_for(route, identity=None):
    return RequestContext(
        scope={},
        route=route,
        method="GET",
        path="/",
        query=b"",
        headers=[],
        request_id="r",
        client_ip="127.0.0.1",
        started=0.0,
        identity=identity,
    )


def test_rates_per_edge_over_the_window(tmp_path):
    from gateway.routing import RouteTable

    config = make_config(
        tmp_path,
        [
            {"name": "shop", "upstream": {"targets": ["http://127.0.0.1:9"]}},
        ],
    )
    route = RouteTable(config.apis).routes[0]
    clock = Clock()
    flow = DataFlow(window=60, clock=clock)
    service = Identity(kind="service", consumer_id="svc-mobile", api="mobile", tier="experience")
    for status in (200, 200, 502, 200):
        flow.record(ctx_for(route, service), status)
    flow.record(ctx_for(route), 200)
    edges = {(e["from"], e["to"]): e for e in flow.snapshot()}
    assert edges[("mobile", "shop")]["calls"] == 4
    assert edges[("mobile", "shop")]["calls_per_min"] == 4.0
    assert edges[("mobile", "shop")]["error_rate"] == 0.25
    assert edges[("clients", "shop")]["calls"] == 1
    clock.now += 70  # everything left the window
    assert all(e["calls"] == 0 for e in flow.snapshot())
