"""Partner self-service over real sockets: a signed-in partner creates, rotates and
revokes the keys of their own consumer, and nothing of anyone else's (adversarial)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.catalogue.signed_in import (
    CONSUMER,
    OTHER_CONSUMER,
    OTHER_PARTNER,
    PARTNER,
    STAFF,
    complete,
    forms,
    sign_in,
    signed_in_estate,
)

ITEMS = "/experience/legacy/v1/items"
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    with signed_in_estate(tmp_path_factory.mktemp("selfservice")) as built:
        yield built


@pytest.fixture
def partner(estate):
    with httpx.Client() as http:
        complete(http, sign_in(http, estate.url, PARTNER, "/catalogue/keys"))
        yield http


def _token(http: httpx.Client, url: str) -> str:
    return forms(http.get(url + "/catalogue/keys").text)["/catalogue/keys"]["csrf_token"]


def _create(http: httpx.Client, url: str) -> tuple[str, str]:
    page = http.post(url + "/catalogue/keys", data={"csrf_token": _token(http, url)}, headers=HTML)
    assert page.status_code == 201, page.text
    found = re.search(r'<code id="new-key" data-key-id="([^"]+)">(tg_[^<]+)</code>', page.text)
    assert found is not None
    return found.group(1), found.group(2)


def _call(url: str, key: str) -> int:
    return httpx.get(url + ITEMS, headers={"x-api-key": key}).status_code


def _other_consumers_key(estate) -> str:
    record, _ = estate.registry_call("create_api_key", OTHER_CONSUMER, "free", ["legacy"])
    return record.id


def _until(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_partner_creates_a_key_that_works_and_is_shown_once(estate, partner):
    key_id, key = _create(partner, estate.url)
    assert _call(estate.url, key) == 200
    record = estate.registry_call("api_key", key_id)
    assert record.consumer_id == CONSUMER and record.plan == "free"
    assert sorted(record.apis) == ["legacy"]
    listing = partner.get(estate.url + "/catalogue/keys")
    assert listing.headers["cache-control"] == "no-store"
    assert key_id in listing.text and key not in listing.text  # never shown again
    row = listing.text.split(f'data-key-id="{key_id}"')[1].split("</tr>")[0]
    assert re.search(r"<td>20\d\d-\d\d-\d\d \d\d:\d\d UTC</td>", row)
    row = listing.text.split(f'data-key-id="{key_id}"')[1].split("</tr>")[0]
    assert re.search(r"<td>20\d\d-\d\d-\d\d \d\d:\d\d UTC</td>", row)


def test_partner_sees_usage_and_quota(estate, partner):
    _, key = _create(partner, estate.url)
    assert _call(estate.url, key) == 200
    page = partner.get(estate.url + "/catalogue/keys").text
    row = r'<tr data-period="daily"><td>[^<]+</td><td>(\d+)</td>\s*<td>(\d+)</td>'
    daily = re.search(row, page)
    assert daily is not None
    assert int(daily.group(1)) >= 1 and daily.group(2) == "500"
    assert "Plan <strong>free</strong>: 60/minute, 1000/day" in page


def test_partner_rotates_a_key(estate, partner):
    key_id, key = _create(partner, estate.url)
    page = partner.post(
        f"{estate.url}/catalogue/keys/{key_id}/rotate",
        data={"csrf_token": _token(partner, estate.url)},
        headers=HTML,
    )
    assert page.status_code == 201
    new_key = re.search(r'id="new-key"[^>]*>(tg_[^<]+)<', page.text).group(1)
    assert new_key != key
    assert _call(estate.url, new_key) == 200
    assert _call(estate.url, key) == 200  # the old one overlaps for an hour
    assert estate.registry_call("api_key", key_id).replaced_by is not None


def test_partner_revokes_a_key_then_it_is_refused(estate, partner):
    key_id, key = _create(partner, estate.url)
    assert _call(estate.url, key) == 200
    answer = partner.post(
        f"{estate.url}/catalogue/keys/{key_id}/revoke",
        data={"csrf_token": _token(partner, estate.url)},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/catalogue/keys"
    assert estate.registry_call("api_key", key_id).revoked_at is not None
    assert _until(lambda: _call(estate.url, key) == 401)


def test_partner_sees_only_their_own_keys(estate, partner):
    theirs = _other_consumers_key(estate)
    page = partner.get(estate.url + "/catalogue/keys").text
    assert theirs not in page
    assert f"API keys of <code>{CONSUMER}</code>" in page


@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_another_consumers_key_is_not_found(estate, partner, action):
    theirs = _other_consumers_key(estate)
    answer = partner.post(
        f"{estate.url}/catalogue/keys/{theirs}/{action}",
        data={"csrf_token": _token(partner, estate.url)},
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "You have no API key with this id."
    record = estate.registry_call("api_key", theirs)
    assert record.revoked_at is None and record.replaced_by is None


@pytest.mark.parametrize(
    "key_id",
    ["..%2Fx", "%2e%2e", "k" * 65, "ak_%00", "ak_%C3%A9", "ak_'%20OR%20'1'='1", "%20"],
)
def test_tampered_key_ids_are_not_found(estate, partner, key_id):
    answer = partner.post(
        f"{estate.url}/catalogue/keys/{key_id}/revoke",
        data={"csrf_token": _token(partner, estate.url)},
    )
    assert answer.status_code in (400, 404)


def test_the_same_key_id_belongs_only_to_its_consumer(estate, partner):
    key_id, key = _create(partner, estate.url)
    with httpx.Client() as other:
        complete(other, sign_in(other, estate.url, OTHER_PARTNER, "/catalogue/keys"))
        token = forms(other.get(estate.url + "/catalogue/keys").text)["/catalogue/keys"]
        for action in ("revoke", "rotate"):
            answer = other.post(f"{estate.url}/catalogue/keys/{key_id}/{action}", data=token)
            assert answer.status_code == 404
        assert key_id not in other.get(estate.url + "/catalogue/keys").text
    assert _call(estate.url, key) == 200


def test_state_changing_forms_need_the_sessions_csrf_token(estate, partner):
    key_id, key = _create(partner, estate.url)
    url = f"{estate.url}/catalogue/keys/{key_id}/revoke"
    with httpx.Client() as other:
        complete(other, sign_in(other, estate.url, OTHER_PARTNER))
        others_token = forms(other.get(estate.url + "/catalogue/keys").text)["/catalogue/keys"]
    token = _token(partner, estate.url)
    refusals = [
        partner.post(url),  # no form at all
        partner.post(url, data={}),
        partner.post(url, data={"csrf_token": ""}),
        partner.post(url, data=others_token),  # another session's token
        partner.post(url, data={"csrf_token": token}, headers={"origin": "https://evil.example"}),
        partner.post(
            url,
            content=f"csrf_token={token}&csrf_token={token}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        partner.post(url, json={"csrf_token": token}),
    ]
    assert [r.status_code for r in refusals] == [403] * len(refusals)
    create = partner.post(estate.url + "/catalogue/keys", data={}, headers=HTML)
    assert create.status_code == 403 and "The form expired" in create.text
    assert estate.registry_call("api_key", key_id).revoked_at is None
    assert _call(estate.url, key) == 200


def test_without_a_session_nothing_changes(estate, partner):
    key_id, _ = _create(partner, estate.url)
    token = _token(partner, estate.url)
    with httpx.Client() as anonymous:
        answer = anonymous.post(
            f"{estate.url}/catalogue/keys/{key_id}/revoke", data={"csrf_token": token}
        )
        assert answer.status_code == 401
        listing = anonymous.get(estate.url + "/catalogue/keys")
        assert listing.status_code == 303
        assert listing.headers["location"] == "/catalogue/sign-in?next=%2Fcatalogue%2Fkeys"
    assert estate.registry_call("api_key", key_id).revoked_at is None


def test_staff_who_are_not_partners_manage_no_keys(estate):
    with httpx.Client() as http:
        complete(http, sign_in(http, estate.url, STAFF))
        token = forms(http.get(estate.url + "/catalogue").text)["/catalogue/sign-out"]
        assert http.get(estate.url + "/catalogue/keys").status_code == 403
        assert http.post(estate.url + "/catalogue/keys", data=token).status_code == 403


def test_self_service_caps_active_keys_per_consumer(estate):
    from gateway.catalogue.self_service import MAX_ACTIVE_KEYS

    now = time.time()
    active = [
        k
        for k in estate.registry_call("list_api_keys")
        if k.consumer_id == OTHER_CONSUMER and k.usable(now)
    ]
    for _ in range(MAX_ACTIVE_KEYS - len(active)):
        _other_consumers_key(estate)
    with httpx.Client() as other:
        complete(other, sign_in(other, estate.url, OTHER_PARTNER, "/catalogue/keys"))
        token = forms(other.get(estate.url + "/catalogue/keys").text)["/catalogue/keys"]
        refused = other.post(estate.url + "/catalogue/keys", data=token)
        assert refused.status_code == 409
        assert f"already has {MAX_ACTIVE_KEYS} active keys" in refused.json()["detail"]
