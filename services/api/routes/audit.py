from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from domain.errors import NotFound
from projections.feed import read_feed, read_history
from projections.users import with_actor_names
from services.api import answers
from services.api.deps import AdminDep, LedgerDep, practice_of
from services.api.openapi import problems
from services.context import Ledger

router = APIRouter(prefix="/v1", tags=["audit"])

#: the largest position a client may send (18 digits, as in the cursor)
MAX_POSITION = 999_999_999_999_999_999


def feed_page(
    ledger: Ledger, practice_id: UUID, items: list[dict[str, Any]], limit: int
) -> dict[str, Any]:
    """A page of events, each with `actor_name` (the user's name) beside its `actor`."""
    more = len(items) > limit
    items = with_actor_names(ledger.db, practice_id, items[:limit])
    return {"items": items, "next_cursor": str(items[-1]["position"]) if more else None}


@router.get(
    "/events",
    response_model=answers.EventPage,
    summary="The practice's ordered event feed after a position",
)
def get_events(
    caller: AdminDep,
    ledger: LedgerDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="a position; 0 = from the start")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
) -> dict[str, Any]:
    start = int(cursor) if cursor else after
    practice_id = practice_of(caller)
    return feed_page(
        ledger, practice_id, read_feed(ledger.db, practice_id, start, limit + 1), limit
    )


@router.get(
    "/history/{aggregate_id}",
    response_model=answers.EventPage,
    responses=problems(404),
    summary="Every event of one payment, patient, batch or practice, in order",
)
def get_history(
    aggregate_id: UUID,
    caller: AdminDep,
    ledger: LedgerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
) -> dict[str, Any]:
    start = int(cursor) if cursor else 0
    items = read_history(ledger.db, practice_of(caller), aggregate_id, start, limit + 1)
    if not items and start == 0:
        raise NotFound(f"no history for {aggregate_id}")
    return feed_page(ledger, practice_of(caller), items, limit)
