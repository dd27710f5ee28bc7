"""Route templates (`/orders/{order_id}`) from an API's contract, for low-cardinality
metric labels and log fields. Compiled once at start-up."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

UNKNOWN_ROUTE = "other"
_PARAM = re.compile(r"\{[^}/]+\}")


class RouteTemplates:
    def __init__(self, templates: list[str]) -> None:
        # Literal segments beat parameters: /orders/bulk before /orders/{order_id}.
        ordered = sorted(templates, key=lambda t: (t.count("{"), -t.count("/"), t))
        self._exact = {t: t for t in templates if "{" not in t}
        self._patterns = [
            (
                re.compile(
                    "^"
                    + _PARAM.sub("[^/]+", re.escape(t).replace(r"\{", "{").replace(r"\}", "}"))
                    + "/?$"
                ),
                t,
            )
            for t in ordered
            if "{" in t
        ]

    @classmethod
    def from_contract(cls, path: Path) -> RouteTemplates:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            return cls([])
        paths = document.get("paths") if isinstance(document, dict) else None
        return cls(list(paths) if isinstance(paths, dict) else [])

    def match(self, path: str) -> str:
        found = self._exact.get(path) or self._exact.get(path.rstrip("/") or "/")
        if found:
            return found
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        return UNKNOWN_ROUTE
