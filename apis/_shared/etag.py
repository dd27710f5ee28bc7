"""Strong ETags of JSON representations and If-None-Match → 304."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*` or any listed tag equal under weak comparison."""
    value = if_none_match.strip()
    if value == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in value.split(","))


def json_with_etag(request: Request, payload: Any, status: int = 200) -> Response:
    body = json_bytes(payload)
    tag = etag_of(body)
    headers = {"ETag": tag}
    condition = request.headers.get("if-none-match")
    if condition is not None and matches(condition, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, status, headers=headers, media_type="application/json")
