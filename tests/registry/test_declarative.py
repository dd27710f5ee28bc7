"""`tiergate export` and `tiergate apply` on fresh PostgreSQL registries: export → apply
reproduces the state (keys keep working, secrets never written), apply is idempotent,
the diff comes first, --dry-run changes nothing and only --prune deletes."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from gateway.cli import main
from gateway.registry import Registry, hash_credential
from gateway.registry.declarative import check_document
from tests.support.databases import postgres_database


async def _populate(url: str) -> dict[str, str]:
    registry = Registry.from_url(url)
    await registry.start()
    try:
        await registry.create_consumer("acme", "gold", "Acme Ltd")
        await registry.create_consumer("zeta", None)
        app = await registry.create_application("acme", "shop")
        _, secret = await registry.create_client(
            "acme-app", ["orders:read", "orders:write"], consumer="acme", application=app.id
        )
        revoked, _ = await registry.create_client("old-app", ["a"], consumer="zeta")
        await registry.revoke_client(revoked.client_id)
        key, plaintext = await registry.create_api_key(
            "acme", "gold", ["partner", "orders"], 3600, ["stock:read"], ["getStock"]
        )
        rotated, _ = await registry.rotate_api_key(key.id, 60)
        await registry.create_user("alice", "correct horse battery", "cus_0001")
        return {"key": plaintext, "secret": secret, "key_id": key.id, "rotated": rotated.id}
    finally:
        await registry.aclose()


async def _sign_in(url: str, username: str, password: str) -> str:
    registry = Registry.from_url(url)
    await registry.start()
    try:
        return (await registry.check_password(username, password)).outcome
    finally:
        await registry.aclose()


def _cli(capsys, url: str, monkeypatch, *argv: str) -> tuple[int, str]:
    monkeypatch.setenv("TIERGATE_REGISTRY_URL", url)
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, out


async def _key_works(url: str, plaintext: str) -> bool:
    registry = Registry.from_url(url)
    await registry.start()
    try:
        return await registry.api_key_by_hash(hash_credential(plaintext)) is not None
    finally:
        await registry.aclose()


@pytest.fixture
def registries():
    with postgres_database("export") as source, postgres_database("apply") as target:
        yield source, target


def test_export_then_apply_on_a_fresh_registry_reproduces_the_state(
    registries, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    source, target = registries
    made = asyncio.run(_populate(source))
    code, exported = _cli(capsys, source, monkeypatch, "export", "--yaml")
    assert code == 0
    document = yaml.safe_load(exported)
    assert check_document(document) == []
    assert made["key"] not in exported and made["secret"] not in exported
    assert hash_credential(made["secret"]) not in exported  # clients: not even a hash
    assert {c["id"]: c["plan"] for c in document["consumers"]} == {"acme": "gold", "zeta": None}
    keys = {k["id"]: k for k in document["keys"]}
    assert keys[made["key_id"]]["replaced_by"] == made["rotated"]
    assert keys[made["key_id"]]["operations"] == ["getStock"]
    state = tmp_path / "state.yaml"
    state.write_text(exported)

    assert document["users"] == [{"username": "alice", "customer": "cus_0001", "disabled_at": None}]
    assert "argon2" not in exported  # no password hash
    code, dry = _cli(capsys, target, monkeypatch, "apply", str(state), "--dry-run")
    assert code == 0 and "+ consumers acme" in dry and "(dry run: nothing applied)" in dry
    assert "+ users alice" in dry
    code, dry_json = _cli(capsys, target, monkeypatch, "apply", str(state), "--dry-run", "--json")
    planned = json.loads(dry_json)
    assert code == 0 and planned["applied"] is False and planned["new_secrets"] == []
    assert {"change": "create", "section": "users", "key": "alice"}.items() <= next(
        c for c in planned["changes"] if c["section"] == "users"
    ).items()
    code, empty = _cli(capsys, target, monkeypatch, "export", "--json")
    assert [json.loads(empty)[s] for s in ("consumers", "clients", "keys")] == [[], [], []]

    code, applied = _cli(capsys, target, monkeypatch, "apply", str(state))
    assert code == 0 and "changes applied" in applied
    assert applied.count("new secret of client") == 2  # clients get new secrets, shown once
    # A document never holds a password: a user apply creates gets a new one, shown once.
    password = applied.split("new password of user alice (shown once): ")[1].split()[0]
    assert asyncio.run(_sign_in(target, "alice", password)) == "ok"
    assert asyncio.run(_sign_in(target, "alice", "correct horse battery")) == "invalid"
    code, again = _cli(capsys, target, monkeypatch, "export", "--yaml")
    assert again == exported  # the same document back
    code, idempotent = _cli(capsys, target, monkeypatch, "apply", str(state))
    assert "no changes" in idempotent
    assert asyncio.run(_key_works(target, made["key"]))  # the partner's key works there too

    changed = yaml.safe_load(exported)
    changed["consumers"][0]["plan"] = "silver"
    changed["keys"] = [k for k in changed["keys"] if k["id"] != made["rotated"]]
    state.write_text(yaml.safe_dump(changed))
    code, kept = _cli(capsys, target, monkeypatch, "apply", str(state))
    assert "~ consumers acme" in kept and "plan: 'gold' -> 'silver'" in kept
    assert "- keys" not in kept  # without --prune nothing is deleted
    code, pruned = _cli(capsys, target, monkeypatch, "apply", str(state), "--prune")
    assert f"- keys {made['rotated']}" in pruned
    code, final = _cli(capsys, target, monkeypatch, "export", "--yaml")
    assert yaml.safe_load(final) == changed
    code, trail = _cli(capsys, target, monkeypatch, "audit", "--json", "--limit", "500")
    actions = {e["action"] for e in json.loads(trail)["items"]}
    assert {"apply create consumers", "apply update consumers", "apply delete keys"} <= actions


def test_apply_refuses_a_document_it_does_not_understand(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"version": 1, "consumers": [{"plan": "x", "colour": 1}]}))
    monkeypatch.setenv("TIERGATE_REGISTRY_URL", f"sqlite:///{tmp_path}/r.db")
    assert main(["apply", str(bad)]) == 2  # an input that cannot be loaded
    err = capsys.readouterr().err
    assert "consumers[0]: id is missing" in err and "unknown field 'colour'" in err
    users = {"version": 1, "users": [{"username": "a b", "customer": "42"}]}
    bad.write_text(yaml.safe_dump(users))
    assert main(["apply", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "users[0]: username is not a valid name" in err
    assert "users[0]: customer must be cus_NNNN" in err
    assert main(["apply", str(tmp_path / "missing.yaml")]) == 2
    assert check_document([]) == ["the document must be a mapping"]
