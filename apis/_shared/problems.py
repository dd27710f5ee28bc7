"""RFC 9457 problem+json errors for the tier APIs (starlette exception handlers).

Raise `Problem(status, detail)` anywhere in a handler; `EXCEPTION_HANDLERS` turns it,
starlette's own HTTP errors (404 route, 405 method) and any unexpected exception into
`application/problem+json` with a human sentence. Tracebacks never reach the client.

The shape is the one every Tiergate contract documents (and the gateway's
request-validation answers): titles are RFC 9110's reason phrases, and a validation
problem lists `errors`, one member per mistake: `{"in": "body", "pointer": "/lines/0/qty",
"detail": ...}` for the body (an RFC 6901 pointer into it, "" for the whole body) and
`{"in": "query" | "path" | "header", "name": ..., "detail": ...}` for the rest (header
names in lower case). The rule: malformed query, path or header values and malformed
JSON are 400; a well-formed JSON body that breaks the schema is 422. Details name the
client's mistake, never a validation regex or a service behind the API.
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
FORMAT_MISMATCH = "does not have the expected format"
LABELS = {"query": "query parameter", "path": "path parameter", "header": "header"}
# RFC 9110 §15 reason phrases (Python 3.11's http.HTTPStatus still has the RFC 7231 ones).
TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}

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


def problem_body(status: int, detail: str) -> dict[str, Any]:
    """A problem document as data (sent as problem+json; stored by sagas, answered again
    on replay)."""
    return {"type": "about:blank", "title": title_of(status), "status": status, "detail": detail}


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = problem_body(status, detail)
    if errors:
        body["errors"] = errors
    content = json.dumps(body, ensure_ascii=False).encode()
    return Response(content, status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def title_of(status: int) -> str:
    return TITLES.get(status) or HTTPStatus(status).phrase


def _pointer(loc: Iterable[int | str]) -> str:
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in loc]
    return "".join(f"/{part}" for part in parts)


def _message(error: Mapping[str, Any]) -> str:
    """pydantic's sentence, without the regex a pattern error would quote."""
    if error["type"] == "string_pattern_mismatch":
        return FORMAT_MISMATCH
    return str(error["msg"])


def body_problem(exc: ValidationError, status: int = 422) -> Problem:
    """A body that breaks the schema: one entry per failing field, with a JSON pointer."""
    errors = [
        {"in": "body", "pointer": _pointer(e["loc"]), "detail": _message(e)} for e in exc.errors()
    ]
    summary = "; ".join(f"{e['pointer'] or '/'}: {e['detail']}" for e in errors[:3])
    if len(errors) > 3:
        summary += f" (and {len(errors) - 3} more)"
    return Problem(status, BODY_INVALID.format(summary=summary), errors=errors)


def parameter_error(where: str, name: str, detail: str) -> dict[str, str]:
    """One `errors` member for a query/path parameter or a header."""
    return {"in": where, "name": name.lower() if where == "header" else name, "detail": detail}


def parameter_problem(exc: ValidationError, where: str | Mapping[str, str] = "query") -> Problem:
    """Malformed query/path parameters or headers: 400, naming each one.

    `where` is one location for all, or a map from parameter name to its location
    (anything not in it is a query parameter).
    """
    errors = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        located = where if isinstance(where, str) else where.get(name, "query")
        errors.append(parameter_error(located, name, _message(error)))
    first = errors[0]
    detail = PARAMETER_INVALID.format(
        where=LABELS[first["in"]], name=first["name"], message=first["detail"]
    )
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
