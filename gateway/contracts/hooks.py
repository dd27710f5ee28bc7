"""Schemathesis hooks for Tiergate contracts (the runner sets SCHEMATHESIS_HOOKS to this).

Generated data reuses small values across cases, so a valid `Idempotency-Key` would
often be replayed with a different body, which the APIs rightly refuse with 422.
Each call gets a fresh valid key instead; invalid (negative) keys are kept, so their
rejection is still tested.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import MutableMapping
from typing import Any

import schemathesis

_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
STATUS_LOG_ENV = "TIERGATE_CONTRACT_STATUS_LOG"


def _refresh(headers: Any, fresh: str) -> None:
    if not isinstance(headers, MutableMapping):  # requests sends a case-insensitive mapping
        return
    for name, value in list(headers.items()):
        if (
            name.lower() == "idempotency-key"
            and isinstance(value, str)
            and _VALID_KEY.fullmatch(value)
        ):
            headers[name] = fresh


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    fresh = str(uuid.uuid4())
    _refresh(case.headers, fresh)
    _refresh(kwargs.get("headers"), fresh)


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Record each status code and its operation (`<status> <METHOD /path>` per line)
    where the runner asked for it: the runner checks every operation got a 2xx."""
    path = os.environ.get(STATUS_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{response.status_code} {case.operation.label}\n")
