"""Transactions as the API and the pages list them: a page of transactions in a date range
with its filters, the totals of everything those filters find, and the badge of entries
not yet in the PMS."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from projections.transactions import list_transactions, transaction_totals
from services.app import answers
from services.app.date_ranges import Period, chosen_range, dated_page
from services.context import Components

#: associated: all of it is in the PMS; unassociated: something of it needs posting;
#: not_applicable: declined, or voided before it was posted
Association = Literal["associated", "unassociated", "not_applicable"]
#: a payment status, or `refunded`: settled with refunds
StatusFilter = Literal["approved", "declined", "voided", "settled", "refunded"]


def transactions_page(
    ctx: Components,
    practice_id: UUID,
    *,
    from_: date | None,
    to: date | None,
    association: Association | None,
    patient_id: UUID | None,
    status: StatusFilter | None,
    q: str | None,
    period: Period | None,
    limit: int,
    cursor_: str | None,
) -> answers.TransactionPage:
    """Transactions in a date range (default: the last 30 days), newest first."""
    found = dated_page(
        ctx,
        practice_id,
        chosen_range(ctx, practice_id, from_, to, period),
        cursor_,
        limit,
        query=list_transactions,
        out=answers.transaction_row,
        order=lambda row: [row["occurred_at"], row["id"]],
        association=association,
        patient_id=patient_id,
        status=status,
        q=q,
    )
    return answers.TransactionPage(
        items=found.items, next_cursor=found.next_cursor, from_=found.date_from, to=found.date_to
    )


def transactions_totals(
    ctx: Components,
    practice_id: UUID,
    *,
    from_: date | None,
    to: date | None,
    association: Association | None,
    patient_id: UUID | None,
    status: StatusFilter | None,
    q: str | None,
    period: Period | None,
) -> answers.TransactionTotals:
    """Totals of the transactions a list's filters find, over all its pages."""
    date_from, date_to = chosen_range(ctx, practice_id, from_, to, period)
    totals = ctx.reads(
        transaction_totals,
        practice_id,
        date_from=date_from,
        date_to=date_to,
        association=association,
        patient_id=patient_id,
        status=status,
        q=q,
    )
    return answers.TransactionTotals(
        count=totals["count"],
        collected_amount=totals["collected"],
        refunded_amount=totals["refunded"],
        net_amount=totals["collected"] - totals["refunded"],
        from_=date_from,
        to=date_to,
    )


def unassociated_count(ctx: Components, practice_id: UUID) -> answers.UnassociatedCount:
    """The alert badge: entries (payments, refunds, voids) not yet in the PMS ledger."""
    return answers.unassociated_badge(ctx, practice_id)
