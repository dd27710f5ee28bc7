"""The audit trail over real sockets: admin API changes are recorded with the token's
name, secrets redacted, before/after; the trail reads with filters and paging, and the
API offers no way to rewrite it. CLI changes are recorded with the user's name."""

from __future__ import annotations

import getpass
import hashlib
import json

import httpx

from gateway.cli import main
from tests.support.identity import running_gateway

OPS = "ops-token-77aa01"
MONITOR = "monitor-token-33bb02"
TOKENS = {
    "ops": {"token_env": "OPS_TOKEN", "access": "read-write"},
    "monitor": {"token_sha256": hashlib.sha256(MONITOR.encode()).hexdigest()},
}


def _as(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_admin_changes_are_recorded_and_cannot_be_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("OPS_TOKEN", OPS)
    registry = f"sqlite:///{tmp_path}/r.db"
    with running_gateway(tmp_path, registry, admin_token=None, admin_tokens=TOKENS) as gw:
        admin = gw.admin_url
        with httpx.Client(base_url=admin, headers=_as(OPS)) as ops:
            assert ops.post("/admin/consumers", json={"id": "acme"}).status_code == 201
            created = ops.post(
                "/admin/keys", json={"consumer": "acme", "plan": "free", "apis": ["x"]}
            )
            key_id, key = created.json()["id"], created.json()["key"]
            assert ops.post(f"/admin/keys/{key_id}/revoke").status_code == 200
            assert ops.post("/admin/consumers", json={"id": "acme"}).status_code == 409
        with httpx.Client(base_url=admin, headers=_as(MONITOR)) as monitor:
            trail = monitor.get("/admin/audit").json()
            attempts = [
                httpx.request(method, f"{admin}{path}", headers=_as(OPS), json={"actor": "x"})
                for method in ("POST", "PUT", "PATCH", "DELETE")
                for path in ("/admin/audit", f"/admin/audit/{trail['items'][0]['id']}")
            ]
            again = monitor.get("/admin/audit").json()
            first_page = monitor.get("/admin/audit", params={"limit": 2}).json()
            second_page = monitor.get(
                "/admin/audit", params={"limit": 2, "before_id": first_page["next_before_id"]}
            ).json()
            by_target = monitor.get("/admin/audit", params={"target": key_id}).json()
            by_actor = monitor.get("/admin/audit", params={"actor": "admin-token:monitor"}).json()
            bad = monitor.get("/admin/audit", params={"limit": "lots"})
    actions = [entry["action"] for entry in trail["items"]]
    # newest first; the refused 409 is no change
    assert actions == [
        f"POST /admin/keys/{key_id}/revoke",
        "POST /admin/keys",
        "POST /admin/consumers",
    ]
    revoke, create, consumer = trail["items"]
    assert {e["actor"] for e in trail["items"]} == {"admin-token:ops"}
    assert consumer["target"] == "acme" and consumer["before"] is None
    assert create["after"]["key"] == "[redacted]" and create["target"] == key_id
    assert revoke["target"] == key_id
    assert revoke["before"]["state"] == "active" and revoke["after"]["state"] == "revoked"
    assert key not in json.dumps(trail)
    assert all(r.status_code in (404, 405) for r in attempts), [r.status_code for r in attempts]
    assert again == trail  # nothing rewritten, nothing added by the refused attempts
    assert [e["id"] for e in first_page["items"] + second_page["items"]] == [
        e["id"] for e in trail["items"]
    ]
    assert second_page["next_before_id"] is None
    assert [e["action"] for e in by_target["items"]] == actions[:2]
    assert by_actor["items"] == []  # reading is not a change
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


def test_cli_changes_are_recorded_with_the_user(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIERGATE_REGISTRY_URL", f"sqlite:///{tmp_path}/r.db")
    assert main(["clients", "create", "acme-app", "--scopes", "a b", "--json"]) == 0
    secret = json.loads(capsys.readouterr().out)["client_secret"]
    assert main(["clients", "list"]) == 0
    capsys.readouterr()
    assert main(["audit", "--json"]) == 0
    out = capsys.readouterr().out
    items = json.loads(out)["items"]
    assert [(e["actor"], e["action"], e["target"]) for e in items] == [
        (f"cli:{getpass.getuser()}", "clients create", "acme-app")
    ]
    assert items[0]["after"]["client_secret"] == "[redacted]"
    assert secret not in out
    assert main(["audit", "--actor", "cli:nobody"]) == 0
    assert "(no entries)" in capsys.readouterr().out
