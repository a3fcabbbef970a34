from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from domain.errors import NotFound
from services.app import answers, deposit_views, report_views, request_views
from services.app.ar_views import ar_row
from services.app.as_of import VIEWS as AS_OF_VIEWS
from services.app.as_of import report_as_of as as_of_report
from services.app.bounds import PAGE, Id, int_format
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep
from services.http.openapi import problems
from services.http.ranges import (
    CursorQ,
    FromQ,
    IsoDate,
    IsoInstant,
    LimitQ,
    ToQ,
    date_range,
)

router = APIRouter(prefix="/v1", tags=["deposits and reports"])

#: the name of an export or a report (an unknown one is a 404 that lists them)
ViewName = Annotated[str, Path(max_length=40)]


@router.get(
    "/deposits",
    response_model=answers.DepositPage,
    summary="Deposits by deposit date (default: a month ago to the latest scheduled deposit)",
)
def get_deposits(
    caller: AdminDep,
    ctx: ComponentsDep,
    from_: FromQ = None,
    to: ToQ = None,
    limit: LimitQ = 50,
    cursor_: CursorQ = None,
) -> answers.DepositPage:
    return deposit_views.deposits_page(ctx, practice_of(caller), from_, to, limit, cursor_)


@router.get(
    "/deposits/{deposit_id}",
    response_model=answers.Deposit,
    responses=problems(404),
    summary="One deposit with its itemised payments and refunds",
)
def get_one_deposit(deposit_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.Deposit:
    return deposit_views.one_deposit(ctx, practice_of(caller), deposit_id)


@router.get(
    "/reports/daily-close",
    response_model=answers.DailyClose,
    summary="Batch, ledger and PMS side by side for one day, with every difference",
)
def daily_close(
    caller: AdminDep,
    ctx: ComponentsDep,
    date_: Annotated[IsoDate | None, Query(alias="date", description="default: yesterday")] = None,
) -> answers.DailyClose:
    return report_views.daily_close(ctx, practice_of(caller), date_)


@router.get(
    "/exports/{view}.csv",
    responses=problems(404),
    summary="CSV export: transactions, deposits (with items) or payment-requests",
    response_class=StreamingResponse,
)
def export(
    view: ViewName, caller: AdminDep, ctx: ComponentsDep, from_: FromQ = None, to: ToQ = None
) -> StreamingResponse:
    made = report_views.csv_export(ctx, practice_of(caller), view, from_, to)
    return StreamingResponse(made.chunks, media_type=made.media_type, headers=made.headers)


@router.get(
    "/reports/{view}",
    response_model=answers.AsOfReport,
    responses=problems(404),
    summary="A view as it stood at a past instant (transactions, deposits, payment-requests, "
    "accounts-receivable)",
)
def report_as_of(
    view: ViewName,
    caller: AdminDep,
    ctx: ComponentsDep,
    as_of: IsoInstant,
    from_: FromQ = None,
    to: ToQ = None,
    limit: Annotated[int, Query(ge=1, le=PAGE, json_schema_extra=int_format(1, PAGE))] = 100,
) -> answers.AsOfReport:
    if view not in AS_OF_VIEWS:
        raise NotFound(f"no report {view!r}; available: daily-close, {', '.join(AS_OF_VIEWS)}")
    practice_id = practice_of(caller)
    instant = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    date_from, date_to = date_range(ctx, practice_id, from_, to)
    answer = as_of_report(ctx, practice_id, view, instant, date_from, date_to, limit)

    def ar_item(row: dict[str, Any]) -> answers.ArRow:
        return ar_row(row, answer["day"])

    shapes: dict[str, Callable[[Any], answers.Answer]] = {
        "transactions": answers.transaction_row,
        "deposits": deposit_views.deposit_out,
        "payment-requests": request_views.row_out,
        "accounts-receivable": ar_item,
    }
    return answers.AsOfReport.model_validate(
        {**answer, "items": [shapes[view](r) for r in answer["items"]]}
    )
