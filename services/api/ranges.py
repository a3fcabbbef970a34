"""Date ranges of the list endpoints: practice-local dates, the last 30 days by default."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import Query

from domain.errors import InvalidValue
from domain.practices import Practice
from services.context import Ledger
from services.views import default_range

FromQ = Annotated[date | None, Query(alias="from", description="YYYY-MM-DD, practice-local")]
ToQ = Annotated[date | None, Query(description="YYYY-MM-DD, practice-local, inclusive")]


def date_range(
    ledger: Ledger,
    practice_id: UUID,
    from_: date | None,
    to: date | None,
    latest: date | None = None,
) -> tuple[str, str]:
    """The asked range; by default the 30 days up to today, or up to `latest` when that is
    later (the deposits list runs to the latest scheduled deposit)."""
    practice = ledger.get(Practice, practice_id, practice_id)
    default_from, default_to = default_range(ledger, practice)
    if latest is not None and latest > default_to:
        default_to = latest
    date_from, date_to = from_ or default_from, to or default_to
    if date_from > date_to:
        raise InvalidValue(f"from ({date_from}) is after to ({date_to})", field="from")
    return date_from.isoformat(), date_to.isoformat()
