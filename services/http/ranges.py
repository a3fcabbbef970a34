"""Date ranges of the list endpoints: practice-local dates, the last 30 days by default."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import Query
from pydantic import BeforeValidator, WithJsonSchema

from domain.errors import InvalidValue
from domain.practices import Practice
from domain.schedule import local_date
from services import cursor
from services.app.bounds import DATE_LENGTH, INSTANT_LENGTH, int_format
from services.context import Components
from services.http.representations import default_range

RowT = TypeVar("RowT")

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?"
)


def iso_date(value: Any) -> Any:
    """Dates in ISO form only: not a number of seconds (`0` is not 1970-01-01)."""
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


def iso_instant(value: Any) -> Any:
    if not isinstance(value, str) or not ISO_INSTANT.fullmatch(value):
        raise ValueError("must be an ISO 8601 instant such as 2026-03-04T15:00:00Z")
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(iso_date),
    WithJsonSchema({"type": "string", "format": "date", "maxLength": DATE_LENGTH}),
]
IsoInstant = Annotated[
    datetime,
    BeforeValidator(iso_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": INSTANT_LENGTH}),
]
FromQ = Annotated[IsoDate | None, Query(alias="from", description="YYYY-MM-DD, practice-local")]
ToQ = Annotated[IsoDate | None, Query(description="YYYY-MM-DD, practice-local, inclusive")]
#: a list's page size and the cursor its previous page returned
LimitQ = Annotated[int, Query(ge=1, le=100, json_schema_extra=int_format(1, 100))]
CursorQ = Annotated[str | None, Query(alias="cursor", max_length=cursor.MAX_CURSOR)]


def date_range(
    ctx: Components,
    practice_id: UUID,
    from_: date | None,
    to: date | None,
    latest: date | None = None,
) -> tuple[str, str]:
    """The asked range; by default the 30 days up to today, or up to `latest` when that is
    later (the deposits list runs to the latest scheduled deposit)."""
    practice = ctx.get(Practice, practice_id, practice_id)
    default_from, default_to = default_range(ctx, practice)
    if latest is not None and latest > default_to:
        default_to = latest
    date_from, date_to = from_ or default_from, to or default_to
    if date_from > date_to:
        raise InvalidValue(f"from ({date_from}) is after to ({date_to})", field="from")
    return date_from.isoformat(), date_to.isoformat()


PERIODS = ("today", "yesterday", "this_week", "this_month", "last_month")
Period = Literal["today", "yesterday", "this_week", "this_month", "last_month"]
PeriodQ = Annotated[
    Period | None,
    Query(
        description="a date preset in the practice's calendar instead of `from` and `to`: "
        "`this_week` starts on Monday; `this_month` and `this_week` run to today"
    ),
]


def period_dates(today: date, period: str) -> tuple[date, date]:
    """The practice-local dates of a preset, seen from `today`."""
    if period == "today":
        return today, today
    if period == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == "this_week":
        return today - timedelta(days=today.weekday()), today
    if period == "this_month":
        return today.replace(day=1), today
    last_of_previous = today.replace(day=1) - timedelta(days=1)
    return last_of_previous.replace(day=1), last_of_previous


def chosen_range(
    ctx: Components,
    practice_id: UUID,
    from_: date | None,
    to: date | None,
    period: str | None,
) -> tuple[str, str]:
    """The dates asked: a preset, or `from` and `to` (by default the last 30 days). A
    preset sent with dates wins over them (the dashboard's preset buttons keep the form's
    other fields)."""
    if period is None:
        return date_range(ctx, practice_id, from_, to)
    practice = ctx.get(Practice, practice_id, practice_id)
    today = local_date(ctx.clock.now(practice_id), practice.timezone)
    first, last = period_dates(today, period)
    return first.isoformat(), last.isoformat()


def dated_page(
    ctx: Components,
    practice_id: UUID,
    window: tuple[str, str],
    cursor_: str | None,
    limit: int,
    *,
    query: Callable[..., list[RowT]],
    out: Callable[[RowT], dict[str, Any]],
    order: list[str],
    **filters: Any,
) -> dict[str, Any]:
    """One page of a list in a date range (``window``, from ``date_range``): the view's
    rows after the cursor, as answered (``out``), with the next page's cursor (by
    ``order``) and the range read."""
    date_from, date_to = window
    rows = ctx.reads(
        query,
        practice_id,
        date_from=date_from,
        date_to=date_to,
        after=cursor.decode_pair(cursor_),
        limit=limit + 1,
        **filters,
    )
    answer = cursor.page([out(r) for r in rows], limit, order)
    answer["from"], answer["to"] = date_from, date_to
    return answer
