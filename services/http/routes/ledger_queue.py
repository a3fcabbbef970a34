from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from domain.money import Money
from projections.ledger_queue import LedgerQueueRow, open_items
from services import cursor
from services.app.practices import practice_of
from services.http import answers
from services.http.deps import AdminDep, ComponentsDep
from services.http.ranges import CursorQ, LimitQ

router = APIRouter(prefix="/v1", tags=["post to ledger"])


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
) -> dict[str, Any]:
    after = cursor.decode_pair(cursor_)
    rows = ctx.reads(open_items, practice_of(caller), after, limit + 1)
    items = [item_out(r) for r in rows]
    more = len(items) > limit
    next_cursor = (
        cursor.encode([rows[limit - 1]["queued_at"], rows[limit - 1]["id"]]) if more else None
    )
    return {"items": items[:limit], "next_cursor": next_cursor}
