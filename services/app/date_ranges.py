"""The dates a list or report covers (by default the last 30 days, practice-local, or a
preset such as this week), and one page of a list over them: what the API's lists and the
pages share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from domain.errors import InvalidValue
from domain.practices import Practice
from domain.schedule import local_date
from services import cursor
from services.context import Components

RowT = TypeVar("RowT")
AnswerT = TypeVar("AnswerT")

DEFAULT_RANGE_DAYS = 30


def default_range(ctx: Components, practice: Practice) -> tuple[date, date]:
    """The last month: the 30 days up to today, in practice-local dates."""
    today = local_date(ctx.clock.now(practice.id), practice.timezone)
    return today - timedelta(days=DEFAULT_RANGE_DAYS - 1), today


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


@dataclass(frozen=True)
class DatedPage(Generic[AnswerT]):
    """One page of a list in a date range: its answers, the next page's cursor (None on
    the last page) and the range read."""

    items: list[AnswerT]
    next_cursor: str | None
    date_from: str
    date_to: str


def dated_page(
    ctx: Components,
    practice_id: UUID,
    window: tuple[str, str],
    cursor_: str | None,
    limit: int,
    *,
    query: Callable[..., list[RowT]],
    out: Callable[[RowT], AnswerT],
    order: Callable[[RowT], list[Any]],
    **filters: Any,
) -> DatedPage[AnswerT]:
    """One page of a list in a date range (``window``, from ``date_range``): the view's
    rows after the cursor, as answered (``out``), with the next page's cursor (the sort
    key of the page's last row, ``order``) and the range read."""
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
    shown, next_cursor = cursor.page(rows, limit, order)
    return DatedPage([out(r) for r in shown], next_cursor, date_from, date_to)
