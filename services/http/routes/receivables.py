from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Query, Request, Response

from domain.errors import InvalidValue
from domain.practices import Practice
from domain.receivables import MONEY_COLUMNS, AmountRule, Balance, Eligibility, SnoozeReason
from projections.receivables import (
    NULLABLE,
    SORTABLE,
    ArFilterRow,
    list_ar,
    list_filters,
    sort_value,
)
from services import cursor
from services.app import answers
from services.app import receivables as uc
from services.app.ar_filters import parse_filter
from services.app.bounds import Id
from services.app.inputs import BalanceIn, BulkIn, FilterIn, SnoozeIn
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.http.ranges import CursorQ, LimitQ

router = APIRouter(prefix="/v1", tags=["accounts receivable"])

PAGING = {"limit", "cursor", "sort"}


def ar_row(row: Mapping[str, Any], today: str) -> answers.ArRow:
    snoozed = bool(row["snooze_until"] and row["snooze_until"] > today)
    return answers.ArRow(
        id=row["id"],
        pms_patient_id=row["pms_patient_id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        total=int(row["total"]),
        bal_0_30=int(row["bal_0_30"]),
        bal_31_60=int(row["bal_31_60"]),
        bal_61_90=int(row["bal_61_90"]),
        bal_over_90=int(row["bal_over_90"]),
        insurance_estimate=int(row["insurance_estimate"]),
        patient_portion=int(row["patient_portion"]),
        on_payment_plan=bool(row["on_payment_plan"]),
        is_guarantor=bool(row["is_guarantor"]),
        last_payment_date=row["last_payment_date"],
        last_request=answers.LastRequest(
            id=row["last_request_id"],
            date=row["last_request_date"],
            amount=row["last_request_amount"],
            status=row["last_request_status"],
        )
        if row["last_request_id"]
        else None,
        snoozed=snoozed,
        snooze=answers.Snooze(
            until=row["snooze_until"], reason=row["snooze_reason"], note=row["snooze_note"]
        )
        if snoozed
        else None,
        email=row["email"],
        phone=row["phone"],
        has_email=bool(row["has_email"]),
        has_phone=bool(row["has_phone"]),
        balance_as_of=row["balance_as_of"],
        balance_at_snapshot=snapshot_total(row),
        collected_since=int(row["collected_since"]),
        balance=int(row["total"]),
    )


def snapshot_total(row: Mapping[str, Any]) -> int | None:
    """The PMS's total as of `balance_as_of` (the money columns are live)."""
    return int(json.loads(row["snapshot"])["total"]) if row["snapshot"] else None


@router.put(
    "/patients/{patient_id}/balance",
    response_model=answers.PatientBalance,
    responses=problems(404),
    summary="Record a PMS balance snapshot",
)
def put_balance(
    patient_id: Id, body: BalanceIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PatientBalance:
    balance = Balance.from_snapshot(**body.model_dump())
    patient = uc.record_balance(
        ctx,
        practice_id=practice_of(caller),
        patient_id=patient_id,
        balance=balance,
        source="api",
        actor=caller.actor,
    )
    return answers.PatientBalance(
        **answers.patient_fields(patient), balance=answers.BalanceOut(**balance.as_event_data())
    )


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
    practice_id = practice_of(caller)
    started = uc.sync_in_background(ctx, practice_id=practice_id, actor=caller.actor)
    response.headers["Location"] = "/v1/pms/sync"
    return answers.PmsSync(
        started=started,
        pms_sync=answers.SyncStatus.model_validate(
            uc.sync_status(ctx, ctx.get(Practice, practice_id, practice_id))
        ),
    )


@router.get(
    "/pms/sync",
    response_model=answers.SyncStatus,
    summary="The PMS sync's status and progress",
)
def pms_sync_status(caller: AdminDep, ctx: ComponentsDep) -> answers.SyncStatus:
    practice_id = practice_of(caller)
    return answers.SyncStatus.model_validate(
        uc.sync_status(ctx, ctx.get(Practice, practice_id, practice_id))
    )


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
    practice_id = practice_of(caller)
    if sort.lstrip("-") not in SORTABLE:
        raise InvalidValue(
            f"sort by one of {', '.join(SORTABLE)} ('-' first for descending)", field="sort"
        )
    raw: dict[str, Any] = {}
    if filter_id is not None:
        raw.update(uc.saved_filter_values(ctx, practice_id, filter_id))
    for name in request.query_params:
        if name in PAGING or name == "filter_id":
            continue
        values = request.query_params.getlist(name)
        raw[name] = ",".join(values) if name == "last_request_status" else values[-1]
    query, applied = parse_filter(raw)  # the filters' model (services/app/ar_filters.py)
    practice = ctx.get(Practice, practice_id, practice_id)
    today = uc.today(ctx, practice).isoformat()
    column = sort.lstrip("-")
    first: cursor.Kinds = (
        (int,) if column in MONEY_COLUMNS else (str, type(None)) if column in NULLABLE else (str,)
    )
    after = cursor.decode_pair(cursor_, first)
    rows = ctx.reads(
        list_ar,
        practice_id,
        query,
        today=today,
        sort=sort,
        after=after,
        limit=limit + 1,
    )
    items = [ar_row(r, today) for r in rows]
    more = len(items) > limit
    items = items[:limit]
    next_cursor = (
        cursor.encode([sort_value(rows[limit - 1], column), rows[limit - 1]["id"]])
        if more
        else None
    )
    return answers.ArPage(
        items=items,
        next_cursor=next_cursor,
        filters=applied,
        sort=sort,
        pms_sync=answers.SyncStatus.model_validate(uc.sync_status(ctx, practice)),
    )


def filter_out(row: ArFilterRow) -> answers.SavedFilter:
    return answers.SavedFilter(
        id=row["id"], name=row["name"], filter=json.loads(row["filter"]), saved_at=row["saved_at"]
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
    saved = uc.save_filter(
        ctx, practice_id=practice_of(caller), name=body.name, raw=body.filter, actor=caller.actor
    )
    return answers.SavedFilter(
        id=str(saved.id),
        name=saved.name,
        filter=saved.filter,
        saved_at=saved.saved_at.isoformat(),
    )


@router.get(
    "/ar/filters", response_model=answers.FilterPage, summary="The practice's saved filters"
)
def get_filters(caller: AdminDep, ctx: ComponentsDep) -> answers.FilterPage:
    return answers.FilterPage(
        items=[filter_out(r) for r in ctx.reads(list_filters, practice_of(caller))],
        next_cursor=None,
    )


@router.delete(
    "/ar/filters/{filter_id}",
    responses=problems(404),
    status_code=204,
    summary="Delete a saved filter",
)
def delete_filter(filter_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> Response:
    uc.delete_filter(ctx, practice_id=practice_of(caller), filter_id=filter_id, actor=caller.actor)
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
    patient = uc.snooze(
        ctx,
        practice_id=practice_of(caller),
        patient_id=patient_id,
        until=body.until,
        reason=SnoozeReason(body.reason),
        note=body.note,
        actor=caller.actor,
    )
    assert patient.snooze is not None
    return answers.PatientSnooze(
        **answers.patient_fields(patient),
        snooze=answers.Snooze(
            until=patient.snooze.until.isoformat(),
            reason=patient.snooze.reason.value,
            note=patient.snooze.note,
        ),
    )


@router.delete(
    "/patients/{patient_id}/snooze",
    response_model=answers.PatientSnooze,
    responses=problems(404, 409),
    summary="End a snooze early",
)
def unsnooze(
    patient_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PatientSnooze:
    patient = uc.end_snooze(
        ctx, practice_id=practice_of(caller), patient_id=patient_id, actor=caller.actor
    )
    return answers.PatientSnooze(**answers.patient_fields(patient), snooze=None)


@router.post(
    "/payment-requests/bulk",
    response_model=answers.BulkSent,
    responses=problems(404),
    summary="One request to each selected (or matching) eligible patient",
)
def bulk(body: BulkIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> answers.BulkSent:
    chosen = [n for n in ("patient_ids", "filter", "filter_id") if getattr(body, n) is not None]
    if len(chosen) != 1:
        raise InvalidValue(
            "choose the patients one way only: a list of patients, a filter or a saved filter",
            field="patient_ids",
        )
    practice_id = practice_of(caller)
    raw_filter = body.filter
    if body.filter_id is not None:
        raw_filter = uc.saved_filter_values(ctx, practice_id, body.filter_id)
    outcomes = uc.bulk_send(
        ctx,
        practice_id=practice_id,
        patient_ids=body.patient_ids,
        raw_filter=raw_filter,
        channel=body.channel,
        rule=AmountRule(body.amount_rule),
        rules=Eligibility(
            min_balance=body.min_balance,
            guarantors_only=body.guarantors_only,
            skip_payment_plan=body.skip_payment_plan,
            skip_snoozed=body.skip_snoozed,
        ),
        actor=caller.actor,
        key=key,
    )
    return answers.BulkSent(
        results=[
            answers.BulkResult(
                patient_id=o.patient_id,
                outcome=cast(Literal["sent", "skipped"], o.outcome),
                reason=o.reason,
                request_id=o.request_id,
                amount=o.amount,
                channel=o.channel,
            )
            for o in outcomes
        ],
        sent=sum(1 for o in outcomes if o.outcome == "sent"),
        skipped=sum(1 for o in outcomes if o.outcome == "skipped"),
    )
