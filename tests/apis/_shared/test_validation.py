"""Request bodies as the tier APIs read them, over a real socket: JSON as RFC 8259 has it."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import MetaData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apis._shared.app import create_api, resource
from apis._shared.db import Database
from apis._shared.validation import read_body
from tests.support.servers import serve_asgi


class Note(BaseModel):
    amount: float


async def _echo(request: Request) -> Response:
    note, _ = await read_body(request, Note)
    return JSONResponse({"amount": note.amount})


async def _no_seed(db: Database) -> None:
    return None


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("validation")
    app = create_api(
        "probe", [resource("/notes", post=_echo)], MetaData(), _no_seed, f"sqlite:///{tmp}/p.db"
    )
    with serve_asgi(app) as server, httpx.Client(base_url=server.url) as http:
        yield http


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(client, constant):
    r = client.post("/notes", content=f'{{"amount": {constant}}}'.encode())
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert "not valid JSON" in r.json()["detail"]


def test_a_number_is_read(client):
    assert client.post("/notes", content=b'{"amount": 2.5}').json() == {"amount": 2.5}
