"""Errors reach clients as problem+json; an unexpected failure never leaks a traceback."""

from __future__ import annotations

import httpx
from sqlalchemy import MetaData
from starlette.requests import Request
from starlette.responses import Response

from apis._shared.app import create_api, resource
from apis._shared.db import Database
from apis._shared.problems import INTERNAL_ERROR, Problem
from tests.support.servers import serve_asgi


async def _explode(request: Request) -> Response:
    raise RuntimeError("secret internals: password=hunter2")


async def _gone(request: Request) -> Response:
    raise Problem(412, "The order changed since you read it.", headers={"ETag": '"abc"'})


async def _no_seed(db: Database) -> None:
    return None


def test_unexpected_errors_become_a_500_problem(tmp_path) -> None:
    app = create_api(
        "probe",
        [resource("/boom", get=_explode), resource("/gone", get=_gone, post=_gone)],
        MetaData(),
        _no_seed,
        f"sqlite:///{tmp_path}/probe.db",
    )
    with serve_asgi(app) as server, httpx.Client(base_url=server.url) as client:
        boom = client.get("/boom")
        assert boom.status_code == 500
        assert boom.headers["content-type"] == "application/problem+json"
        assert boom.json() == {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": INTERNAL_ERROR,
        }
        assert "hunter2" not in boom.text and "Traceback" not in boom.text
        gone = client.get("/gone")
        assert gone.status_code == 412 and gone.headers["etag"] == '"abc"'
        assert gone.json()["title"] == "Precondition Failed"
        put = client.put("/gone")
        assert put.status_code == 405
        assert set(put.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
        assert "PUT is not allowed" in put.json()["detail"]
