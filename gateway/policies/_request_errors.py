"""Request-validation problems in the one shape every Tiergate contract documents.

The validator sees one instance `{"path": …, "query": …, "headers": …, "body": …}`
(gateway/policies/_contract.py); a client needs to know which of its inputs is wrong.
Each violation becomes one `errors` member:

- `{"in": "body", "pointer": "/lines/0/qty", "detail": …}`: an RFC 6901 pointer into
  the JSON body ("" for the whole body);
- `{"in": "query" | "path" | "header", "name": "limit", "detail": …}` (header names in
  lower case).

The status follows the contracts' rule: malformed query, path or header values and
malformed JSON are 400; a well-formed JSON body that breaks the schema is 422. Details
say what is wrong without quoting the contract's regexes, and echo at most a short
prefix of what the client sent. The tier APIs (apis/_shared/problems.py) answer the same.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

PARAMETER_INVALID = "The {where} '{name}' is not valid: {message}"
BODY_INVALID = "The request body does not match the schema: {summary}"
FORMAT_MISMATCH = "does not have the expected format"
MAX_DETAIL = 200
LOCATIONS = {"path": "path", "query": "query", "headers": "header"}
LABELS = {"query": "query parameter", "path": "path parameter", "header": "header"}


def _escape(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _message(error: Any) -> str:
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Pattern):
        return FORMAT_MISMATCH
    message = str(error.message)
    return message if len(message) <= MAX_DETAIL else message[: MAX_DETAIL - 1] + "…"


def request_errors(validator: Any, instance: dict[str, Any]) -> list[dict[str, str]]:
    """Every violation of the request instance, as `errors` members."""
    out = []
    for error in validator.iter_errors(instance):
        parts = list(error.instance_path)
        if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required):
            parts.append(error.kind.property)
        if not parts:
            continue  # the instance itself is built by the gateway, never wrong as a whole
        group, rest = str(parts[0]), parts[1:]
        if group == "body":
            pointer = "".join("/" + _escape(p) for p in rest)
            out.append({"in": "body", "pointer": pointer, "detail": _message(error)})
        elif group in LOCATIONS and rest:
            out.append({"in": LOCATIONS[group], "name": str(rest[0]), "detail": _message(error)})
    return out


def body_error(detail: str) -> dict[str, str]:
    """A member about the body as a whole (missing, or not JSON)."""
    return {"in": "body", "pointer": "", "detail": detail}


def status_of(errors: list[dict[str, str]]) -> int:
    """Schema violations: 422 when only the (well-formed JSON) body breaks it, else 400.
    A missing or malformed body is 400 too, but its caller says so: it is no violation."""
    return 422 if all(e["in"] == "body" for e in errors) else 400


def detail_of(errors: list[dict[str, str]]) -> str:
    """A sentence naming the client's first mistake (and how many more there are)."""
    first = errors[0]
    if first["in"] == "body":
        summary = "; ".join(f"{e['pointer'] or '/'}: {e['detail']}" for e in errors[:3])
        if len(errors) > 3:
            summary += f" (and {len(errors) - 3} more)"
        return BODY_INVALID.format(summary=summary)
    detail = PARAMETER_INVALID.format(
        where=LABELS[first["in"]], name=first["name"], message=first["detail"]
    )
    return detail if len(errors) == 1 else f"{detail} (and {len(errors) - 1} more)"
