"""JSON as RFC 8259 defines it: Python's reader also takes NaN, Infinity and -Infinity,
which no other tier (nor any JSON Schema validator) agrees are numbers."""

from __future__ import annotations

import json
from typing import Any


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def decoder(**options: Any) -> json.JSONDecoder:
    """A strict decoder with more options (e.g. object_pairs_hook), built once by its user."""
    return json.JSONDecoder(parse_constant=_not_json, **options)


# One decoder for every use: json.loads(text, parse_constant=...) would build one per call.
_DECODER = decoder()


def loads(data: str | bytes, using: json.JSONDecoder = _DECODER) -> Any:
    """Parse a JSON text; ValueError for anything RFC 8259 does not allow (bytes: UTF-8)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return using.decode(text)


__all__ = ["decoder", "loads"]
