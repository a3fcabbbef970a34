"""The Post to Ledger queue as the API and the pages list it: what to type into the PMS for
each payment, refund, void or lost dispute a practice posts by hand, and how to mark it."""

from __future__ import annotations

from typing import cast
from uuid import UUID

from domain.money import Money
from projections.ledger_queue import LedgerQueueRow, open_items
from services import cursor
from services.app import answers
from services.context import Components


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


def queue_page(
    ctx: Components, practice_id: UUID, limit: int, cursor_: str | None
) -> answers.QueuePage:
    """One page of the queue, oldest first, with the next page's cursor."""
    after = cursor.decode_pair(cursor_)
    rows = ctx.reads(open_items, practice_id, after, limit + 1)
    shown, next_cursor = cursor.page(rows, limit, lambda r: [r["queued_at"], r["id"]])
    return answers.QueuePage(items=[item_out(r) for r in shown], next_cursor=next_cursor)
