"""Named admin tokens: config first, then over real sockets (read-only vs read-write,
the single TIERGATE_ADMIN_TOKEN still accepted, nothing in the logs)."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from pydantic import ValidationError

from gateway.admin.tokens import AdminTokenConfig, AdminTokens
from tests.support.configs import make_config
from tests.support.identity import running_gateway

MONITOR = "monitor-token-5f1c0e9a7b"
OPS = "ops-token-2d8e44c1aa"
LEGACY = "legacy-token-90ab77"


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_a_token_names_exactly_one_source():
    assert AdminTokenConfig(token_env="OPS_TOKEN").access == "read-only"
    for bad in ({}, {"token_env": "A", "token_sha256": _sha("x")}, {"token_sha256": "nothex"}):
        with pytest.raises(ValidationError):
            AdminTokenConfig(**bad)


def test_tokens_are_identified_by_digest_and_the_single_token_is_read_write(tmp_path):
    config = make_config(
        tmp_path,
        [],
        admin_token=LEGACY,
        admin_tokens={
            "monitor": {"token_sha256": _sha(MONITOR)},
            "ops": {"token_env": "OPS_TOKEN", "access": "read-write"},
            "absent": {"token_env": "NOT_SET_ANYWHERE"},
        },
    )
    tokens = AdminTokens.from_config(config, env={"OPS_TOKEN": OPS})
    assert tokens.identify(MONITOR).name == "monitor"  # type: ignore[union-attr]
    assert tokens.identify(MONITOR).access == "read-only"  # type: ignore[union-attr]
    assert tokens.identify(OPS).access == "read-write"  # type: ignore[union-attr]
    assert tokens.identify(LEGACY).name == "admin"  # type: ignore[union-attr]
    assert tokens.identify(LEGACY).access == "read-write"  # type: ignore[union-attr]
    for wrong in ("", MONITOR + " ", MONITOR.upper(), _sha(MONITOR), "x" * 10_000):
        assert tokens.identify(wrong) is None
    assert not AdminTokens.from_config(make_config(tmp_path, [])).configured


def _call(gw, method: str, path: str, token: str | None, **kwargs) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.request(method, f"{gw.admin_url}{path}", headers=headers, **kwargs)


def test_read_only_tokens_read_and_read_write_tokens_change(tmp_path, monkeypatch, caplog):
    caplog.set_level("DEBUG")
    monkeypatch.setenv("OPS_TOKEN", OPS)
    tokens = {
        "monitor": {"token_sha256": _sha(MONITOR)},
        "ops": {"token_env": "OPS_TOKEN", "access": "read-write"},
    }
    registry = f"sqlite:///{tmp_path}/r.db"
    with running_gateway(tmp_path, registry, admin_token=None, admin_tokens=tokens) as gw:
        read = _call(gw, "GET", "/admin/consumers", MONITOR)
        head = _call(gw, "HEAD", "/admin/consumers", MONITOR)
        refused = _call(gw, "POST", "/admin/consumers", MONITOR, json={"id": "acme"})
        refused_delete = _call(gw, "DELETE", "/admin/cache", MONITOR)
        written = _call(gw, "POST", "/admin/consumers", OPS, json={"id": "acme"})
        wrong = _call(gw, "GET", "/admin/consumers", "nope")
        lowercase_scheme = httpx.get(
            f"{gw.admin_url}/admin/consumers", headers={"authorization": f"bearer {OPS}"}
        )
        basic = httpx.get(f"{gw.admin_url}/admin/consumers", auth=("ops", OPS))
        anonymous = _call(gw, "GET", "/admin/consumers", None)
        metrics = _call(gw, "GET", "/metrics", None)
        listed = _call(gw, "GET", "/admin/consumers", MONITOR).json()
    assert read.status_code == 200 and head.status_code == 200
    assert refused.status_code == 403 and refused_delete.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "'monitor' is read-only" in refused.json()["detail"]
    assert written.status_code == 201, written.text
    assert [c["id"] for c in listed["items"]] == ["acme"]
    assert lowercase_scheme.status_code == 200
    for response in (wrong, basic, anonymous):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="tiergate-admin"'
    assert metrics.status_code == 200
    for token in (MONITOR, OPS):
        assert token not in caplog.text
        assert all(token not in r.text for r in (refused, wrong, basic))


def test_without_any_token_the_admin_api_is_disabled(tmp_path):
    with running_gateway(tmp_path, f"sqlite:///{tmp_path}/r.db", admin_token=None) as gw:
        r = _call(gw, "GET", "/admin/consumers", "anything")
    assert r.status_code == 503
    assert "admin API is disabled" in r.json()["detail"]


def test_the_single_admin_token_still_works(tmp_path):
    with running_gateway(tmp_path, f"sqlite:///{tmp_path}/r.db", admin_token=LEGACY) as gw:
        ok = _call(gw, "POST", "/admin/consumers", LEGACY, json={"id": "acme"})
    assert ok.status_code == 201
