"""Secrets never reach logs or error bodies: run the flows with every logger at DEBUG,
including API requests that carry a bearer token and an API key (access log on)."""

from __future__ import annotations

import json
import logging

import httpx

from gateway.observability import access_log
from gateway.observability.access_log import configure_access_log
from tests.oauth.helpers import provision_client, token_request
from tests.support.identity import ADMIN_TOKEN, running_gateway


def test_secrets_do_not_appear_in_logs_or_errors(tmp_path, capfd, caplog, monkeypatch, httpbin_url):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(access_log, "_sink", None)  # restored after the test
    configure_access_log()
    url = f"sqlite:///{tmp_path}/r.db"
    apis = [
        {
            "name": "orders",
            "upstream": {"targets": [httpbin_url]},
            "policies": {"jwt": {"issuers": [{"builtin": True}]}},
        },
        {"name": "partner", "upstream": {"targets": [httpbin_url]}, "policies": {"api-key": {}}},
    ]
    with running_gateway(tmp_path, url, apis, access_log=True) as gw:
        client_id, secret = provision_client(url, "quiet", ["a"])
        token = token_request(gw.url, client_id, secret).json()["access_token"]
        bodies = [
            token_request(gw.url, client_id, secret + "x").text,
            token_request(gw.url, client_id, secret, scope="zzz").text,
            httpx.post(f"{gw.url}/oauth/introspect", data={"token": token}).text,
            httpx.post(
                f"{gw.url}/oauth/token",
                data={"grant_type": "client_credentials", "client_secret": secret},
                auth=(client_id, secret),
            ).text,
            httpx.get(f"{gw.admin_url}/admin/keys", headers={"Authorization": "Bearer nope"}).text,
        ]
        created = httpx.post(
            f"{gw.admin_url}/admin/keys",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"consumer": "quiet", "plan": "p", "apis": ["partner"]},
        ).json()["key"]
        calls = [  # the credentials on API requests, through the policies, access log on
            httpx.get(
                f"{gw.url}/experience/orders/v1/get", headers={"Authorization": f"Bearer {token}"}
            ),
            httpx.get(f"{gw.url}/experience/partner/v1/get", headers={"X-API-Key": created}),
            httpx.get(
                f"{gw.url}/experience/partner/v1/get", headers={"X-API-Key": created[:-4] + "zzzz"}
            ),
            httpx.get(
                f"{gw.url}/experience/orders/v1/get", headers={"Authorization": f"Bearer {token}x"}
            ),
        ]
        assert [r.status_code for r in calls] == [200, 200, 401, 401]
        bodies += [r.text for r in calls[2:]]
    out, err = capfd.readouterr()
    logged = [json.loads(line) for line in out.splitlines() if line.startswith('{"ts"')]
    assert [(line["api"], line["status"]) for line in logged if line["api"]] == [
        ("orders", 200),
        ("partner", 200),
        ("partner", 401),
        ("orders", 401),
    ]  # the access log was on and wrote every API request
    everything = "\n".join([*bodies, out, err, caplog.text])
    wrong = created[:-4] + "zzzz"
    for credential in [secret, token, ADMIN_TOKEN, created, wrong, token.rsplit(".", 1)[1]]:
        assert credential not in everything
