"""The Post to Ledger tab: everything still waiting to be entered in the PMS by hand, across
payments (the queue the API answers at `GET /v1/ledger-queue`), each with what to type and
a PMS reference to keep, ticked and marked as associated together."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.app import ledger_queue as queue
from services.app import payment_commands as commands
from services.app.inputs import AssociateIn
from services.app.practices import practice_of
from services.web import render
from services.web.forms import FormError, run
from services.web.pages.common import practice
from services.web.pages.transactions import badge_count
from services.web.session import Admin, Manager, PostedForm, ctx_of

router = APIRouter(include_in_schema=False)

#: the queue's items on one page; the rest follow through "Next"
PAGE = 100
#: how many items one "Mark as associated" takes
MOST_MARKED = 100


@router.get("/payments/post-to-ledger")
def queue_page(request: Request, user: Admin) -> HTMLResponse:
    cursor = request.query_params.get("cursor") or None
    try:
        answer = run(queue.queue_page, ctx_of(request), practice_of(user.caller), PAGE, cursor)
    except FormError:  # a cursor that is not one of ours: the first page
        answer = queue.queue_page(ctx_of(request), practice_of(user.caller), PAGE, None)
    return render.page(
        request,
        "payments/ledger.html",
        user=user,
        practice=practice(request, user),
        section="payments",
        tab="ledger",
        badge=badge_count(request, user),
        items=answer["items"],
        more=f"?cursor={answer['next_cursor']}" if answer["next_cursor"] else "",
        paged=cursor is not None,
    )


def open_items_by_id(request: Request, user: Admin, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The queue's open items among `wanted`, read page by page (an item marked meanwhile,
    or not of this practice, is not found)."""
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        answer = queue.queue_page(ctx_of(request), practice_of(user.caller), 100, cursor)
        found.update({i["id"]: i for i in answer["items"] if i["id"] in wanted})
        cursor = answer["next_cursor"]
        if cursor is None or len(found) == len(wanted):
            return found


@router.post("/payments/post-to-ledger/mark")
def mark(request: Request, user: Manager, form: PostedForm) -> Response:
    """Mark every ticked item as associated, each with the PMS reference typed on its row;
    the answer says how many were marked and which could not be, and why."""
    ticked = list(dict.fromkeys(form.all("item")))
    if not ticked:
        return render.redirect(
            request, "/payments/post-to-ledger", "Tick the entries you posted first.", "error"
        )
    if len(ticked) > MOST_MARKED:
        text = f"Mark at most {MOST_MARKED} entries at once."
        return render.redirect(request, "/payments/post-to-ledger", text, "error")
    items = open_items_by_id(request, user, set(ticked))
    marked, refused = 0, []
    for item_id in ticked:
        item = items.get(item_id)
        if item is None:
            refused.append("one entry was already marked or is not waiting any more")
            continue
        reference = form.get(f"ref_{item_id}").strip()
        try:
            body = run(
                AssociateIn,
                source="manual",
                pms_reference=reference or None,
                refund_id=item["refund_id"],
                void=item["kind"] == "void",
                dispute=item["kind"] == "dispute",
            )
            run(commands.associate, ctx_of(request), user.caller, UUID(item["payment_id"]), body)
            marked += 1
        except FormError as error:
            what = item["enter_payment"]["amount_display"]
            refused.append(f"{item['kind']} of {what}: {error.message}")
    text = f"Marked {marked} {'entry' if marked == 1 else 'entries'} as associated with the PMS."
    if refused:
        text += " Not marked: " + "; ".join(refused)
    return render.redirect(
        request, "/payments/post-to-ledger", text, "error" if refused and not marked else "ok"
    )
