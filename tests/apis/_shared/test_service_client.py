"""The service client: through the gateway (in-process and over a socket), with
credentials, trace headers, deadlines and one translation of upstream errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apis._shared.service_client import (
    CREDENTIALS_STATE_KEY,
    GATEWAY_STATE_KEY,
    ServiceClient,
    ServiceConflict,
    ServiceNotFound,
    ServiceRejected,
    ServiceTimeout,
    ServiceUnavailable,
)
from gateway.app import Gateway
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import free_port, serve_asgi


class TokenServer:
    """A stand-in authorization server (client_credentials only) counting issued tokens."""

    def __init__(self, expires_in: int) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.app = Starlette(routes=[Route("/oauth/token", self.token, methods=["POST"])])

    async def token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        assert form["grant_type"] == ["client_credentials"]
        token = f"tok-{len(self.issued)}"
        self.issued.append(token)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        )


async def echo(request: Request) -> Response:
    status = int(request.query_params.get("status", "200"))
    if "sleep" in request.query_params:
        await asyncio.sleep(float(request.query_params["sleep"]))
    if status >= 400:
        return JSONResponse(
            {"type": "about:blank", "title": "x", "status": status, "detail": f"said {status}"},
            status_code=status,
            media_type="application/problem+json",
        )
    return JSONResponse({"headers": dict(request.headers)})


UPSTREAM = Starlette(routes=[Route("/echo", echo)])


@pytest.fixture
def upstream_url():
    with serve_asgi(UPSTREAM) as server:
        yield server.url


def gateway_for(tmp_path: Path, upstream_url: str) -> Gateway:
    config = make_config(
        tmp_path,
        [
            {
                "name": "below",
                "tier": "system",
                "upstream": {"targets": [upstream_url], "retries": 0},
            }
        ],
    )
    return build_gateway(config)


async def test_in_process_mode_calls_the_gateway_app_and_propagates_trace_headers(
    tmp_path: Path, upstream_url: str
) -> None:
    gateway = gateway_for(tmp_path, upstream_url)
    await gateway.startup()
    try:
        client = ServiceClient.from_state("caller", {GATEWAY_STATE_KEY: gateway}, env={})
        incoming = {
            "x-request-id": "req-123",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        }
        body = await client.get_json("/system/below/v1/echo", service="below", incoming=incoming)
        assert body["headers"]["x-request-id"] == "req-123"
        # Same trace; the gateway hop becomes the parent of what it forwards (W3C).
        sent = body["headers"]["traceparent"].split("-")
        assert sent[1] == "0af7651916cd43dd8448eb211c80319c"
        assert sent[2] != "b7ad6b7169203331" and len(sent[2]) == 16
        assert "authorization" not in body["headers"]  # no credentials: none sent
        await client.aclose()
    finally:
        await gateway.shutdown()


async def test_distributed_mode_uses_gateway_url_and_caches_the_token(
    tmp_path: Path, upstream_url: str
) -> None:
    tokens = TokenServer(expires_in=3600)
    with serve_asgi(gateway_for(tmp_path, upstream_url)) as gw, serve_asgi(tokens.app) as auth:
        env = {
            "TIERGATE_GATEWAY_URL": gw.url,
            "TIERGATE_CLIENT_ID": "svc",
            "TIERGATE_CLIENT_SECRET": "s3cret",
            "TIERGATE_TOKEN_URL": f"{auth.url}/oauth/token",
        }
        client = ServiceClient.from_state("caller", {}, env=env)
        seen = [
            (await client.get_json("/system/below/v1/echo", service="below"))["headers"]
            for _ in range(3)
        ]
        await client.aclose()
    assert tokens.issued == ["tok-0"]
    assert all(h["authorization"] == "Bearer tok-0" for h in seen)


async def test_token_is_renewed_before_it_expires(tmp_path: Path, upstream_url: str) -> None:
    tokens = TokenServer(expires_in=20)  # inside the renewal leeway: renewed on every call
    with serve_asgi(gateway_for(tmp_path, upstream_url)) as gw, serve_asgi(tokens.app) as auth:
        state = {
            CREDENTIALS_STATE_KEY: {
                "client_id": "svc",
                "client_secret": "x",
                "token_endpoint": f"{auth.url}/oauth/token",
            }
        }
        client = ServiceClient.from_state("caller", state, env={"TIERGATE_GATEWAY_URL": gw.url})
        first = await client.get_json("/system/below/v1/echo", service="below")
        second = await client.get_json("/system/below/v1/echo", service="below")
        await client.aclose()
    assert tokens.issued == ["tok-0", "tok-1"]
    assert first["headers"]["authorization"] == "Bearer tok-0"
    assert second["headers"]["authorization"] == "Bearer tok-1"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, ServiceNotFound),
        (409, ServiceConflict),
        (422, ServiceRejected),
        (500, ServiceUnavailable),
        (503, ServiceUnavailable),
        (504, ServiceTimeout),
    ],
)
async def test_error_statuses_are_translated_once(
    tmp_path: Path, upstream_url: str, status: int, kind: type[Exception]
) -> None:
    with serve_asgi(gateway_for(tmp_path, upstream_url)) as gw:
        client = ServiceClient.from_state("caller", {}, env={"TIERGATE_GATEWAY_URL": gw.url})
        with pytest.raises(kind) as caught:
            await client.get_json(
                "/system/below/v1/echo", service="below", params={"status": status}
            )
        await client.aclose()
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert caught.value.reason == f"said {status}"


async def test_down_and_slow_services(tmp_path: Path, upstream_url: str) -> None:
    client = ServiceClient.from_state(
        "caller", {}, env={"TIERGATE_GATEWAY_URL": f"http://127.0.0.1:{free_port()}"}
    )
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        await client.get_json("/anything", service="below")
    await client.aclose()
    with serve_asgi(gateway_for(tmp_path, upstream_url)) as gw:
        client = ServiceClient.from_state(
            "caller", {}, env={"TIERGATE_GATEWAY_URL": gw.url, "TIERGATE_SERVICE_TIMEOUT": "0.3"}
        )
        started = time.monotonic()
        with pytest.raises(ServiceTimeout, match=r"no answer within 0\.3 s"):
            await client.get_json("/system/below/v1/echo", service="below", params={"sleep": 1.5})
        assert time.monotonic() - started < 1.2
        await client.aclose()


def test_without_gateway_or_url_the_error_says_what_to_set() -> None:
    with pytest.raises(RuntimeError, match="TIERGATE_GATEWAY_URL"):
        ServiceClient.from_state("caller", {}, env={})
