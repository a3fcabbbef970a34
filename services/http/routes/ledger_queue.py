from __future__ import annotations

from typing import cast

from fastapi import APIRouter

from domain.money import Money
from projections.ledger_queue import LedgerQueueRow, open_items
from services.http import answers, cursor
from services.http.deps import AdminDep, ComponentsDep, practice_of
from services.http.ranges import CursorQ, LimitQ

router = APIRouter(prefix="/v1", tags=["post to ledger"])


def item_out(row: LedgerQueueRow) -> answers.QueueItem:
    return answers.QueueItem(
        id=row["id"],
        kind=row["kind"],
        payment_id=row["payment_id"],
        refund_id=row["refund_id"],
        reason=row["reason"],
        queued_at=row["queued_at"],
        enter_payment=answers.EnterPayment(
            date=row["date"],
            payment_type=row["payment_type"],
            amount=int(row["amount"]),
            amount_display=Money(int(row["amount"])).dollars(),
            payment_number=row["payment_number"],
            provider=row["provider"],
            patient=answers.QueuePatient(
                id=row["patient_id"],
                name=cast(str, row["patient_name"]),
                pms_patient_id=cast(str, row["pms_patient_id"]),
            )
            if row["patient_id"]
            else None,
            note=row["note"],
        ),
        mark_associated=answers.MarkAssociated(
            method="POST",
            path=f"/v1/payments/{row['payment_id']}/associate",
            body={
                "source": "manual",
                **({"refund_id": row["refund_id"]} if row["refund_id"] else {}),
                **({"void": True} if row["kind"] == "void" else {}),
                **({"dispute": True} if row["kind"] == "dispute" else {}),
            },
        ),
    )


@router.get(
    "/ledger-queue",
    response_model=answers.QueuePage,
    summary="Payments and refunds to post to the PMS by hand",
)
def ledger_queue(
    caller: AdminDep,
    ctx: ComponentsDep,
    limit: LimitQ = 50,
    cursor_: CursorQ = None,
) -> answers.QueuePage:
    after = cursor.decode_pair(cursor_)
    rows = ctx.reads(open_items, practice_of(caller), after, limit + 1)
    shown, next_cursor = cursor.page(rows, limit, lambda r: [r["queued_at"], r["id"]])
    return answers.QueuePage(items=[item_out(r) for r in shown], next_cursor=next_cursor)
