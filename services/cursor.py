"""Opaque list cursors: the sort key of the last row, base64url-encoded JSON (the API's lists
and the pages' alike)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar

from services.jsontext import json_depth
from services.problems import HttpProblem

RowT = TypeVar("RowT")


def encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


#: what a cursor value may be: text (the default), or a whole number, or null
Kinds = tuple[type, ...]
TEXT: Kinds = (str,)
MAX_INT = 2**63 - 1
#: the longest cursor this API gives out is well under this
MAX_CURSOR = 2048


def fits(value: Any, kinds: Kinds) -> bool:
    """A value of an expected kind that the database can compare (no NUL, no huge number)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return str in kinds and len(value) <= 500 and "\x00" not in value
    if isinstance(value, int):
        return int in kinds and -MAX_INT <= value <= MAX_INT
    return value is None and type(None) in kinds


def decode(cursor: str | None, size: int, kinds: list[Kinds] | None = None) -> list[Any] | None:
    """The values of a cursor this API returned; each of its kind (text unless told)."""
    if not cursor:
        return None
    values: Any = None
    if len(cursor) <= MAX_CURSOR:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            text = base64.urlsafe_b64decode(padded.encode()).decode()
            if json_depth(text, 1) <= 1:  # a flat list: parsed without deep recursion
                values = json.loads(text)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            values = None
    expected = kinds or [TEXT] * size
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(fits(v, k) for v, k in zip(values, expected, strict=False))
    ):
        raise HttpProblem(
            400,
            "cursor is not one this API returned; start without it",
            code="invalid-cursor",
            field="cursor",
        )
    return values


def page(
    rows: list[RowT], limit: int, key: Callable[[RowT], list[Any]]
) -> tuple[list[RowT], str | None]:
    """A list fetched with limit+1 rows: the page's rows, and the cursor of the next page
    (the sort key, ``key``, of the page's last row; None on the last page)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode(key(rows[-1])) if more and rows else None


def decode_pair(cursor: str | None, first: Kinds = TEXT) -> tuple[Any, Any] | None:
    """A keyset cursor of (sort value, id), or None for the first page."""
    values = decode(cursor, 2, [first, TEXT])
    return (values[0], values[1]) if values else None
