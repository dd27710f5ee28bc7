"""An in-process tier API for tests: fetches a token with its provisioned service
credentials from the gateway it runs in, without a socket, and echoes the claims."""

from __future__ import annotations

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def whoami(request: Request) -> JSONResponse:
    state = request.scope["state"]
    credentials = state["tiergate.service_credentials"]
    gateway = state["tiergate.gateway"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway)) as client:
        r = await client.post(
            credentials["token_endpoint"],
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
        )
    token = r.json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    return JSONResponse({"token": token, "claims": claims})


app = Starlette(routes=[Route("/whoami", whoami)])
