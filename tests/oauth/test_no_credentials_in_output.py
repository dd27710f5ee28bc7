"""Secrets never reach logs or error bodies: run the flows with every logger at DEBUG."""

from __future__ import annotations

import logging

import httpx

from gateway.observability import access_log
from gateway.observability.access_log import configure_access_log
from tests.oauth.helpers import provision_client, token_request
from tests.support.identity import ADMIN_TOKEN, running_gateway


def test_secrets_do_not_appear_in_logs_or_errors(tmp_path, capfd, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(access_log, "_sink", None)  # restored after the test
    configure_access_log()
    url = f"sqlite:///{tmp_path}/r.db"
    with running_gateway(tmp_path, url, access_log=True) as gw:
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
            json={"consumer": "quiet", "plan": "p", "apis": ["x"]},
        ).json()["key"]
    out, err = capfd.readouterr()
    everything = "\n".join([*bodies, out, err, caplog.text])
    for credential in [secret, token, ADMIN_TOKEN, created]:
        assert credential not in everything
