"""Reading requests into pydantic models, with problem+json on failure."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from apis._shared.problems import (
    FORMAT_MISMATCH,
    Problem,
    body_problem,
    parameter_error,
    parameter_problem,
)

M = TypeVar("M", bound=BaseModel)

BODY_MISSING = "This request needs a JSON body."
BODY_MALFORMED = "The request body is not valid JSON: {error}."
BODY_TOO_LARGE = "The request body is larger than {limit} bytes."
PATH_INVALID = "The path parameter '{name}' is not valid: " + FORMAT_MISMATCH + "."
MAX_BODY = 256 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"-?[0-9]+")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


# RFC 8259 JSON: Python's reader also takes NaN and Infinity, which no other tier accepts.
_JSON = json.JSONDecoder(parse_constant=_not_json)


def _plain_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(_plain_text)]
"""A string without control characters or lone surrogates (safe for every database)."""


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral)]
"""An `integer` as JSON Schema 2020-12 means it: any number with a zero fractional part,
so `2.0` and `2e0` are 2 (what the gateway's validator accepts), in strict models too.
`true` and `"2"` stay refused: they are a boolean and a string, not numbers."""


def _query_integer(value: Any) -> Any:
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise PydanticCustomError("int_parsing", "Input should be a valid integer")
        return int(value)
    return value


QueryInt = Annotated[int, BeforeValidator(_query_integer)]
"""An integer query parameter, read as the gateway's validator reads one: optional minus
and ASCII digits only (pydantic alone would also take "2.0", " 2", "+2" and "1_000")."""


async def read_body(request: Request, model: type[M]) -> tuple[M, Any]:
    """The validated body and the raw JSON value (for idempotency fingerprints)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise Problem(413, BODY_TOO_LARGE.format(limit=MAX_BODY))
    if not raw.strip():
        raise Problem(400, BODY_MISSING, errors=[_body_error(BODY_MISSING)])
    try:
        data = _JSON.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        detail = BODY_MALFORMED.format(error=exc)
        raise Problem(400, detail, errors=[_body_error(detail)]) from None
    try:
        return model.model_validate(data), data
    except ValidationError as exc:
        raise body_problem(exc) from None


def _body_error(detail: str) -> dict[str, str]:
    return {"in": "body", "pointer": "", "detail": detail}


def read_query(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise parameter_problem(exc, "query") from None


def path_id(request: Request, name: str, pattern: re.Pattern[str]) -> str:
    """A path identifier; a malformed one is the client's mistake (400), like any
    malformed parameter: the contracts' one rule."""
    value = str(request.path_params[name])
    if not pattern.fullmatch(value):
        raise Problem(
            400,
            PATH_INVALID.format(name=name),
            errors=[parameter_error("path", name, FORMAT_MISMATCH)],
        )
    return value
