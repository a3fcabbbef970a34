from __future__ import annotations

from fastapi import APIRouter

from services.app import answers
from services.app import ledger_queue as queue
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep
from services.http.ranges import CursorQ, LimitQ

router = APIRouter(prefix="/v1", tags=["post to ledger"])


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
    return queue.queue_page(ctx, practice_of(caller), limit, cursor_)
