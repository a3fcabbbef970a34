"""Practice status: the PMS writeback of the practice, the daily close of a chosen day and
its differences, and in sandbox mode the test clock and the sandbox mailbox (the messages
kept instead of sent)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.schedule import zone
from services.app import practice_views, report_views, sandbox_views, transaction_views
from services.app.accounts import SessionUser
from services.app.inputs import ClockAdvanceIn
from services.app.practices import practice_of
from services.web import render
from services.web.forms import FormError, optional_date, run
from services.web.pages.common import practice
from services.web.pages.settings import PMS_NAMES
from services.web.pages.transactions import with_writeback
from services.web.session import Admin, PostedForm, ctx_of

router = APIRouter(include_in_schema=False)

#: the test clock's buttons: form value -> (seconds, words)
STEPS = {"hour": (3600, "1 hour"), "day": (86400, "1 day"), "week": (7 * 86400, "1 week")}
#: how far back the page looks for payments whose writeback failed
FAILED_LOOKBACK = timedelta(days=90)
LINK = re.compile(r"(https?://[^\s<>\"']+)")

DIFFERENCE_KINDS = {
    "payment_not_associated": "Payment not in the PMS",
    "payment_not_in_batch": "Payment not in the day's batch",
    "refund_not_written_back": "Refund not in the PMS",
    "deposit_mismatch": "Deposit does not add up",
    "intent_unknown": "Outcome unknown at the processor",
    "batch_unknown_item": "In Clearent's batch, not in a deposit",
    "batch_total_mismatch": "Clearent's batch does not add up",
}


def failed_writebacks(request: Request, user: SessionUser) -> list[dict[str, Any]]:
    """Payments of the last 90 days whose writeback failed, newest first, with the error."""
    ctx = ctx_of(request)
    pid = practice_of(user.caller)
    today = ctx.clock.now(pid).date()
    answer = transaction_views.transactions_page(
        ctx,
        pid,
        from_=today - FAILED_LOOKBACK,
        to=today + timedelta(days=1),
        association="unassociated",
        patient_id=None,
        status=None,
        q=None,
        period=None,
        limit=100,
        cursor_=None,
    )
    rows = with_writeback(ctx, answer["items"])
    return [r for r in rows if r["writeback"]["kind"] == "failed"][:10]


def text_with_links(body: str) -> list[tuple[str, bool]]:
    """A message's text cut into (piece, is_link) so the template can link pay links."""
    return [(piece, bool(LINK.fullmatch(piece))) for piece in LINK.split(body) if piece]


def sandbox_context(request: Request, user: SessionUser) -> dict[str, Any]:
    if not request.app.state.ctx.settings.sandbox:
        return {"clock": None, "mailbox": []}
    ctx = ctx_of(request)
    pid = practice_of(user.caller)
    mailbox = sandbox_views.mailbox(ctx, pid)["items"]
    return {
        "clock": sandbox_views.clock_of(ctx, pid),
        "mailbox": [{**m, "pieces": text_with_links(str(m["body"]))} for m in mailbox[:10]],
    }


def status_page(
    request: Request,
    user: SessionUser,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = ctx_of(request)
    pid = practice_of(user.caller)
    day_text = request.query_params.get("date", "")
    try:
        day = run(optional_date, day_text, "the day")
        close = run(report_views.daily_close, ctx, pid, day)
    except FormError as refused:
        error, status = refused.message, refused.status
        close = report_views.daily_close(ctx, pid, None)
    status_of_practice = practice_views.one_practice(ctx, user.caller, pid)
    writeback = status_of_practice["writeback"]
    failed = failed_writebacks(request, user) if writeback["status"] == "failing" else []
    office = practice(request, user)
    return render.page(
        request,
        "status.html",
        user=user,
        practice=office,
        pms_name=PMS_NAMES.get(office.pms.value, office.pms.value),
        section="status",
        status=status,
        error=error,
        writeback=writeback,
        intents=status_of_practice["open_intents"],
        failed=failed,
        close=close,
        kinds=DIFFERENCE_KINDS,
        steps=STEPS,
        **sandbox_context(request, user),
    )


@router.get("/payments/status")
def practice_status(request: Request, user: Admin) -> HTMLResponse:
    return status_page(request, user)


@router.post("/payments/status/clock")
def advance_clock(request: Request, user: Admin, form: PostedForm) -> Response:
    tz = practice(request, user).timezone
    local = render.LocalTime(tz)
    if form.get("step") == "to":
        try:
            moment = datetime.fromisoformat(form.get("to"))
        except ValueError:
            return status_page(
                request, user, error="Choose the date and time to move the clock to.", status=422
            )
        target = moment.replace(tzinfo=zone(tz)) if moment.tzinfo is None else moment
        body, words = ClockAdvanceIn(to=target), ""
    elif form.get("step") in STEPS:
        seconds, words = STEPS[form.get("step")]
        body, words = ClockAdvanceIn(seconds=seconds), f" {words}"
    else:
        return status_page(
            request, user, error="Choose 1 hour, 1 day, 1 week or a date.", status=422
        )
    try:
        answer = run(sandbox_views.advance, ctx_of(request), practice_of(user.caller), body)
    except FormError as refused:
        return status_page(request, user, error=refused.message, status=refused.status)
    return render.redirect(
        request,
        "/payments/status#test-clock",
        f"The test clock moved{words} forward, to {local.datetime(answer['now'])}. "
        + done_work(answer.model_dump()),
    )


def done_work(answer: dict[str, Any]) -> str:
    """What fell due, as a sentence: 'Closed 1 batch, paid 1 deposit.'"""
    parts = [
        (answer["batches_closed"], "closed {n} batch", "closed {n} batches"),
        (answer["deposits_paid"], "paid {n} deposit", "paid {n} deposits"),
        (answer["requests_expired"], "expired {n} payment request", "expired {n} payment requests"),
        (answer["reminders_sent"], "sent {n} reminder", "sent {n} reminders"),
        (answer["messages_retried"], "retried {n} message", "retried {n} messages"),
        (answer["snoozes_ended"], "ended {n} snooze", "ended {n} snoozes"),
    ]
    done = [(one if n == 1 else many).format(n=n) for n, one, many in parts if n]
    if not done:
        return "Nothing fell due."
    text = ", ".join(done)
    return text[0].upper() + text[1:] + "."
