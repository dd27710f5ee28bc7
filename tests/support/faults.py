"""Fault injection around a real ASGI app: chosen requests get an error answer instead.

Used to make one step of a saga fail while the rest of the system API runs for real.
The rules may be changed while the app serves (from the test's thread).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any


class FaultInjector:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.rules: list[tuple[str, re.Pattern[str], int]] = []
        self.delays: list[tuple[str, re.Pattern[str], float]] = []
        self.hits = 0

    def fail(self, method: str, path_regex: str, status: int) -> None:
        self.rules.append((method, re.compile(path_regex), status))

    def delay(self, method: str, path_regex: str, seconds: float) -> None:
        """Answer these requests normally, but only after `seconds`."""
        self.delays.append((method, re.compile(path_regex), seconds))

    def clear(self) -> None:
        self.rules = []
        self.delays = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for method, pattern, status in list(self.rules):
                if scope["method"] == method and pattern.search(scope["path"]):
                    self.hits += 1
                    body = json.dumps(
                        {
                            "type": "about:blank",
                            "title": "Injected",
                            "status": status,
                            "detail": "injected fault",
                        }
                    ).encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": status,
                            "headers": [(b"content-type", b"application/problem+json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            for method, pattern, seconds in list(self.delays):
                if scope["method"] == method and pattern.search(scope["path"]):
                    await asyncio.sleep(seconds)
        await self.app(scope, receive, send)
