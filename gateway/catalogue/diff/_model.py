"""What a diff reports, and the contract reader every comparison shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# How NEW relates to OLD for one constraint: accepts more, accepts less, or neither
# provably (a rewritten pattern, a changed format).
Shift = Literal["widened", "narrowed", "changed"]


@dataclass(frozen=True, order=True)
class Change:
    breaking: bool
    where: str
    message: str

    def __str__(self) -> str:
        label = "BREAKING" if self.breaking else "ok      "
        return f"{label}  {self.where}: {self.message}"


def is_breaking(shift: Shift, *, request: bool) -> bool:
    """A request may widen (clients send what they sent); a response may narrow
    (clients handle what they handled). Anything else can fail a client."""
    return shift != ("widened" if request else "narrowed")


class Contract:
    """A contract with `$ref`s resolved on demand (local references only)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any, seen: frozenset[str] = frozenset()) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen or not ref.startswith("#/"):
                return {}
            seen = seen | {ref}
            target: Any = self.document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node = target
        return node

    def mapping(self, node: Any) -> dict[str, Any]:
        """`node` resolved, or {} when it is not an object."""
        node = self.resolve(node)
        return node if isinstance(node, dict) else {}
