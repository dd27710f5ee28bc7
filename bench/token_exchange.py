"""What carrying the signed-in user across the tiers costs (RFC 8693 token exchange).

Serves the demo estate (tiergate.yaml, all tier APIs in-process) on a real socket and
times, per request, GET /experience/mobile/v1/customers/cus_0001/dashboard (mobile →
customer-360 → customers + orders: two hops below the app):

- `client`   the app's own client-credentials token: no user, no exchange (the peer);
- `user`     a signed-in user's token, exchanged tokens cached (the steady state);
- `user-cold` a fresh user token each time: every hop exchanges once (worst case);
- `exchange` one token-exchange request at /oauth/token on its own.

    .venv/bin/python bench/token_exchange.py [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.oauth.tokens import mint_access_token
from gateway.registry import Registry
from gateway.stack import build_gateway
from tests.support.estate import estate_config, run_async, var_dir
from tests.support.servers import serve_asgi

DASHBOARD = "/experience/mobile/v1/customers/cus_0001/dashboard"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def timed(http: httpx.Client, count: int, request) -> list[float]:
    samples = []
    for index in range(count):
        started = time.perf_counter()
        response = request(http, index)
        samples.append((time.perf_counter() - started) * 1e6)
        assert response.status_code == 200, response.text
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    count = parser.parse_args().requests
    with tempfile.TemporaryDirectory() as tmp:
        config = estate_config(Path(tmp))
        # the per-IP /oauth/token limit would stop the cold case: every exchange counts
        limits = config.rate_limiting.model_copy(update={"token_endpoint_limit": None})
        config = config.model_copy(update={"rate_limiting": limits})
        gateway = build_gateway(config)
        with var_dir(Path(tmp) / "var"), serve_asgi(gateway) as server:
            url = server.url
            ring = gateway.services.issuer

            async def setup():
                registry = Registry.from_url(config.registry_url)
                try:
                    user = await registry.create_user("bench-ana", "bench password", "cus_0001")
                    app, secret = await registry.create_client(
                        "bench-app", ["mobile:read"], plan="gold"
                    )
                    svc = await registry.client("svc-mobile")
                    return user, app, secret, svc
                finally:
                    await registry.aclose()

            user, app, secret, _svc = run_async(setup())
            credentials = gateway.services.service_credentials["mobile"]

            def user_token() -> str:
                return mint_access_token(ring, app, ["mobile:read"], "gold", user=user)[0]

            with httpx.Client(base_url=url, timeout=30) as http:
                client_token = http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(app.client_id, secret),
                ).json()["access_token"]
                warm = user_token()
                for token in (client_token, warm):  # warm caches and connections
                    http.get(DASHBOARD, headers={"authorization": f"Bearer {token}"})
                results = {
                    "client": timed(
                        http,
                        count,
                        lambda h, _i: h.get(
                            DASHBOARD, headers={"authorization": f"Bearer {client_token}"}
                        ),
                    ),
                    "user": timed(
                        http,
                        count,
                        lambda h, _i: h.get(DASHBOARD, headers={"authorization": f"Bearer {warm}"}),
                    ),
                    "user-cold": timed(
                        http,
                        count,
                        lambda h, _i: h.get(
                            DASHBOARD, headers={"authorization": f"Bearer {user_token()}"}
                        ),
                    ),
                    "exchange": timed(
                        http,
                        count,
                        lambda h, _i: h.post(
                            "/oauth/token",
                            data={
                                "grant_type": EXCHANGE,
                                "subject_token": warm,
                                "subject_token_type": ACCESS,
                            },
                            auth=(credentials["client_id"], credentials["client_secret"]),
                        ),
                    ),
                }
    base = statistics.median(results["client"])
    print(f"{'case':10} {'median µs':>10} {'p90 µs':>10} {'vs client':>10}")
    for name, samples in results.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{name:10} {median:10.0f} {p90:10.0f} {median / base:10.2f}x")
    cold = statistics.median(results["user-cold"]) - statistics.median(results["user"])
    print(f"cold exchanges add {cold:.0f} µs per request (2 hops: {cold / 2:.0f} µs per hop)")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
