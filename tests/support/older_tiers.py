"""A tier one version behind: the real inventory system API behind a narrower front.

`asgi:tests.support.older_tiers:inventory` serves the real inventory app, except that,
like an older deployment, it refuses cursors longer than 8 hex digits and page sizes
above 40, with the system API's own 400 problem. Tests use it to see what the tiers
above answer when the tier below refuses a value their own contract accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from apis.system.inventory import create_app

OLD_CURSOR = re.compile(r"[0-9a-f]{1,8}")
OLD_MAX_LIMIT = 40


class OlderFront:
    def __init__(self, app: Any) -> None:
        self.app = app

    def _refused(self, query: dict[str, str]) -> list[dict[str, str]]:
        errors = []
        if "cursor" in query and not OLD_CURSOR.fullmatch(query["cursor"]):
            errors.append(
                {"in": "query", "name": "cursor", "detail": "does not have the expected format"}
            )
        if "limit" in query and query["limit"].isdigit() and int(query["limit"]) > OLD_MAX_LIMIT:
            errors.append(
                {
                    "in": "query",
                    "name": "limit",
                    "detail": f"Input should be less than or equal to {OLD_MAX_LIMIT}",
                }
            )
        return errors

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/products":
            query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            errors = self._refused(query)
            if errors:
                body = json.dumps(
                    {
                        "type": "about:blank",
                        "title": "Bad Request",
                        "status": 400,
                        "detail": f"The query parameter '{errors[0]['name']}' is not valid: "
                        f"{errors[0]['detail']}",
                        "errors": errors,
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [(b"content-type", b"application/problem+json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


inventory = OlderFront(create_app())
