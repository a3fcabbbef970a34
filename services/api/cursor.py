"""Opaque list cursors: the sort key of the last row, base64url-encoded JSON."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.api.errors import HttpProblem


def encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode(cursor: str | None, size: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise HttpProblem(
            400,
            "cursor is not one this API returned; start without it",
            code="invalid-cursor",
            field="cursor",
        )
    return values


def page(items: list[dict[str, Any]], limit: int, key: list[str]) -> dict[str, Any]:
    """Answer a list fetched with limit+1 rows: items and the cursor of the next page."""
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode([items[-1][k] for k in key]) if more and items else None
    return {"items": items, "next_cursor": next_cursor}


def decode_pair(cursor: str | None) -> tuple[Any, Any] | None:
    """A keyset cursor of (sort value, id), or None for the first page."""
    values = decode(cursor, 2)
    return (values[0], values[1]) if values else None
