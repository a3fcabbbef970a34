from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from domain.errors import InvalidValue
from domain.practices import Practice
from projections.transactions import list_transactions, unassociated_count
from services.api import cursor
from services.api.deps import AdminDep, LedgerDep, practice_of
from services.views import default_range, transaction_row

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])


@router.get("", summary="Transactions in a date range (default: the last 30 days), newest first")
def get_transactions(
    caller: AdminDep,
    ledger: LedgerDep,
    from_: Annotated[
        date | None, Query(alias="from", description="YYYY-MM-DD, practice-local")
    ] = None,
    to: Annotated[date | None, Query(description="YYYY-MM-DD, practice-local, inclusive")] = None,
    association: Literal["associated", "unassociated"] | None = None,
    patient_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor_: Annotated[str | None, Query(alias="cursor")] = None,
) -> dict[str, Any]:
    practice_id = practice_of(caller)
    practice = ledger.get(Practice, practice_id, practice_id)
    default_from, default_to = default_range(ledger, practice)
    date_from, date_to = from_ or default_from, to or default_to
    if date_from > date_to:
        raise InvalidValue(f"from ({date_from}) is after to ({date_to})", field="from")
    after = cursor.decode(cursor_, 2)
    rows = list_transactions(
        ledger.db,
        practice_id,
        date_from=date_from.isoformat(),
        date_to=date_to.isoformat(),
        association=association,
        patient_id=patient_id,
        after=(after[0], after[1]) if after else None,
        limit=limit + 1,
    )
    answer = cursor.page([transaction_row(r) for r in rows], limit, ["occurred_at", "id"])
    answer["from"], answer["to"] = date_from.isoformat(), date_to.isoformat()
    return answer


@router.get("/unassociated-count", summary="The alert badge: payments not yet in the PMS ledger")
def get_unassociated_count(caller: AdminDep, ledger: LedgerDep) -> dict[str, int]:
    return {"count": unassociated_count(ledger.db, practice_of(caller))}
