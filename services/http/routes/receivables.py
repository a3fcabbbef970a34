from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from projections.receivables import SORTABLE
from services.app import answers
from services.app import ar_views as views
from services.app.bounds import Id
from services.app.inputs import BalanceIn, BulkIn, FilterIn, SnoozeIn
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.http.ranges import CursorQ, LimitQ

router = APIRouter(prefix="/v1", tags=["accounts receivable"])


@router.put(
    "/patients/{patient_id}/balance",
    response_model=answers.PatientBalance,
    responses=problems(404),
    summary="Record a PMS balance snapshot",
)
def put_balance(
    patient_id: Id, body: BalanceIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PatientBalance:
    return views.put_balance(ctx, caller, patient_id, body)


@router.post(
    "/pms/sync",
    status_code=202,
    response_model=answers.PmsSync,
    responses=problems(409),
    summary="Start pulling patients and balances from the practice's PMS",
    description="The sync runs in the background: the answer comes at once, with its "
    "status and progress (read them again at GET /v1/pms/sync, the Location). A sync "
    "already running is not started twice: its status is the answer (`started` false). "
    "A PMS that cannot be read ends the sync `failed`, with the error in its status.",
)
def pms_sync(
    response: Response, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PmsSync:
    response.headers["Location"] = "/v1/pms/sync"
    return views.start_sync(ctx, caller)


@router.get(
    "/pms/sync",
    response_model=answers.SyncStatus,
    summary="The PMS sync's status and progress",
)
def pms_sync_status(caller: AdminDep, ctx: ComponentsDep) -> answers.SyncStatus:
    return views.sync_status(ctx, practice_of(caller))


@router.get(
    "/ar/patients",
    response_model=answers.ArPage,
    responses=problems(404),
    summary="The AR list: every column filterable and sortable",
)
def ar_patients(
    request: Request,
    caller: AdminDep,
    ctx: ComponentsDep,
    sort: Annotated[
        str,
        Query(
            description="a column, '-' first for descending",
            json_schema_extra={"enum": [f"{d}{c}" for c in SORTABLE for d in ("", "-")]},
        ),
    ] = "-total",
    limit: LimitQ = 50,
    cursor_: CursorQ = None,
    filter_id: Id | None = None,
) -> answers.ArPage:
    return views.ar_page(
        ctx,
        practice_of(caller),
        request.query_params.multi_items(),
        sort=sort,
        limit=limit,
        cursor_=cursor_,
        filter_id=filter_id,
    )


@router.post(
    "/ar/filters",
    response_model=answers.SavedFilter,
    status_code=201,
    summary="Save a filter in the library",
)
def save_filter(
    body: FilterIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.SavedFilter:
    return views.save_filter(ctx, caller, body)


@router.get(
    "/ar/filters", response_model=answers.FilterPage, summary="The practice's saved filters"
)
def get_filters(caller: AdminDep, ctx: ComponentsDep) -> answers.FilterPage:
    return views.saved_filters(ctx, practice_of(caller))


@router.delete(
    "/ar/filters/{filter_id}",
    responses=problems(404),
    status_code=204,
    summary="Delete a saved filter",
)
def delete_filter(filter_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> Response:
    views.delete_filter(ctx, caller, filter_id)
    return Response(status_code=204)


@router.post(
    "/patients/{patient_id}/snooze",
    response_model=answers.PatientSnooze,
    responses=problems(404, 409),
    summary="Snooze a patient until a date",
)
def snooze(
    patient_id: Id, body: SnoozeIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PatientSnooze:
    return views.snooze(ctx, caller, patient_id, body)


@router.delete(
    "/patients/{patient_id}/snooze",
    response_model=answers.PatientSnooze,
    responses=problems(404, 409),
    summary="End a snooze early",
)
def unsnooze(
    patient_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PatientSnooze:
    return views.unsnooze(ctx, caller, patient_id)


@router.post(
    "/payment-requests/bulk",
    response_model=answers.BulkSent,
    responses=problems(404),
    summary="One request to each selected (or matching) eligible patient",
)
def bulk(body: BulkIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> answers.BulkSent:
    return views.bulk(ctx, caller, body, key)
