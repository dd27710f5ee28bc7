"""Reload under load, over real sockets: `tiergate up` in a subprocess, upstreams on
uvicorn, many concurrent keep-alive clients, and reloads through the admin API and SIGHUP.
Half the reloads carry a config error: the gateway keeps serving the previous config."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.processes import GatewayProcess, tiergate_up, write_config
from tests.support.servers import UvicornThread, serve_asgi

TOKEN = "reload-" + os.urandom(8).hex()
AUTH = {"authorization": f"Bearer {TOKEN}"}


def upstream(name: str) -> Any:
    body = name.encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.sleep(0.002)  # requests are in flight while the table is swapped
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class Load:
    """Concurrent clients on keep-alive connections in a thread of their own."""

    def __init__(self, url: str, clients: int = 16) -> None:
        self.url = url
        self.clients = clients
        self.statuses: Counter[int] = Counter()
        self.bodies: Counter[str] = Counter()
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.clients)))

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            try:
                response = await client.get(f"{self.url}/experience/shop/v1/items")
            except httpx.HTTPError as error:
                self.errors.append(repr(error))
                continue
            self.statuses[response.status_code] += 1
            self.bodies[response.text] += 1

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def shop(target: str, **policies: Any) -> dict[str, Any]:
    return {"name": "shop", "upstream": {"targets": [target]}, "policies": policies}


_BASES: dict[Path, dict[str, Any]] = {}


def rewrite(path: Path, api: dict[str, Any], plans: dict[str, Any] | None = None) -> None:
    """Write the config file `write_config` made, with `api` (and `plans`) in it."""
    if path not in _BASES:
        _BASES[path] = yaml.safe_load(path.read_text())
    raw = _BASES[path]
    raw["apis"] = [{**api, "tier": "experience"}]
    raw["apis"][0]["policies"].setdefault("request-validation", False)
    if plans is not None:
        raw["plans"] = plans
    path.write_text(yaml.safe_dump(raw))


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[UvicornThread, UvicornThread]]:
    with (
        serve_asgi(upstream("blue"), lifespan="off") as blue,
        serve_asgi(upstream("green"), lifespan="off") as green,
    ):
        yield blue, green


def admin_url(process: GatewayProcess, config: Path) -> str:
    port = yaml.safe_load(config.read_text())["listeners"]["admin"]["port"]
    return f"http://127.0.0.1:{port}"


def reload(admin: str) -> httpx.Response:
    return httpx.post(f"{admin}/admin/config/reload", headers=AUTH, timeout=30)


BROKEN: list[tuple[str, Any]] = [
    ("unknown plan", lambda t: shop(t, **{"rate-limit": {"default_plan": "nope"}})),
    ("unknown policy", lambda t: shop(t, **{"no-such-policy": {}})),
    ("bad target", lambda t: shop("ftp://example.invalid")),
    ("bad limit", lambda t: shop(t, **{"rate-limit": {"anonymous": ["lots/minute"]}})),
    ("yaml", None),
]


def test_twenty_reloads_under_load_lose_no_request(tmp_path, upstreams):
    blue, green = upstreams
    config = write_config(tmp_path, [shop(blue.url)], access_log=False)
    rewrite(config, shop(blue.url, **{"rate-limit": {"anonymous": ["1000000/minute"]}}))
    env = {"TIERGATE_ADMIN_TOKEN": TOKEN, "TIERGATE_REGISTRY_URL": f"sqlite:///{tmp_path}/r.db"}
    with tiergate_up(config, env=env) as gateway:
        admin = admin_url(gateway, config)
        outcomes = []
        with Load(gateway.url) as load:
            time.sleep(0.5)
            for attempt in range(20):
                target = (green if attempt % 4 < 2 else blue).url
                if attempt % 2:
                    what, broken = BROKEN[attempt // 2 % len(BROKEN)]
                    if broken is None:
                        config.write_text(config.read_text() + "\napis: [\n")
                    else:
                        rewrite(config, broken(target))
                else:
                    what = target
                    limit = f"{1000000 + attempt}/minute"
                    rewrite(config, shop(target, **{"rate-limit": {"anonymous": [limit]}}))
                answer = reload(admin)
                outcomes.append((what, answer.status_code, answer.headers["content-type"]))
                time.sleep(0.15)
            served_before_stop = load.bodies.copy()
            time.sleep(0.3)
        metrics = httpx.get(f"{admin}/metrics", headers=AUTH).text
        log = gateway.log.read_text()
    assert load.errors == []
    assert set(load.statuses) == {200}, load.statuses
    assert sum(load.statuses.values()) > 200
    assert [status for _, status, _ in outcomes] == [200, 422] * 10, outcomes
    assert all(t == "application/problem+json" for _, s, t in outcomes if s == 422)
    # The last good config sent traffic to blue (attempt 18); both served in turn.
    assert served_before_stop["green"] > 0 and served_before_stop["blue"] > 0
    assert 'tiergate_config_reload_total{result="success"} 10.0' in metrics
    assert 'tiergate_config_reload_total{result="failure"} 10.0' in metrics
    assert "tiergate_config_last_reload_success_timestamp_seconds" in metrics
    assert log.count("config reload refused") == 10


def test_a_refused_reload_names_the_problem_and_keeps_the_old_config(tmp_path, upstreams):
    blue, green = upstreams
    config = write_config(tmp_path, [shop(blue.url)], access_log=False)
    env = {"TIERGATE_ADMIN_TOKEN": TOKEN, "TIERGATE_REGISTRY_URL": f"sqlite:///{tmp_path}/r.db"}
    with tiergate_up(config, env=env) as gateway:
        admin = admin_url(gateway, config)
        rewrite(config, shop(green.url, **{"rate-limit": {"default_plan": "nope"}}))
        refused = reload(admin)
        still = httpx.get(f"{gateway.url}/experience/shop/v1/x")
        rewrite(config, shop(green.url))
        unauthenticated = httpx.post(f"{admin}/admin/config/reload")
        os.kill(gateway.proc.pid, signal.SIGHUP)  # SIGHUP reloads too
        deadline = time.monotonic() + 10
        while httpx.get(f"{gateway.url}/experience/shop/v1/x").text != "green":
            assert time.monotonic() < deadline, gateway.log.read_text()
            time.sleep(0.05)
        listener = yaml.safe_load(config.read_text())
        listener["listeners"]["public"]["port"] += 1
        config.write_text(yaml.safe_dump(listener))
        restart_only = reload(admin)
    assert refused.status_code == 422
    body = refused.json()
    assert body["status"] == 422 and body["detail"].startswith("The new config was not applied")
    assert any("'nope' is not defined" in problem for problem in body["problems"]), body
    assert still.text == "blue"
    assert unauthenticated.status_code == 401
    assert restart_only.status_code == 422
    # (the issuer follows the public port when it is not set: oauth changes with it)
    assert (
        "listeners: changed, but this setting is read only at start-up; restart the gateway"
        in restart_only.json()["problems"]
    )


def test_a_plan_limit_changed_in_the_file_applies_after_reload_and_keeps_the_count(
    tmp_path, upstreams
):
    blue, _ = upstreams
    api = shop(blue.url, **{"api-key": {}, "rate-limit": {}})
    config = write_config(tmp_path, [api], access_log=False)
    rewrite(config, api, plans={"gold": {"limits": ["5/minute"], "quotas": {"daily": 1000}}})
    env = {"TIERGATE_ADMIN_TOKEN": TOKEN, "TIERGATE_REGISTRY_URL": f"sqlite:///{tmp_path}/r.db"}
    with tiergate_up(config, env=env) as gateway, httpx.Client(timeout=10) as http:
        admin = admin_url(gateway, config)
        created = http.post(
            f"{admin}/admin/keys",
            headers=AUTH,
            json={"consumer": "acme", "plan": "gold", "apis": ["shop"]},
        )
        assert created.status_code == 201, created.text
        key = {"X-API-Key": created.json()["key"]}
        url = f"{gateway.url}/experience/shop/v1/x"
        first = [http.get(url, headers=key) for _ in range(3)]
        rewrite(config, api, plans={"gold": {"limits": ["4/minute"], "quotas": {"daily": 1000}}})
        assert reload(admin).json()["apis"]["changed"] == ["shop"]
        lowered = [http.get(url, headers=key) for _ in range(2)]
        rewrite(config, api, plans={"gold": {"limits": ["8/minute"], "quotas": {"daily": 1000}}})
        assert reload(admin).status_code == 200
        raised = [http.get(url, headers=key) for _ in range(5)]
        usage = http.get(f"{admin}/admin/usage/acme", headers=AUTH).json()
    assert [r.status_code for r in first] == [200] * 3
    assert first[-1].headers["ratelimit-policy"].startswith('"gold/minute";q=5;w=60')
    # 3 counted before the reload: the new limit of 4 leaves one request, not four.
    assert [r.status_code for r in lowered] == [200, 429]
    assert lowered[0].headers["ratelimit-policy"].startswith('"gold/minute";q=4;w=60')
    assert lowered[0].headers["x-ratelimit-remaining"] == "0"
    # Raised to 8: four more (the refused request took no unit).
    assert [r.status_code for r in raised] == [200] * 4 + [429]
    assert usage["daily"]["used"] == 8


def test_watch_reloads_when_the_file_changes(tmp_path, upstreams):
    blue, green = upstreams
    config = write_config(tmp_path, [shop(blue.url)], access_log=False)
    env = {
        "TIERGATE_ADMIN_TOKEN": TOKEN,
        "TIERGATE_REGISTRY_URL": f"sqlite:///{tmp_path}/r.db",
        "TIERGATE_WATCH": "1",  # what `tiergate up --watch` sets
    }
    with tiergate_up(config, env=env) as gateway:
        url = f"{gateway.url}/experience/shop/v1/x"
        assert httpx.get(url).text == "blue"
        time.sleep(0.3)  # the watcher is up
        rewrite(config, shop(green.url))
        deadline = time.monotonic() + 10
        while httpx.get(url).text != "green":
            assert time.monotonic() < deadline, gateway.log.read_text()
            time.sleep(0.05)
        config.write_text(config.read_text() + "\napis: [\n")  # an error: still green
        time.sleep(1)
        still = httpx.get(url).text
        log = gateway.log.read_text()
    assert still == "green"
    assert "config reload refused" in log


def test_tiergate_reload_asks_the_running_gateway(tmp_path, upstreams, monkeypatch, capsys):
    from gateway.cli import main, parser

    assert parser().parse_args(["up", "--watch"]).watch is True
    blue, green = upstreams
    config = write_config(tmp_path, [shop(blue.url)], access_log=False)
    env = {"TIERGATE_ADMIN_TOKEN": TOKEN, "TIERGATE_REGISTRY_URL": f"sqlite:///{tmp_path}/r.db"}
    with tiergate_up(config, env=env) as gateway:
        monkeypatch.setenv("TIERGATE_ADMIN_TOKEN", TOKEN)
        rewrite(config, shop(green.url))
        ok = main(["reload", "--config", str(config)])
        out = capsys.readouterr().out
        served = httpx.get(f"{gateway.url}/experience/shop/v1/x").text
        rewrite(config, shop(blue.url, **{"rate-limit": {"default_plan": "nope"}}))
        refused = main(["reload", "--config", str(config)])
        err = capsys.readouterr().err
        monkeypatch.setenv("TIERGATE_ADMIN_TOKEN", "wrong")
        unauthorized = main(["reload", "--config", str(config)])
    assert (ok, served) == (0, "green")
    assert out.strip() == "reloaded: 0 added, 1 changed, 0 removed"
    assert refused == 1 and "'nope' is not defined" in err
    assert unauthorized == 1
