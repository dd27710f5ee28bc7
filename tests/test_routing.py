"""Path normalisation and the route table, as pure functions."""

from __future__ import annotations

import pytest

from gateway.routing import PathRejected, RouteTable, host_name, normalise_path
from tests.support.configs import make_config

ATTACKS = [
    b"/a/../b",
    b"/a/..",
    b"/a/./b",
    b"/a/..;/b",
    b"/a/.;x/b",
    b"/a/%2e%2e/b",
    b"/a/%2E%2e/b",
    b"/a/.%2e/b",
    b"/a/%252e%252e/b",
    b"/a/%25%32%65/b",
    b"/a//b",
    b"/a/\x00b",
    b"/a/%00b",
    b"/a\\b",
    b"/a/%5cb",
    b"/a%2fb",
    b"/a/%2",
    b"/a/%zz",
    b"a/b",
    b"/caf\xc3\xa9",
]


@pytest.mark.parametrize("raw", ATTACKS)
def test_ambiguous_paths_are_rejected(raw):
    with pytest.raises(PathRejected):
        normalise_path(raw)


@pytest.mark.parametrize(
    "raw", [b"/", b"/a/b", b"/a/b/", b"/a/caf%C3%A9", b"/a/..b", b"/a/b.json", b"/a;v=1/b"]
)
def test_plain_paths_pass_unchanged(raw):
    assert normalise_path(raw) == raw.decode()


def table(tmp_path, *apis: dict) -> RouteTable:
    specs = [{"upstream": {"targets": ["http://127.0.0.1:9"]}, **api} for api in apis]
    return RouteTable(make_config(tmp_path, specs).apis)


def test_longest_prefix_on_whole_segments(tmp_path):
    routes = table(
        tmp_path,
        {"name": "v1", "base_path": "/api/v1"},
        {"name": "orders", "base_path": "/api/v1/orders"},
    )
    assert routes.match("/api/v1/orders/7").route.api.name == "orders"
    assert routes.match("/api/v1/orders").route.api.name == "orders"
    assert routes.match("/api/v1/ordersx").route.api.name == "v1"
    assert routes.match("/api/v1/").route.api.name == "v1"
    assert routes.match("/api/v10").route is None
    assert routes.match("/api").route is None


def test_forward_path_strips_the_base_path(tmp_path):
    routes = table(
        tmp_path,
        {"name": "a", "base_path": "/a"},
        {"name": "b", "base_path": "/b", "strip_base_path": False},
    )
    assert routes.match("/a").route.forward_path("/a") == "/"
    assert not routes.binds_hosts
    assert routes.match("/a/x/y").route.forward_path("/a/x/y") == "/x/y"
    assert routes.match("/b/x").route.forward_path("/b/x") == "/b/x"


def test_host_and_method_matching(tmp_path):
    routes = table(
        tmp_path,
        {"name": "v6", "base_path": "/s", "hosts": ["[::1]"]},
        {"name": "named", "base_path": "/s", "hosts": ["api.example.com"]},
        {"name": "writes", "base_path": "/w", "methods": ["POST", "PUT"]},
    )
    assert routes.binds_hosts  # the gateway reads the Host for routing only then
    assert routes.match("/s/x", "GET", "[::1]:8080").route.api.name == "v6"
    assert routes.match("/s/x", "GET", "API.example.com:443").route.api.name == "named"
    assert routes.match("/s/x", "GET", "other.example.com").route is None
    assert routes.match("/w", "POST").route.api.name == "writes"
    miss = routes.match("/w", "GET")
    assert miss.route is None
    assert miss.method_not_allowed == {"POST", "PUT"}


@pytest.mark.parametrize(
    ("header", "name"),
    [("[::1]:8080", "::1"), ("[::1]", "::1"), ("Example.COM:80", "example.com"), ("h", "h")],
)
def test_host_name(header, name):
    assert host_name(header) == name
