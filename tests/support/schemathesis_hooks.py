"""Schemathesis hooks for Tiergate contracts (load with SCHEMATHESIS_HOOKS=<this module>).

Generated data reuses small values ("0", "00000000-...") across examples, so a valid
`Idempotency-Key` would often be replayed with a different body: the API rightly
answers 422. Each call gets a fresh key instead; invalid (negative) keys are kept, so
their rejection is still tested.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import MutableMapping
from typing import Any

import schemathesis

_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _refresh(headers: Any, fresh: str) -> None:
    if not isinstance(headers, MutableMapping):
        return
    for name, value in list(headers.items()):
        valid = isinstance(value, str) and _VALID_KEY.fullmatch(value)
        if name.lower() == "idempotency-key" and valid:
            headers[name] = fresh


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    fresh = str(uuid.uuid4())
    _refresh(case.headers, fresh)
    _refresh(kwargs.get("headers"), fresh)
