"""The deposits as the API and the pages list them: a page of deposits by deposit date, and
one deposit with its itemised payments and refunds."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from domain.errors import NotFound
from projections.deposits import (
    DepositItemRow,
    DepositRow,
    deposit_items,
    get_deposit,
    latest_scheduled_date,
    list_deposits,
    payout_of,
)
from services.app import answers
from services.app.date_ranges import date_range, dated_page
from services.context import Components


def deposit_out(row: DepositRow) -> answers.DepositRow:
    return answers.DepositRow(**deposit_fields(row))


def deposit_fields(row: DepositRow) -> dict[str, Any]:
    """The fields of a DepositRow answer, shared by the answers that extend it."""
    net = int(row["net_amount"])
    return {
        "id": row["id"],
        "deposit_date": row["deposit_date"],
        "status": row["status"],
        "kind": "withdrawal" if net < 0 else "deposit",
        "gross_amount": int(row["gross_amount"]),
        "refunds_amount": int(row["refunds_amount"]),
        "fees_amount": int(row["fees_amount"]),
        "disputes_amount": int(row.get("disputes_amount") or 0),
        "net_amount": net,
        "account": row["account"],
        "batch_id": row["batch_id"],
        "batch_date": row["batch_date"],
        "sales_count": int(row["sales_count"]),
        "refunds_count": int(row["refunds_count"]),
        "paid_at": row["paid_at"],
        "payout": payout_of(row),
    }


def deposit_item_out(row: DepositItemRow) -> answers.DepositItem:
    return answers.DepositItem(
        line=int(row["line"]),
        kind=row["kind"],
        payment_id=row["payment_id"],
        refund_id=row["refund_id"],
        occurred_at=row["occurred_at"],
        patient_id=row["patient_id"],
        patient_name=row["patient_name"],
        card=answers.card_out(row["card_brand"], row["card_last4"]),
        transaction_id=row["transaction_id"],
        amount=int(row["amount"]),
        fee_amount=int(row["fee_amount"]),
        net_amount=int(row["net_amount"]),
        dispute_id=row.get("dispute_id"),
    )


def deposit_order(row: DepositRow) -> str:
    return f"{row['deposit_date']} {row['batch_date']}"


def deposits_page(
    ctx: Components,
    practice_id: UUID,
    from_: date | None,
    to: date | None,
    limit: int,
    cursor_: str | None,
) -> answers.DepositPage:
    """Deposits by deposit date (default: a month ago to the latest scheduled deposit)."""
    # the latest scheduled deposit only stretches the default end
    latest = ctx.reads(latest_scheduled_date, practice_id) if to is None else None
    # newest deposit date first, and within a date the newest batch first: the cursor's
    # sort value is the pair as one text ("deposit_date batch_date", ISO dates)
    found = dated_page(
        ctx,
        practice_id,
        date_range(ctx, practice_id, from_, to, latest),
        cursor_,
        limit,
        query=list_deposits,
        out=deposit_out,
        order=lambda row: [deposit_order(row), row["id"]],
    )
    return answers.DepositPage(
        items=found.items, next_cursor=found.next_cursor, from_=found.date_from, to=found.date_to
    )


def one_deposit(ctx: Components, practice_id: UUID, deposit_id: UUID) -> answers.Deposit:
    """One deposit with its itemised payments and refunds."""
    row = ctx.reads(get_deposit, practice_id, deposit_id)
    if row is None:
        raise NotFound(f"no deposit {deposit_id}")
    return answers.Deposit(
        **deposit_fields(row),
        items=[deposit_item_out(i) for i in ctx.reads(deposit_items, deposit_id)],
    )
