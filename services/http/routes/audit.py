from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from domain.errors import NotFound
from projections.catalog import all_projections
from projections.feed import FeedItem, read_feed, read_history
from projections.users import with_actor_names
from services.app import answers
from services.app.audit_export import export_lines
from services.app.bounds import Id, int_format
from services.app.practices import practice_of
from services.context import Components
from services.http.deps import AdminDep, ComponentsDep
from services.http.openapi import problems
from services.http.ranges import IsoInstant, LimitQ

router = APIRouter(prefix="/v1", tags=["audit"])

#: the largest position a client may send (18 digits, as in the cursor)
MAX_POSITION = 999_999_999_999_999_999


def feed_page(
    ctx: Components, practice_id: Id, items: Sequence[FeedItem], limit: int
) -> answers.EventPage:
    """A page of events, each with `actor_name` (the user's name) beside its `actor`."""
    more = len(items) > limit
    named = ctx.reads(with_actor_names, practice_id, items[:limit])
    return answers.EventPage(
        items=[answers.NamedEvent.model_validate(item) for item in named],
        next_cursor=str(named[-1]["position"]) if more else None,
    )


@router.get(
    "/events",
    response_model=answers.EventPage,
    summary="The practice's ordered event feed after a position",
)
def get_events(
    caller: AdminDep,
    ctx: ComponentsDep,
    after: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_POSITION,
            description="a position; 0 = from the start",
            json_schema_extra=int_format(0, MAX_POSITION),
        ),
    ] = 0,
    limit: LimitQ = 50,
    cursor: Annotated[str | None, Query(max_length=18, pattern=r"^\d{1,18}$")] = None,
) -> answers.EventPage:
    start = int(cursor) if cursor else after
    practice_id = practice_of(caller)
    return feed_page(ctx, practice_id, ctx.reads(read_feed, practice_id, start, limit + 1), limit)


@router.get(
    "/history/{aggregate_id}",
    response_model=answers.EventPage,
    responses=problems(404),
    summary="Every event of one payment, patient, batch or practice, in order",
)
def get_history(
    aggregate_id: Id,
    caller: AdminDep,
    ctx: ComponentsDep,
    limit: LimitQ = 50,
    cursor: Annotated[str | None, Query(max_length=18, pattern=r"^\d{1,18}$")] = None,
) -> answers.EventPage:
    start = int(cursor) if cursor else 0
    items = ctx.reads(read_history, practice_of(caller), aggregate_id, start, limit + 1)
    if not items and start == 0:
        raise NotFound(f"no history for {aggregate_id}")
    return feed_page(ctx, practice_of(caller), items, limit)


@router.get(
    "/audit/checksums",
    response_model=answers.Checksums,
    summary="Each view's checksum over the practice's rows, and the position it is at",
)
def get_checksums(caller: AdminDep, ctx: ComponentsDep) -> answers.Checksums:
    """The same canonical checksum `payledger replay` prints (docs/auditing.md), over the rows
    of the caller's practice; `position` is the last event of the log each view has applied,
    `log_position` the last event recorded."""
    practice_id = practice_of(caller)
    views = ctx.views.checksums(all_projections(), practice_id)
    return answers.Checksums(
        practice_id=str(practice_id),
        log_position=ctx.views.last_position(),
        views={name: answers.ViewChecksum.model_validate(view) for name, view in views.items()},
    )


@router.get(
    "/audit/export",
    summary="Every event of the practice as JSON lines chained by SHA-256, streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def get_export(
    caller: AdminDep,
    ctx: ComponentsDep,
    until: Annotated[
        IsoInstant | None,
        Query(description="only the events that happened by this instant (default: all)"),
    ] = None,
) -> StreamingResponse:
    """One line per event in the public event schema (docs/events.md), each with its
    SHA-256 chained to the line before, then a closing line with the count, the last hash
    and each view's checksum as of the end. Check it with `payledger audit verify FILE`
    (docs/auditing.md)."""
    practice_id = practice_of(caller)
    instant = until if until is None or until.tzinfo else until.replace(tzinfo=UTC)
    name = f"payledger-{practice_id}.jsonl"
    return StreamingResponse(
        export_lines(ctx, practice_id, instant),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
