"""The daily close and the CSV exports as the API and the pages give them: batch, ledger
and PMS side by side for one day, and a view's rows in a date range as a CSV download."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from domain.errors import NotFound
from domain.practices import Practice
from projections.deposits import latest_scheduled_date
from services.app import answers, reports
from services.app.date_ranges import date_range
from services.app.exports import VIEWS, export_csv
from services.context import Components


def daily_close(ctx: Components, practice_id: UUID, day: date | None) -> answers.DailyClose:
    """Batch, ledger and PMS side by side for one day (default: yesterday), with every
    difference."""
    practice = ctx.get(Practice, practice_id, practice_id)
    return answers.DailyClose.model_validate(
        reports.daily_close(ctx, practice_id, day or reports.yesterday(ctx, practice))
    )


@dataclass(frozen=True)
class CsvExport:
    """A CSV export to download: its file name and its text, a piece at a time."""

    filename: str
    chunks: Iterator[str]
    media_type: str = "text/csv; charset=utf-8"

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Disposition": f'attachment; filename="{self.filename}"'}


def csv_export(
    ctx: Components, practice_id: UUID, view: str, from_: date | None, to: date | None
) -> CsvExport:
    """A view (transactions, deposits with items, payment-requests) in a date range as CSV;
    an unknown view is refused with the list of those there are."""
    if view not in VIEWS:
        raise NotFound(f"no export {view!r}; available: {', '.join(sorted(VIEWS))}")
    latest = ctx.reads(latest_scheduled_date, practice_id) if view == "deposits" else None
    date_from, date_to = date_range(ctx, practice_id, from_, to, latest)
    filename = re.sub(r"[^a-z-]", "", view) + f"-{date_from}-to-{date_to}.csv"
    return CsvExport(filename, export_csv(ctx, view, practice_id, date_from, date_to))
