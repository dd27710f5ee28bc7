"""RFC 9457 problem details: the only error shape a client of the gateway sees."""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

PROBLEM_CONTENT_TYPE = b"application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


# The detail of a 500: what failed stays in the log, never in the answer.
INTERNAL_ERROR = "The gateway failed to handle this request."


class ProblemResponse:
    """A small ASGI response carrying a problem+json body.

    Policies end a request by returning one of these (or any ASGI app).
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        headers: Iterable[tuple[str, str]] = (),
        **extensions: object,
    ) -> None:
        document: dict[str, object] = {
            "type": type_,
            "title": title or TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
        }
        document.update(extensions)
        self.status = status
        self.body = json.dumps(document, separators=(",", ":")).encode()
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-type", PROBLEM_CONTENT_TYPE),
            (b"content-length", str(len(self.body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        self.headers.extend((k.lower().encode(), v.encode()) for k, v in headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


# What an endpoint of the gateway's own answers with: a Starlette response or a problem
# (any ASGI app serves as a Starlette endpoint's answer).
Answer = Response | ProblemResponse


def problem(status: int, detail: str, **kwargs: object) -> ProblemResponse:
    return ProblemResponse(status, detail, **kwargs)  # type: ignore[arg-type]
