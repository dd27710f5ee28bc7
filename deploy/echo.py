"""A tiny stand-alone service for the cluster demo: answers with who served it.

uvicorn deploy.echo:app --port 9100
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def echo(request: Request) -> JSONResponse:
    consumer = request.headers.get("x-consumer-id")
    return JSONResponse(
        {"path": request.url.path, "service_pid": os.getpid(), "consumer": consumer}
    )


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/healthz", healthz), Route("/{path:path}", echo)])
