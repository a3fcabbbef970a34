from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from projections.transactions import list_transactions, transaction_totals
from services.app import answers
from services.app.bounds import SEARCH_LENGTH, Id
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep
from services.http.ranges import (
    CursorQ,
    FromQ,
    LimitQ,
    PeriodQ,
    ToQ,
    chosen_range,
    dated_page,
)

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])

AssociationQ = Annotated[
    Literal["associated", "unassociated", "not_applicable"] | None,
    Query(
        description="associated: all of it is in the PMS; unassociated: something of it "
        "(the payment, a refund, the void of a posted payment) needs posting; "
        "not_applicable: declined, or voided before it was posted"
    ),
]
StatusQ = Annotated[
    Literal["approved", "declined", "voided", "settled", "refunded"] | None,
    Query(description="a payment status, or `refunded`: settled with refunds"),
]
SearchQ = Annotated[
    str | None,
    Query(
        max_length=SEARCH_LENGTH,
        description="search: an amount (`125`, `125.00` or `$125` finds $125.00), a card's "
        "last four digits (`4242`, which also finds $4,242.00), or part of the patient's name",
    ),
]


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
    association: AssociationQ = None,
    patient_id: Id | None = None,
    status: StatusQ = None,
    q: SearchQ = None,
    period: PeriodQ = None,
    limit: LimitQ = 50,
    cursor_: CursorQ = None,
) -> answers.TransactionPage:
    practice_id = practice_of(caller)
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


@router.get(
    "/totals",
    response_model=answers.TransactionTotals,
    summary="Totals of the transactions a list's filters find, over all its pages",
    description="Takes the filters of `GET /v1/transactions` (no `limit` or `cursor`). "
    "`collected_amount` is what approved and settled payments took (declines and voids move "
    "no money), `refunded_amount` what was refunded of them, `net_amount` the difference.",
)
def get_transaction_totals(
    caller: AdminDep,
    ctx: ComponentsDep,
    from_: FromQ = None,
    to: ToQ = None,
    association: AssociationQ = None,
    patient_id: Id | None = None,
    status: StatusQ = None,
    q: SearchQ = None,
    period: PeriodQ = None,
) -> answers.TransactionTotals:
    practice_id = practice_of(caller)
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


@router.get(
    "/unassociated-count",
    response_model=answers.UnassociatedCount,
    summary="The alert badge: entries (payments, refunds, voids) not yet in the PMS ledger",
    description="Over all time. `count` is the number of entries that need posting: the "
    "`unposted` entries of the rows that `GET /v1/transactions?association=unassociated` lists "
    "from `oldest_date`, and for a practice that posts by hand the Post to Ledger queue's "
    "items; `transactions` is the number of those rows.",
)
def get_unassociated_count(caller: AdminDep, ctx: ComponentsDep) -> answers.UnassociatedCount:
    return answers.unassociated_badge(ctx, practice_of(caller))
