"""The identity admin API on the admin listener (real uvicorn, real registry)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.oauth.helpers import token_request
from tests.support.identity import ADMIN_TOKEN, running_gateway

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def gw(tmp_path, registry_url):
    apis = [{"name": "partner", "upstream": {"targets": ["http://127.0.0.1:9"]}}]
    with running_gateway(tmp_path, registry_url, apis) as running:
        yield running


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}]
)
def test_admin_api_needs_the_admin_token(gw, headers):
    r = httpx.get(f"{gw.admin_url}/admin/keys", headers=headers)
    body = _problem(r, 401)
    assert "Bearer" in body["detail"] and "wrong" not in r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.post(f"{gw.admin_url}/admin/keys", headers=headers, json={})
    _problem(r, 401)


def test_admin_api_without_a_configured_token_says_how_to_enable_it(tmp_path):
    with running_gateway(tmp_path, f"sqlite:///{tmp_path}/r.db", admin_token=None) as gw:
        r = httpx.get(f"{gw.admin_url}/admin/keys", headers=AUTH)
        assert "TIERGATE_ADMIN_TOKEN" in _problem(r, 503)["detail"]


def test_admin_is_not_on_the_public_listener(gw):
    r = httpx.get(f"{gw.url}/admin/keys", headers=AUTH)
    assert r.status_code == 404


def test_key_create_list_revoke(gw):
    consumer = f"acme-{uuid.uuid4().hex[:6]}"
    r = httpx.post(
        f"{gw.admin_url}/admin/keys",
        headers=AUTH,
        json={"consumer": consumer, "plan": "gold", "apis": ["partner"]},
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    key = created["key"]
    assert key.startswith(f"tg_{created['prefix']}_")

    listing = httpx.get(f"{gw.admin_url}/admin/keys", headers=AUTH)
    assert key not in listing.text and key.split("_", 2)[2] not in listing.text
    mine = [item for item in listing.json()["items"] if item["id"] == created["id"]]
    assert mine and mine[0]["prefix"] == created["prefix"] and mine[0]["state"] == "active"
    assert (
        httpx.get(f"{gw.admin_url}/admin/consumers/{consumer}", headers=AUTH).json()["plan"]
        == "gold"
    )

    r = httpx.post(f"{gw.admin_url}/admin/keys/{created['id']}/revoke", headers=AUTH)
    assert r.status_code == 200 and r.json()["state"] == "revoked" and key not in r.text
    one = httpx.get(f"{gw.admin_url}/admin/keys/{created['id']}", headers=AUTH).json()
    assert one["state"] == "revoked"

    rotated = httpx.post(f"{gw.admin_url}/admin/keys/{created['id']}/rotate", headers=AUTH)
    assert _problem(rotated, 409)["detail"].endswith("create a new key instead")
    _problem(httpx.post(f"{gw.admin_url}/admin/keys/key_nope/revoke", headers=AUTH), 404)


def test_key_rotation_through_the_admin_api(gw):
    r = httpx.post(
        f"{gw.admin_url}/admin/keys",
        headers=AUTH,
        json={"consumer": "rotor", "plan": "gold", "apis": ["partner"]},
    )
    old = r.json()
    r = httpx.post(
        f"{gw.admin_url}/admin/keys/{old['id']}/rotate", headers=AUTH, json={"overlap_seconds": 60}
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["key"] != old["key"]
    old_now = httpx.get(f"{gw.admin_url}/admin/keys/{old['id']}", headers=AUTH).json()
    assert old_now["replaced_by"] == new["id"] and old_now["state"] == "active"
    assert old_now["expires_at"] is not None


def test_bad_bodies_are_400_problems(gw):
    bad = [
        b"not json",
        b"[]",
        b'{"consumer": "x", "plan": "gold", "apis": []}',
        b'{"consumer": "x", "plan": "gold", "apis": [""]}',
        b'{"consumer": "x", "plan": "gold", "apis": ["partner"], "extra": 1}',
    ]
    for body in bad:
        r = httpx.post(f"{gw.admin_url}/admin/keys", headers=AUTH, content=body)
        _problem(r, 400)
    r = httpx.post(
        f"{gw.admin_url}/admin/keys",
        headers=AUTH,
        json={"consumer": "x", "plan": "gold", "apis": ["nope"]},
    )
    assert "unknown APIs ['nope']" in _problem(r, 404)["detail"]


def test_client_create_returns_the_secret_once_and_the_client_works(gw):
    name = f"mobile-{uuid.uuid4().hex[:6]}"
    r = httpx.post(
        f"{gw.admin_url}/admin/clients", headers=AUTH, json={"name": name, "scopes": ["a", "b"]}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["client_secret"]
    assert token_request(gw.url, created["client_id"], secret).status_code == 200
    for path in ["/admin/clients", f"/admin/clients/{created['client_id']}", "/admin/usage"]:
        r = httpx.get(f"{gw.admin_url}{path}", headers=AUTH)
        assert r.status_code == 200 and secret not in r.text
    usage = httpx.get(f"{gw.admin_url}/admin/usage", headers=AUTH).json()
    mine = [c for c in usage["clients"] if c["client_id"] == created["client_id"]]
    assert mine[0]["tokens_issued"] == 1 and mine[0]["last_token_at"]

    r = httpx.post(f"{gw.admin_url}/admin/clients/{created['client_id']}/revoke", headers=AUTH)
    assert r.json()["revoked_at"] is not None
    r = token_request(gw.url, created["client_id"], secret)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


def test_consumers_applications_plans_signing_keys(gw):
    consumer = f"shop-{uuid.uuid4().hex[:6]}"
    r = httpx.post(f"{gw.admin_url}/admin/consumers", headers=AUTH, json={"id": consumer})
    assert r.status_code == 201
    _problem(
        httpx.post(f"{gw.admin_url}/admin/consumers", headers=AUTH, json={"id": consumer}), 409
    )
    r = httpx.post(
        f"{gw.admin_url}/admin/applications",
        headers=AUTH,
        json={"consumer": consumer, "name": "App"},
    )
    assert r.status_code == 201 and r.json()["consumer"] == consumer
    app_id = r.json()["id"]
    r = httpx.post(
        f"{gw.admin_url}/admin/clients",
        headers=AUTH,
        json={"name": f"{consumer}-web", "consumer": consumer, "application": app_id},
    )
    assert r.status_code == 201 and r.json()["application"] == app_id
    r = httpx.post(
        f"{gw.admin_url}/admin/clients",
        headers=AUTH,
        json={"name": "other-web", "consumer": "other", "application": app_id},
    )
    _problem(r, 404)
    apps = httpx.get(f"{gw.admin_url}/admin/applications", headers=AUTH).json()["items"]
    assert any(a["consumer"] == consumer for a in apps)
    r = httpx.post(
        f"{gw.admin_url}/admin/applications",
        headers=AUTH,
        json={"consumer": "ghost-x", "name": "A"},
    )
    _problem(r, 404)
    assert httpx.get(f"{gw.admin_url}/admin/plans", headers=AUTH).json() == {"items": []}
    before = httpx.get(f"{gw.admin_url}/admin/signing-keys", headers=AUTH).json()["items"]
    r = httpx.post(f"{gw.admin_url}/admin/signing-keys/rotate", headers=AUTH)
    assert r.status_code == 201 and "PRIVATE" not in r.text
    after = httpx.get(f"{gw.admin_url}/admin/signing-keys", headers=AUTH).json()["items"]
    assert {k["kid"] for k in before} < {k["kid"] for k in after}


def test_plans_are_structured_json(tmp_path):
    plans = {
        "free": {"limits": ["60/minute", "1000/day"], "quotas": {"daily": 500}},
        "gold": {"limits": ["6000/minute"], "strategy": "sliding-window-counter"},
    }
    with running_gateway(tmp_path, f"sqlite:///{tmp_path}/r.db", plans=plans) as gw:
        items = httpx.get(f"{gw.admin_url}/admin/plans", headers=AUTH).json()["items"]
    assert items == [
        {
            "name": "free",
            "limits": ["60/minute", "1000/day"],
            "strategy": "moving-window",
            "quotas": {"daily": 500, "monthly": None},
            "description": "",
        },
        {
            "name": "gold",
            "limits": ["6000/minute"],
            "strategy": "sliding-window-counter",
            "quotas": {"daily": None, "monthly": None},
            "description": "",
        },
    ]


def test_user_create_get_list_disable(gw):
    username = f"ann-{uuid.uuid4().hex[:6]}"
    body = {"username": username, "customer_id": "cus_0042", "password": "a long password"}
    r = httpx.post(f"{gw.admin_url}/admin/users", headers=AUTH, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["customer_id"] == "cus_0042" and "password" not in r.text
    assert "long password" not in r.text
    assert _problem(httpx.post(f"{gw.admin_url}/admin/users", headers=AUTH, json=body), 409)
    got = httpx.get(f"{gw.admin_url}/admin/users/{username}", headers=AUTH).json()
    assert got["disabled_at"] is None
    listed = httpx.get(f"{gw.admin_url}/admin/users", headers=AUTH).json()["items"]
    assert username in {u["username"] for u in listed}
    r = httpx.post(f"{gw.admin_url}/admin/users/{username}/disable", headers=AUTH)
    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    _problem(httpx.post(f"{gw.admin_url}/admin/users/nobody/disable", headers=AUTH), 404)
    _problem(httpx.get(f"{gw.admin_url}/admin/users/nobody", headers=AUTH), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"username": "a b", "customer_id": "cus_0001", "password": "long enough"},
        {"username": "ann", "customer_id": "42", "password": "long enough"},
        {"username": "ann", "customer_id": "cus_0001", "password": "short"},
        {"username": "ann", "customer_id": "cus_0001"},
        {"username": "ann", "customer_id": "cus_0001", "password": "long enough", "admin": True},
    ],
)
def test_user_create_refusals(gw, body):
    r = httpx.post(f"{gw.admin_url}/admin/users", headers=AUTH, json=body)
    _problem(r, 400)
    assert "long enough" not in r.text
