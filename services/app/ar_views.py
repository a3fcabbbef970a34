"""Accounts receivable as the API and the pages show and change them: the AR list with a
filter on every column, the PMS sync's status, the filter library, snoozes and bulk
payment requests, each returning its answer's model (services/app/answers.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast
from uuid import UUID

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
from services.app.inputs import BalanceIn, BulkIn, FilterIn, SnoozeIn
from services.app.practices import Caller, practice_of
from services.context import Components

#: the query's paging parameters (not filters)
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


def put_balance(
    ctx: Components, caller: Caller, patient_id: UUID, body: BalanceIn
) -> answers.PatientBalance:
    """Record a balance snapshot the PMS gave for a patient."""
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


def sync_status(ctx: Components, practice_id: UUID) -> answers.SyncStatus:
    """The PMS sync's status and progress."""
    return answers.SyncStatus.model_validate(
        uc.sync_status(ctx, ctx.get(Practice, practice_id, practice_id))
    )


def start_sync(ctx: Components, caller: Caller) -> answers.PmsSync:
    """Start pulling patients and balances from the PMS in the background; a sync already
    running is not started twice (`started` false)."""
    practice_id = practice_of(caller)
    started = uc.sync_in_background(ctx, practice_id=practice_id, actor=caller.actor)
    return answers.PmsSync(started=started, pms_sync=sync_status(ctx, practice_id))


def ar_page(
    ctx: Components,
    practice_id: UUID,
    params: Iterable[tuple[str, str]],
    *,
    sort: str = "-total",
    limit: int = 50,
    cursor_: str | None = None,
    filter_id: UUID | None = None,
) -> answers.ArPage:
    """A page of the AR list. `params` is the query string's pairs: every one but the
    paging ones and `filter_id` is a filter (services/app/ar_filters.py)."""
    if sort.lstrip("-") not in SORTABLE:
        raise InvalidValue(
            f"sort by one of {', '.join(SORTABLE)} ('-' first for descending)", field="sort"
        )
    raw: dict[str, Any] = {}
    if filter_id is not None:
        raw.update(uc.saved_filter_values(ctx, practice_id, filter_id))
    given: dict[str, list[str]] = {}
    for name, value in params:
        given.setdefault(name, []).append(value)
    for name, values in given.items():
        if name in PAGING or name == "filter_id":
            continue
        raw[name] = ",".join(values) if name == "last_request_status" else values[-1]
    query, applied = parse_filter(raw)
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


def save_filter(ctx: Components, caller: Caller, body: FilterIn) -> answers.SavedFilter:
    """Save a filter in the practice's library."""
    saved = uc.save_filter(
        ctx, practice_id=practice_of(caller), name=body.name, raw=body.filter, actor=caller.actor
    )
    return answers.SavedFilter(
        id=str(saved.id),
        name=saved.name,
        filter=saved.filter,
        saved_at=saved.saved_at.isoformat(),
    )


def saved_filters(ctx: Components, practice_id: UUID) -> answers.FilterPage:
    """The practice's saved filters."""
    return answers.FilterPage(
        items=[filter_out(r) for r in ctx.reads(list_filters, practice_id)],
        next_cursor=None,
    )


def delete_filter(ctx: Components, caller: Caller, filter_id: UUID) -> None:
    uc.delete_filter(ctx, practice_id=practice_of(caller), filter_id=filter_id, actor=caller.actor)


def snooze(
    ctx: Components, caller: Caller, patient_id: UUID, body: SnoozeIn
) -> answers.PatientSnooze:
    """Snooze a patient until a date."""
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


def unsnooze(ctx: Components, caller: Caller, patient_id: UUID) -> answers.PatientSnooze:
    """End a snooze early."""
    patient = uc.end_snooze(
        ctx, practice_id=practice_of(caller), patient_id=patient_id, actor=caller.actor
    )
    return answers.PatientSnooze(**answers.patient_fields(patient), snooze=None)


def bulk(ctx: Components, caller: Caller, body: BulkIn, key: str | None) -> answers.BulkSent:
    """One request to each selected (or matching) eligible patient."""
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
