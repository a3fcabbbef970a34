from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from projections.transactions import UnassociatedSummary, list_transactions
from services.http import answers
from services.http.bounds import Id
from services.http.deps import AdminDep, ComponentsDep, practice_of
from services.http.ranges import CursorQ, FromQ, LimitQ, ToQ, date_range, dated_page
from services.http.representations import transaction_row, unassociated_badge

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])


@router.get(
    "",
    response_model=answers.TransactionPage,
    summary="Transactions in a date range (default: the last 30 days), newest first",
)
def get_transactions(
    caller: AdminDep,
    ctx: ComponentsDep,
    from_: FromQ = None,
    to: ToQ = None,
    association: Annotated[
        Literal["associated", "unassociated", "not_applicable"] | None,
        Query(
            description="associated: all of it is in the PMS; unassociated: something of it "
            "(the payment, a refund, the void of a posted payment) needs posting; "
            "not_applicable: declined, or voided before it was posted"
        ),
    ] = None,
    patient_id: Id | None = None,
    status: Annotated[
        Literal["approved", "declined", "voided", "settled", "refunded"] | None,
        Query(description="a payment status, or `refunded`: settled with refunds"),
    ] = None,
    limit: LimitQ = 50,
    cursor_: CursorQ = None,
) -> dict[str, Any]:
    practice_id = practice_of(caller)
    return dated_page(
        ctx,
        practice_id,
        date_range(ctx, practice_id, from_, to),
        cursor_,
        limit,
        query=list_transactions,
        out=transaction_row,
        order=["occurred_at", "id"],
        association=association,
        patient_id=patient_id,
        status=status,
    )


@router.get(
    "/unassociated-count",
    response_model=answers.UnassociatedCount,
    summary="The alert badge: entries (payments, refunds, voids) not yet in the PMS ledger",
    description="Over all time. `count` is the number of entries that need posting: the "
    "`unposted` entries of the rows that `GET /v1/transactions?association=unassociated` lists "
    "from `oldest_date`, and for a practice that posts by hand the Post to Ledger queue's "
    "items; `transactions` is the number of those rows.",
)
def get_unassociated_count(caller: AdminDep, ctx: ComponentsDep) -> UnassociatedSummary:
    return unassociated_badge(ctx, practice_of(caller))
