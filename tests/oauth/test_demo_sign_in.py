"""The embedded demo's sign-in: passwords generated at the first start and printed once,
and the printed instructions work as printed (open the URL, sign in, redeem the code)."""

from __future__ import annotations

import re
import shlex
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.oauth.sign_in import parse_form
from tests.support.identity import running_gateway

DEMO = {"demo_users": {"ana": "cus_0001", "ben": "cus_0002"}}


def test_printed_instructions_sign_a_demo_user_in(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/registry.db"
    with running_gateway(tmp_path, url, oauth=DEMO) as gw:
        printed = capsys.readouterr().out
        passwords = dict(re.findall(r"user (\w+) \(customer cus_\d+\), password (\S+)", printed))
        assert set(passwords) == {"ana", "ben"} and passwords["ana"] != passwords["ben"]
        authorize = re.search(r"1\. open (\S+)", printed).group(1)
        curl = shlex.split(re.search(r"3\. (curl .*)", printed).group(1))
        base = "http://127.0.0.1:8080"
        with httpx.Client() as browser:
            page = browser.get(authorize.replace(base, gw.url))
            assert page.status_code == 200 and "Demo shop app" in page.text
            form = parse_form(page.text)
            answer = browser.post(
                f"{gw.url}{form.action}",
                data={**form.fields, "username": "ana", "password": passwords["ana"]},
            )
        assert answer.status_code == 302
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        assert curl[:2] == ["curl", "-s"] and set(curl[3::2]) == {"-d"}
        data = dict(arg.split("=", 1) for arg in curl[4::2])
        data["code"] = code
        token = httpx.post(curl[2].replace(base, gw.url), data=data)
        assert token.status_code == 200, token.text
        assert token.json()["refresh_token"]
    with running_gateway(tmp_path, url, oauth=DEMO):
        again = capsys.readouterr().out
    assert "password printed at its first start" in again
    assert passwords["ana"] not in again and passwords["ben"] not in again


def test_no_demo_users_means_no_demo(tmp_path, capsys):
    with running_gateway(tmp_path, f"sqlite:///{tmp_path}/registry.db") as gw:
        assert "sign in to the demo" not in capsys.readouterr().out
        r = httpx.get(
            f"{gw.url}/oauth/authorize",
            params={"client_id": "demo-shop-app", "response_type": "code"},
        )
        assert r.status_code == 400  # no such client
