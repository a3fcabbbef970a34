"""The Transactions tab: the list with its filters and badge, receipts, and the row actions
(refund or void, Post to Ledger, mark as associated, retry a failed writeback)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.patients import Patient
from domain.payments import Payment, ReversalKind, ReversalReason, Status, receipt_status_of
from domain.posting import needs_posting
from domain.schedule import local_date, zone
from services.app import ledger_queue as queue_views
from services.app import payment_commands as commands
from services.app import payment_views, transaction_views
from services.app.answers import receipt_out
from services.app.bounds import SEARCH_LENGTH
from services.app.inputs import AssociateIn, ReceiptSendIn, RefundIn
from services.app.practices import practice_of
from services.app.writeback_status import writeback_of_payments
from services.receipt_pdf import payment_receipt_pdf, pdf_headers
from services.web import render
from services.web.forms import FormError, dollars_to_cents, optional_date, run
from services.web.pages import common
from services.web.pages.common import practice
from services.web.session import Admin, Manager, PostedForm, ctx_of

router = APIRouter(include_in_schema=False)

STATUSES = ["approved", "settled", "refunded", "voided", "declined"]
ASSOCIATIONS = ["unassociated", "associated", "not_applicable"]


@router.get("/payments")
def payments_home() -> Response:
    return RedirectResponse("/payments/transactions", status_code=303)


#: the date presets, as the buttons above the list name them
PERIODS = {
    "today": "Today",
    "yesterday": "Yesterday",
    "this_week": "This week",
    "this_month": "This month",
    "last_month": "Last month",
}
#: the list's filters, in the order the query string carries them
FILTERS = ("q", "period", "from", "to", "association", "status")


def filters_of(request: Request) -> dict[str, str]:
    q = request.query_params
    typed = q.get("from", "") or q.get("to", "")
    # dates typed in the Date column's filter win over a preset the page carried along
    period = q.get("period", "") if q.get("period") in PERIODS and not typed else ""
    return {
        "q": q.get("q", "").strip()[:SEARCH_LENGTH],
        "period": period,
        "from": q.get("from", ""),
        "to": q.get("to", ""),
        "association": q.get("association", "") if q.get("association") in ASSOCIATIONS else "",
        "status": q.get("status", "") if q.get("status") in STATUSES else "",
        "cursor": q.get("cursor", ""),
    }


def query_of(f: dict[str, str], **change: str) -> str:
    """The list's query string with some filters changed ('' removes one)."""
    merged = {**{k: f[k] for k in FILTERS}, **change}
    return urlencode({k: v for k, v in merged.items() if v})


def listing(request: Request, user: Admin) -> dict[str, Any]:
    ctx = ctx_of(request)
    f = filters_of(request)
    asked = {
        "from_": optional_date(f["from"], "from"),
        "to": optional_date(f["to"], "to"),
        "association": f["association"] or None,
        "patient_id": None,
        "status": f["status"] or None,
        "q": f["q"] or None,
        "period": f["period"] or None,
    }
    pid = practice_of(user.caller)
    answer = run(
        transaction_views.transactions_page,
        ctx,
        pid,
        **asked,  # type: ignore[arg-type]
        limit=50,
        cursor_=f["cursor"] or None,
    )
    totals = run(transaction_views.transactions_totals, ctx, pid, **asked)  # type: ignore[arg-type]
    rows = with_writeback(ctx, answer["items"])
    # the unassociated filter explains the badge: it counts entries, over every date
    badge_note = (
        transaction_views.unassociated_count(ctx, pid)
        if f["association"] == "unassociated"
        else None
    )
    shown = {**f, "from": answer["from"], "to": answer["to"]}
    base = {k: v for k, v in f.items() if v and k != "cursor"}
    if not f["period"]:
        base["from"], base["to"] = answer["from"], answer["to"]
    more = (
        "?" + urlencode({**base, "cursor": answer["next_cursor"]}) if answer["next_cursor"] else ""
    )
    return {
        "rows": rows,
        "filters": shown,
        "asked": f,
        "query": urlencode({k: v for k, v in f.items() if v}),
        "more": more,
        "totals": totals,
        "filtered": [
            column
            for column, on in (
                ("date", f["from"] or f["to"] or f["period"]),
                ("status", f["status"]),
                ("pms", f["association"]),
            )
            if on
        ],
        "periods": [
            {
                "name": name,
                "text": text,
                "href": "?" + query_of(f, period=name, **{"from": "", "to": ""}),
                "on": f["period"] == name,
            }
            for name, text in PERIODS.items()
        ],
        "any_filter": any(f[k] for k in FILTERS),
        "outside": outside_of(request, user, f, answer["from"], badge_note["oldest_date"])
        if badge_note and not f["q"] and not f["status"]
        else None,
        "badge_note": badge_note,
    }


def outside_of(
    request: Request, user: Admin, f: dict[str, str], date_from: str, oldest: str | None
) -> dict[str, Any] | None:
    """How many unassociated transactions lie before the range (the badge counts them too),
    and the list from the oldest one: the badge and the filter never disagree unexplained."""
    if oldest is None or oldest >= date_from:
        return None
    before = run(
        transaction_views.transactions_totals,
        ctx_of(request),
        practice_of(user.caller),
        from_=optional_date(oldest, "from"),
        to=optional_date((date.fromisoformat(date_from) - timedelta(days=1)).isoformat(), "to"),
        association="unassociated",
        patient_id=None,
        status=None,
        q=None,
        period=None,
    )["count"]
    if not before:
        return None
    return {
        "count": before,
        "before": date_from,
        "href": "?" + query_of(f, period="", **{"from": oldest, "to": ""}),
    }


def with_writeback(ctx: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows and the state of each one's PMS writeback, as the office needs to read it."""
    asked = [
        UUID(row["id"])
        for row in rows
        if row["association"] != "associated"
        and (row["status"] in ("approved", "settled") or row["association"] == "unassociated")
    ]
    attempts_of = writeback_of_payments(ctx.journal, asked)
    return [
        {
            **row,
            "writeback": writeback_state(row, attempts_of.get(UUID(row["id"]))),
            "confirmation": receipt_status_of(row["status"]).value,
        }
        for row in rows
    ]


def writeback_state(row: dict[str, Any], attempts: list[dict[str, Any]] | None) -> dict[str, Any]:
    if row["association"] == "associated":
        return {"kind": "associated", "text": row["pms_reference"] or "", "error": None}
    if attempts is None:
        return {"kind": "none", "text": "", "error": None}
    failed = [a for a in attempts if a["status"] == "failed"]
    pending = [a for a in attempts if a["status"] == "pending"]
    if failed:
        return {"kind": "failed", "text": "Writeback failed", "error": failed[0]["last_error"]}
    if pending:
        error = pending[0]["last_error"]
        return {"kind": "pending", "text": "Retrying" if error else "Pending", "error": error}
    if row["status"] in ("approved", "settled"):
        return {"kind": "manual", "text": "Needs posting", "error": None}
    return {"kind": "none", "text": "", "error": None}


@router.get("/payments/transactions")
def transactions_page(request: Request, user: Admin) -> HTMLResponse:
    try:
        data = listing(request, user)
        error = None
    except FormError as refused:
        request.scope["query_string"] = b""
        data, error = listing(request, user), refused.message
    return render.page(
        request,
        "payments/transactions.html",
        user=user,
        practice=practice(request, user),
        section="payments",
        tab="transactions",
        badge=badge_count(request, user),
        error=error,
        **data,
    )


@router.get("/payments/transactions/rows")
def transactions_rows(request: Request, user: Admin) -> HTMLResponse:
    try:
        data = listing(request, user)
    except FormError as refused:
        return HTMLResponse(refused.message, status_code=refused.status)
    html = render.fragment(
        "payments/transaction_rows.html",
        local=render.LocalTime(practice(request, user).timezone),
        csrf_token=user.csrf_token,
        read_only=user.caller.reads_only,
        **data,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def badge_count(request: Request, user: Admin) -> int:
    answer = transaction_views.unassociated_count(ctx_of(request), practice_of(user.caller))
    return int(answer["count"])


@router.get("/payments/badge")
def badge(request: Request, user: Admin) -> HTMLResponse:
    html = render.fragment("payments/badge.html", badge=badge_count(request, user))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def load_payment(request: Request, user: Admin, payment_id: UUID) -> Payment:
    payment: Payment = run(ctx_of(request).get, Payment, payment_id, practice_of(user.caller))
    return payment


def detail_context(request: Request, user: Admin, payment_id: UUID) -> dict[str, Any]:
    ctx = ctx_of(request)
    payment = load_payment(request, user, payment_id)
    pid = practice_of(user.caller)
    answer = payment_views.one_payment(ctx, pid, payment_id).model_dump(by_alias=True)
    now = ctx.clock.now(pid)
    kind = None
    if payment.status in (Status.APPROVED, Status.SETTLED) and payment.remaining.cents > 0:
        kind = payment.reversal_kind(now).value
    queue = [
        item
        for item in queue_views.queue_page(ctx, pid, 100, None)["items"]
        if item["payment_id"] == str(payment_id)
    ]
    answer["events"] = [describe(h, payment.amount.cents) for h in answer.get("history", [])]
    return {
        "payment": answer,
        "receipt": receipt_out(ctx, payment),
        "entry": payment_views.ledger_entry(ctx, pid, payment_id),
        "reversal_kind": kind,
        "remaining": payment.remaining.cents,
        "queue": queue,
        "settles_local": payment.settles_at.astimezone(zone(practice(request, user).timezone))
        if payment.settles_at
        else None,
    }


def describe(item: dict[str, Any], amount: int) -> dict[str, Any]:
    """One event of a payment's history as a sentence an office reads, its amounts in
    dollars (`amount`: the payment's own, for the events that do not carry one)."""
    data, kind = item["data"], item["type"].removeprefix("Payment")
    money = render.money
    card = f"{data.get('card_brand', 'card')} ending {data.get('card_last4', '')}".strip()
    reference = f" (PMS reference {data['pms_reference']})" if data.get("pms_reference") else ""
    sentences: dict[str, Callable[[], str]] = {
        "Captured": lambda: f"Approved {money(data.get('amount'))} on {card}",
        "Declined": lambda: f"Declined {money(data.get('amount'))} on {card}: {data.get('reason')}",
        "CaptureRequested": lambda: "Asked the card processor to take the payment",
        "Settled": lambda: f"Settled {money(amount)} in the processor's batch",
        "VoidRequested": lambda: f"Asked the card processor to void {money(amount)}",
        "VoidOutcomeUnknown": lambda: (
            "The processor's answer to the void was lost; reading it back"
        ),
        "VoidRefused": lambda: f"The processor refused the void: {data.get('reason')}",
        "Voided": lambda: f"Voided {money(amount)}: no money was taken",
        "RefundRequested": lambda: (
            f"Asked the card processor to refund {money(data.get('amount'))}"
        ),
        "RefundOutcomeUnknown": lambda: (
            "The processor's answer to a refund was lost; reading it back"
        ),
        "RefundRefused": lambda: (
            f"The processor refused a refund of {money(data.get('amount'))}: {data.get('reason')}"
        ),
        "Refunded": lambda: f"Refunded {money(data.get('amount'))}",
        "RefundFailed": lambda: (
            f"A refund of {money(data.get('amount'))} failed at the bank: {data.get('reason')}"
        ),
        "RefundSettled": lambda: "The refund settled in the processor's batch",
        "Associated": lambda: f"Marked as posted to the PMS ledger{reference}",
        "RefundAssociated": lambda: f"The refund marked as posted to the PMS ledger{reference}",
        "VoidAssociated": lambda: f"The void marked as posted to the PMS ledger{reference}",
        "DisputeOpened": lambda: (
            f"The cardholder disputed {money(data.get('amount'))} "
            f"({render.label(data.get('reason'))})"
        ),
        "DisputeUpdated": lambda: f"The dispute is now {render.label(data.get('status')).lower()}",
        "DisputeClosed": lambda: (
            f"The dispute closed: {render.label(data.get('status')).lower()} "
            f"({money(data.get('amount'))})"
        ),
        "DisputeAssociated": lambda: f"The dispute marked as posted to the PMS ledger{reference}",
        "ReceiptSent": lambda: (
            f"{'Refund receipt' if data.get('refund_id') else 'Receipt'} sent to "
            f"{data.get('email')}"
        ),
    }
    text = sentences.get(kind, lambda: render.label(kind))()
    return {**item, "text": text}


def detail_page(
    request: Request,
    user: Admin,
    payment_id: UUID,
    template: str,
    *,
    error: str | None = None,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    return common.detail_page(
        request,
        user,
        template,
        tab="transactions",
        missing="Payment not found",
        load=lambda: detail_context(request, user, payment_id),
        error=error,
        status=status,
        reasons=REASONS,
        **extra,
    )


@router.get("/payments/transactions/{payment_id}")
def payment_page(request: Request, user: Admin, payment_id: UUID) -> HTMLResponse:
    return detail_page(request, user, payment_id, "payments/payment.html")


#: the reasons of a refund or void, as the form lists them (domain: ReversalReason)
REASONS = {
    ReversalReason.PATIENT_REQUEST.value: "Patient request",
    ReversalReason.DUPLICATE.value: "Duplicate payment",
    ReversalReason.OVERCHARGE.value: "Overcharge",
    ReversalReason.TREATMENT_CHANGED.value: "Treatment changed",
    ReversalReason.OTHER.value: "Other (say why in the note)",
}


@router.get("/payments/transactions/{payment_id}/refund")
def refund_page(request: Request, user: Manager, payment_id: UUID) -> HTMLResponse:
    return detail_page(request, user, payment_id, "payments/refund.html")


@router.post("/payments/transactions/{payment_id}/refund")
def refund(request: Request, user: Admin, form: PostedForm, payment_id: UUID) -> Response:
    ctx = ctx_of(request)
    try:
        reason = form.get("reason")
        if reason not in REASONS:
            raise FormError("Choose why from the list of reasons.", field="reason")
        amount = None
        if form.get("kind") == "refund" and form.get("amount"):
            amount = run(dollars_to_cents, form.get("amount"))
        body = run(RefundIn, amount=amount, reason=reason, note=form.get("note") or None)
        reversal = run(commands.refund, ctx, user.caller, payment_id, body, form.key(user))
    except FormError as refused:
        return detail_page(
            request,
            user,
            payment_id,
            "payments/refund.html",
            amount_value=form.get("amount"),
            **refused.shown,
            reason_value=form.get("reason"),
            note_value=form.get("note"),
            # the same key when the refund may be under way: pressing Confirm again
            # finishes that refund (or answers it) instead of starting a second one
            form_key_value=form.get("idempotency_key") if refused.may_be_under_way else None,
        )
    card = reversal.payment.card
    voided = reversal.kind is ReversalKind.VOID
    done = "Voided" if voided else "Refunded"
    text = f"{done} {render.money(reversal.amount)} on {card.brand} ending {card.last4}." + (
        " No money was taken from the card." if voided else ""
    )
    return render.redirect(request, "/payments/transactions", text)


def posting_context(request: Request, user: Admin, payment_id: UUID) -> dict[str, Any]:
    """Post to Ledger: what of the payment still needs posting, and only that (the
    Payment's ledger entries, domain/posting.py: the badge's and the writeback's
    definition). A posted payment whose refund waits shows the payment as associated
    with its reference and asks only for the refund's negative entry."""
    payment = load_payment(request, user, payment_id)
    tz = practice(request, user).timezone
    entries = payment.ledger_entries
    own = next((e for e in entries if e.kind == "payment"), None)
    refunds = {str(r.id): r for r in payment.refunds}
    reversals = []
    for e in needs_posting(entries):
        if e.kind == "payment":
            continue
        at = (
            refunds[e.id].at
            if e.kind == "refund"
            else payment.voided_at
            if e.kind == "void"
            else payment.dispute.closed_at
            if payment.dispute is not None
            else None
        ) or payment.occurred_at
        what = {"refund": "Refund", "void": "Void", "dispute": "Lost dispute"}[e.kind]
        reversals.append(
            {
                "kind": e.kind,
                "id": e.id,
                "amount": e.amount,
                "date": local_date(at, tz).isoformat(),
                "note": f"{what} of card payment [ref:{payment.id}] [ref:{e.id}]",
                "refund_id": e.id if e.kind == "refund" else None,
            }
        )
    return {
        "posting": {
            "payment_needed": own is not None and not own.posted,
            "payment_posted": own is not None and own.posted,
            "payment_reference": payment.pms_reference,
            "payment_source": payment.association_source.value
            if payment.association_source
            else None,
            "reversals": reversals,
            "nothing_left": not needs_posting(entries),
        }
    }


def post_detail(
    request: Request,
    user: Admin,
    payment_id: UUID,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return common.detail_page(
        request,
        user,
        "payments/post.html",
        tab="transactions",
        missing="Payment not found",
        load=lambda: {
            **detail_context(request, user, payment_id),
            **posting_context(request, user, payment_id),
        },
        error=error,
        status=status,
    )


@router.get("/payments/transactions/{payment_id}/post")
def post_page(request: Request, user: Manager, payment_id: UUID) -> HTMLResponse:
    return post_detail(request, user, payment_id)


@router.post("/payments/transactions/{payment_id}/associate")
def associate(request: Request, user: Admin, form: PostedForm, payment_id: UUID) -> Response:
    try:
        body = run(
            AssociateIn,
            source=form.get("source") or "manual",
            pms_reference=form.get("pms_reference") or None,
            refund_id=form.get("refund_id") or None,
            void=form.get("void") == "true",
            dispute=form.get("dispute") == "true",
        )
        run(commands.associate, ctx_of(request), user.caller, payment_id, body)
    except FormError as refused:
        return post_detail(request, user, payment_id, error=refused.message, status=refused.status)
    what = (
        "refund"
        if form.get("refund_id")
        else "void"
        if form.get("void") == "true"
        else "lost dispute"
        if form.get("dispute") == "true"
        else "payment"
    )
    back = form.get("back") or "/payments/transactions"
    return render.redirect(
        request, render.safe_next(back), f"The {what} is marked as associated with the PMS."
    )


@router.post("/payments/transactions/{payment_id}/retry")
def retry(request: Request, user: Admin, form: PostedForm, payment_id: UUID) -> Response:
    try:
        _, count = run(commands.retry_writeback, ctx_of(request), user.caller, payment_id)
    except FormError as refused:
        return render.redirect(request, "/payments/transactions", refused.message, "error")
    text = (
        "The writeback will be tried again now."
        if count
        else "Nothing to retry: no writeback of this payment is failed or waiting to be retried."
    )
    return render.redirect(request, "/payments/transactions", text)


def patient_contact(request: Request, user: Admin, payment_id: UUID) -> dict[str, str]:
    """The payment's patient's email and phone, from their record: the send form's defaults."""
    payment = load_payment(request, user, payment_id)
    if payment.patient_id is None:
        return {"email": "", "phone": ""}
    patient = ctx_of(request).get(Patient, payment.patient_id, practice_of(user.caller))
    return {"email": patient.email or "", "phone": patient.phone or ""}


@router.get("/payments/transactions/{payment_id}/receipt")
def receipt_page(request: Request, user: Manager, payment_id: UUID) -> HTMLResponse:
    refund_id = request.query_params.get("refund_id", "")
    try:
        contact = patient_contact(request, user, payment_id)
    except FormError:
        contact = {"email": "", "phone": ""}  # the page says the payment is not found
    return detail_page(
        request,
        user,
        payment_id,
        "payments/receipt.html",
        refund_id=refund_id,
        channel="email",
        email=contact["email"],
        confirm_email=contact["email"],
        phone=contact["phone"],
        confirm_phone=contact["phone"],
        from_record=contact,
    )


@router.post("/payments/transactions/{payment_id}/receipt")
def send_receipt(request: Request, user: Admin, form: PostedForm, payment_id: UUID) -> Response:
    by_text = form.get("channel") == "sms"
    try:
        body = run(
            ReceiptSendIn,
            email=None if by_text else form.get("email"),
            confirm_email=None if by_text else form.get("confirm_email"),
            phone=form.get("phone") if by_text else None,
            confirm_phone=form.get("confirm_phone") if by_text else None,
            refund_id=form.get("refund_id") or None,
        )
        run(commands.send_receipt, ctx_of(request), user.caller, payment_id, body)
    except FormError as refused:
        return detail_page(
            request,
            user,
            payment_id,
            "payments/receipt.html",
            error=receipt_error(refused.message, by_text),
            status=refused.status,
            refund_id=form.get("refund_id"),
            channel="sms" if by_text else "email",
            email=form.get("email"),
            confirm_email=form.get("confirm_email"),
            phone=form.get("phone"),
            confirm_phone=form.get("confirm_phone"),
            from_record={"email": "", "phone": ""},
        )
    where = f"by text to {form.get('phone')}" if by_text else f"to {form.get('email')}"
    return render.redirect(
        request, "/payments/transactions", f"A copy of the receipt was sent {where}."
    )


def receipt_error(message: str, by_text: bool) -> str:
    """The refusal in the form's words: a malformed number or address names its field."""
    if "phone" in message and "pattern" in message.lower():
        return "Enter the phone number with digits, e.g. (617) 555-0101."
    if "Email and confirm_email differ" in message:
        return "The two email addresses differ: check the address."
    return message


@router.get("/payments/transactions/{payment_id}/receipt.pdf")
def receipt_download(request: Request, user: Admin, payment_id: UUID) -> Response:
    """The receipt (or a refund's, `?refund_id=`) as a PDF to keep or print."""
    ctx = ctx_of(request)
    try:
        payment = load_payment(request, user, payment_id)
    except FormError as refused:
        return HTMLResponse(refused.message, status_code=refused.status)
    refund_id = request.query_params.get("refund_id", "")
    made = payment_receipt_pdf(
        receipt_out(ctx, payment).model_dump(mode="json", by_alias=True),
        refund_id,
        practice(request, user).timezone,
    )
    if made is None:
        return HTMLResponse("This payment has no such refund.", status_code=404)
    pdf, name = made
    return Response(pdf, media_type="application/pdf", headers=pdf_headers(name))
