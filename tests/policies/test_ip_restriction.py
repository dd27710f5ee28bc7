"""Policy ip-restriction: config validation, then allow/deny on the resolved client address."""

import httpx
import pytest

from gateway.config.errors import ConfigError
from gateway.policies.ip_restriction import EMPTY
from tests.support.configs import make_config
from tests.support.edge import (
    serve_gateway,
    upstream_fixture,  # noqa: F401 - the `upstream` fixture
)


def _config(tmp_path, url, policy, **top):
    api = {"name": "shop", "upstream": {"targets": [url]}, "policies": {"ip-restriction": policy}}
    return make_config(tmp_path, [api], **top)


def test_config_is_validated(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", {"allow": ["10.0.0.0/33"]})
    assert "apis[0].policies.ip-restriction.allow[0]" in str(error.value)
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", {})
    assert f"apis[0].policies.ip-restriction: {EMPTY}" in str(error.value)


def _get(gw, xff=None):
    headers = {"X-Forwarded-For": xff} if xff else {}
    return httpx.get(f"{gw.url}/experience/shop/v1/x", headers=headers)


def test_spoofed_forwarded_for_from_untrusted_peer_does_not_bypass(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, {"allow": ["10.0.0.0/8"]})  # no trusted proxies
    with serve_gateway(config) as gw:
        r = _get(gw, xff="10.1.2.3")
        assert r.status_code == 403
        assert "127.0.0.1" in r.json()["detail"]
        assert _get(gw).status_code == 403
    assert upstream.requests == []


def test_forwarded_for_from_a_trusted_proxy_is_believed(tmp_path, upstream):
    config = _config(
        tmp_path, upstream.url, {"allow": ["10.0.0.0/8"]}, trusted_proxies=["127.0.0.1/32"]
    )
    with serve_gateway(config) as gw:
        assert _get(gw, xff="10.1.2.3").status_code == 200
        assert _get(gw, xff="192.0.2.7").status_code == 403
    assert len(upstream.requests) == 1


def test_deny_wins_and_cannot_be_dodged_with_a_header(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, {"allow": ["0.0.0.0/0"], "deny": ["127.0.0.0/8"]})
    with serve_gateway(config) as gw:
        assert _get(gw).status_code == 403
        assert _get(gw, xff="198.51.100.1").status_code == 403
    config = _config(tmp_path, upstream.url, {"deny": ["192.0.2.0/24"]})
    with serve_gateway(config) as gw:
        assert _get(gw).status_code == 200
    assert len(upstream.requests) == 1
