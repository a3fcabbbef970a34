from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.app import answers
from services.app import transaction_views as views
from services.app.bounds import SEARCH_LENGTH, Id
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep
from services.http.ranges import CursorQ, FromQ, LimitQ, PeriodQ, ToQ

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])

AssociationQ = Annotated[
    views.Association | None,
    Query(
        description="associated: all of it is in the PMS; unassociated: something of it "
        "(the payment, a refund, the void of a posted payment) needs posting; "
        "not_applicable: declined, or voided before it was posted"
    ),
]
StatusQ = Annotated[
    views.StatusFilter | None,
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
    return views.transactions_page(
        ctx,
        practice_of(caller),
        from_=from_,
        to=to,
        association=association,
        patient_id=patient_id,
        status=status,
        q=q,
        period=period,
        limit=limit,
        cursor_=cursor_,
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
    return views.transactions_totals(
        ctx,
        practice_of(caller),
        from_=from_,
        to=to,
        association=association,
        patient_id=patient_id,
        status=status,
        q=q,
        period=period,
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
    return views.unassociated_count(ctx, practice_of(caller))
