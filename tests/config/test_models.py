"""Model rules that are not about loading: targets, base paths, hosts, methods."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config.models import ApiConfig, UpstreamConfig


def test_targets_accept_urls_with_prefix_and_asgi_apps():
    config = UpstreamConfig(targets=["http://10.0.0.1:8000/base", "asgi:pkg.mod:app"])
    assert config.targets[1] == "asgi:pkg.mod:app"


@pytest.mark.parametrize(
    "target", ["127.0.0.1:80", "http://", "http://a b", "asgi:mod", "http://h/?q=1", "tcp://h:1"]
)
def test_bad_targets(target):
    with pytest.raises(ValidationError, match="is not a valid target"):
        UpstreamConfig(targets=[target])


def test_targets_listed_twice():
    with pytest.raises(ValidationError, match="listed twice"):
        UpstreamConfig(targets=["http://a:1", "http://a:1"])


def make_api(**fields):
    base = {
        "name": "a",
        "tier": "system",
        "contract": "c.yaml",
        "upstream": {"targets": ["http://a:1"]},
    }
    return ApiConfig.model_validate({**base, **fields})


@pytest.mark.parametrize("base_path", ["/a/", "a", "/a//b", "/a/../b", "/oauth/x", "/healthz"])
def test_bad_base_paths(base_path):
    with pytest.raises(ValidationError):
        make_api(base_path=base_path)


def test_hosts_are_normalised_and_methods_upper_cased():
    api = make_api(hosts=["API.example.com", "[::1]"], methods=["get", "Post"])
    assert api.hosts == ["api.example.com", "::1"]
    assert api.methods == ["GET", "POST"]
    with pytest.raises(ValidationError, match="unknown HTTP methods"):
        make_api(methods=["FETCH"])
