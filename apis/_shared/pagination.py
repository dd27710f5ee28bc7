"""Cursor pagination: `limit` 1..100 and an opaque cursor naming the last row seen.

The cursor encodes a table's integer sequence column, so every cursor that matches the
documented pattern is a valid position (a position past the end gives an empty page).
Every tier accepts the same cursor (`CURSOR_PATTERN`, the contracts' `Cursor` schema): a
process or experience API passes its client's cursor down unchanged, so a pattern wider
above than below would turn a valid cursor into a refusal from the tier below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select

from apis._shared.validation import QueryInt
from apis._shared.values import CURSOR_PATTERN

_LAST_POSITION = 2**31 - 1  # sequence columns are 32-bit integers
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageQuery(BaseModel):
    """The paging part of a list query; list endpoints subclass it with their filters."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: QueryInt = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="Opaque position.")

    @property
    def after(self) -> int:
        return min(int(self.cursor, 16), _LAST_POSITION) if self.cursor else 0


def encode_cursor(seq: int) -> str:
    return format(seq, "x")


def page_of(query: Select, seq: ColumnElement[int], page: PageQuery) -> Select:
    """Restrict `query` to one page (one extra row tells whether another page follows)."""
    return query.where(seq > page.after).order_by(seq).limit(page.limit + 1)


def page_body(
    rows: Sequence[Any],
    page: PageQuery,
    to_item: Callable[[Any], dict],
    seq_of: Callable[[Any], int],
) -> dict[str, Any]:
    visible = rows[: page.limit]
    more = len(rows) > page.limit
    return {
        "items": [to_item(row) for row in visible],
        "next_cursor": encode_cursor(seq_of(visible[-1])) if more and visible else None,
    }
