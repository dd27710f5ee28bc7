"""`tiergate contract-test`: exit 0 on a conforming API, non-zero with a readable report
on a broken one or an unreachable base URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.cli import main
from tests.support.servers import free_port, serve_asgi

CONTRACT = {
    "openapi": "3.1.0",
    "info": {"title": "widgets", "version": "1.0.0"},
    "x-tier": "system",
    "servers": [{"url": "/system/widgets/v1"}],
    "paths": {
        "/widgets/{widget_id}": {
            "get": {
                "operationId": "widgets_get",
                "parameters": [
                    {
                        "name": "widget_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 9},
                        "example": 1,
                    }
                ],
                "responses": {
                    "200": {
                        "description": "A widget.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["id", "name"],
                                    "properties": {
                                        "id": {"type": "integer"},
                                        "name": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "404": {
                        "description": "No such widget.",
                        "content": {"application/problem+json": {"schema": {"type": "object"}}},
                    },
                },
            }
        }
    },
}


def widgets_app(broken: bool, lost: bool = False) -> Starlette:
    async def get_widget(request: Request) -> JSONResponse:
        raw = request.path_params["widget_id"]
        if lost or not raw.isdigit() or not 1 <= int(raw) <= 9:
            return JSONResponse(
                {"title": "Not Found", "status": 404},
                status_code=404,
                media_type="application/problem+json",
            )
        if broken:  # drifted from the contract: a renamed field
            return JSONResponse({"id": int(raw), "label": "sprocket"})
        return JSONResponse({"id": int(raw), "name": "sprocket"})

    return Starlette(routes=[Route("/widgets/{widget_id}", get_widget)])


@pytest.fixture
def config_file(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "widgets.yaml").write_text(yaml.safe_dump(CONTRACT))
    config = {
        "access_log": False,
        "apis": [
            {
                "name": "widgets",
                "tier": "system",
                "contract": "widgets.yaml",
                "upstream": {"targets": ["http://127.0.0.1:9"]},
            }
        ],
    }
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config))
    yield path


def contract_test(config: Path, url: str, *extra: str) -> int:
    return main(
        [
            "contract-test",
            "--config",
            str(config),
            "--api",
            "widgets",
            "--base-url",
            url,
            "--direct",
            "--max-examples",
            "2",
            "--seed",
            "1",
            *extra,
        ]
    )


def test_a_conforming_api_passes(config_file: Path, capsys) -> None:
    with serve_asgi(widgets_app(broken=False)) as server:
        assert contract_test(config_file, server.url) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: widgets at ") and "1 operations" in out


def test_a_drifted_api_fails_with_a_readable_report(config_file: Path, capsys) -> None:
    with serve_asgi(widgets_app(broken=True)) as server:
        assert contract_test(config_file, server.url) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("FAILED: widgets at ")
    assert "Response violates schema" in captured.err
    assert '"name" is a required property' in captured.err
    assert "contract tests failed for 1 of 1 APIs" in captured.err


def test_json_gives_each_api_s_result(config_file: Path, capsys) -> None:
    with serve_asgi(widgets_app(broken=False, lost=True)) as server:
        assert contract_test(config_file, server.url, "--json") == 1
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] == 1
    [api] = result["apis"]
    assert api["api"] == "widgets" and api["ok"] is False and api["cases"] > 0
    assert api["without_success"] == ["GET /widgets/{widget_id}"]


def test_an_unreachable_base_url_fails(config_file: Path, capsys) -> None:
    assert contract_test(config_file, f"http://127.0.0.1:{free_port()}") == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("FAILED: widgets at ")
    assert "Connection refused" in captured.err or "connect" in captured.err.lower()


def test_an_unknown_api_is_named(config_file: Path, capsys) -> None:
    assert main(["contract-test", "--config", str(config_file), "--api", "nope"]) == 2
    assert "no API named 'nope'" in capsys.readouterr().err


def test_an_operation_that_never_succeeds_fails(config_file: Path, capsys) -> None:
    """Every answer documented (404), every check passing: still no test of the operation."""
    with serve_asgi(widgets_app(broken=False, lost=True)) as server:
        assert contract_test(config_file, server.url) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED: widgets at ")
    assert "no 2xx for: GET /widgets/{widget_id}" in out


def test_valid_data_refused_with_a_documented_422_fails(tmp_path: Path, capsys) -> None:
    """No status allowance beyond schemathesis' own: a schema-valid body must not be 422,
    even where the contract documents 422."""
    problem = {"application/problem+json": {"schema": {"type": "object"}}}
    contract = {
        **CONTRACT,
        "paths": {
            "/widgets": {
                "post": {
                    "operationId": "widgets_create",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["name"],
                                    "additionalProperties": False,
                                    "properties": {"name": {"type": "string", "maxLength": 20}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Made.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "400": {"description": "Malformed.", "content": problem},
                        "422": {"description": "Refused.", "content": problem},
                    },
                }
            }
        },
    }
    (tmp_path / "widgets.yaml").write_text(yaml.safe_dump(contract))
    config = {
        "access_log": False,
        "apis": [
            {
                "name": "widgets",
                "tier": "system",
                "contract": "widgets.yaml",
                "upstream": {"targets": ["http://127.0.0.1:9"]},
            }
        ],
    }
    (tmp_path / "tiergate.yaml").write_text(yaml.safe_dump(config))

    async def refuse(request: Request) -> JSONResponse:
        return JSONResponse(
            {"title": "Unprocessable Content", "status": 422},
            status_code=422,
            media_type="application/problem+json",
        )

    app = Starlette(routes=[Route("/widgets", refuse, methods=["POST"])])
    with serve_asgi(app) as server:
        assert contract_test(tmp_path / "tiergate.yaml", server.url) == 1
    assert "Valid data should have been accepted" in capsys.readouterr().err
