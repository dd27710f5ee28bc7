"""RFC 9457 problem+json errors for the tier APIs (starlette exception handlers).

Raise `Problem(status, detail)` anywhere in a handler; `EXCEPTION_HANDLERS` turns it,
starlette's own HTTP errors (404 route, 405 method) and any unexpected exception into
`application/problem+json` with a human sentence. Tracebacks never reach the client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_JSON = "application/problem+json"
INTERNAL_ERROR = "The service failed to handle the request; it has been logged. Try again later."
ROUTE_NOT_FOUND = "There is no resource at {path}."
METHOD_NOT_ALLOWED = "{method} is not allowed on {path}; use {allowed}."
BODY_INVALID = "The request body does not match the schema: {summary}"
PARAMETER_INVALID = "The {where} '{name}' is not valid: {message}"

log = logging.getLogger("tiergate.apis")


class Problem(Exception):
    """An error the client sees as problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    content = json.dumps(body, ensure_ascii=False).encode()
    return Response(content, status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def _pointer(loc: Iterable[int | str]) -> str:
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in loc]
    return "".join(f"/{part}" for part in parts)


def body_problem(exc: ValidationError, status: int = 422) -> Problem:
    """A body that breaks the schema: one entry per failing field, with a JSON pointer."""
    errors = [{"pointer": _pointer(e["loc"]), "detail": e["msg"]} for e in exc.errors()]
    summary = "; ".join(f"{e['pointer'] or '/'}: {e['detail']}" for e in errors[:3])
    if len(errors) > 3:
        summary += f" (and {len(errors) - 3} more)"
    return Problem(status, BODY_INVALID.format(summary=summary), errors=errors)


def parameter_problem(exc: ValidationError, where: str = "query") -> Problem:
    """Malformed query/path parameters or headers: 400, naming each one."""
    key = {"query": "parameter", "path": "parameter", "header": "header"}[where]
    errors = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        errors.append({key: name, "detail": error["msg"]})
    first = errors[0]
    label = {"query": "query parameter", "path": "path parameter", "header": "header"}[where]
    detail = PARAMETER_INVALID.format(where=label, name=first[key], message=first["detail"])
    return Problem(400, detail, errors=errors)


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, errors=exc.errors, headers=exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        detail = ROUTE_NOT_FOUND.format(path=request.url.path)
    elif exc.status_code == 405:
        allowed = headers.get("Allow", "")
        detail = METHOD_NOT_ALLOWED.format(
            method=request.method, path=request.url.path, allowed=allowed
        )
    else:
        detail = str(exc.detail)
    return problem_response(exc.status_code, detail, headers=headers)


EXCEPTION_HANDLERS = {Problem: _on_problem, HTTPException: _on_http_exception}


class ProblemGuard:
    """ASGI middleware: an unexpected exception becomes a logged 500 problem, never a traceback.

    Unlike starlette's ServerErrorMiddleware it does not re-raise, so in-process callers
    see a complete 500 response rather than a failed app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await problem_response(500, INTERNAL_ERROR)(scope, receive, send)
