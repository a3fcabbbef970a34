"""The Post to Ledger queue as the API and the pages list it: what to type into the PMS for
each payment, refund, void or lost dispute a practice posts by hand, and how to mark it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.money import Money
from projections.ledger_queue import LedgerQueueRow, open_items
from services import cursor
from services.context import Components


def item_out(row: LedgerQueueRow) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "payment_id": row["payment_id"],
        "refund_id": row["refund_id"],
        "reason": row["reason"],
        "queued_at": row["queued_at"],
        "enter_payment": {
            "date": row["date"],
            "payment_type": row["payment_type"],
            "amount": int(row["amount"]),
            "amount_display": Money(int(row["amount"])).dollars(),
            "payment_number": row["payment_number"],
            "provider": row["provider"],
            "patient": {
                "id": row["patient_id"],
                "name": row["patient_name"],
                "pms_patient_id": row["pms_patient_id"],
            }
            if row["patient_id"]
            else None,
            "note": row["note"],
        },
        "mark_associated": {
            "method": "POST",
            "path": f"/v1/payments/{row['payment_id']}/associate",
            "body": {
                "source": "manual",
                **({"refund_id": row["refund_id"]} if row["refund_id"] else {}),
                **({"void": True} if row["kind"] == "void" else {}),
                **({"dispute": True} if row["kind"] == "dispute" else {}),
            },
        },
    }


def queue_page(
    ctx: Components, practice_id: UUID, limit: int, cursor_: str | None
) -> dict[str, Any]:
    """One page of the queue, oldest first, with the next page's cursor."""
    after = cursor.decode_pair(cursor_)
    rows = ctx.reads(open_items, practice_id, after, limit + 1)
    items = [item_out(r) for r in rows]
    more = len(items) > limit
    next_cursor = (
        cursor.encode([rows[limit - 1]["queued_at"], rows[limit - 1]["id"]]) if more else None
    )
    return {"items": items[:limit], "next_cursor": next_cursor}
