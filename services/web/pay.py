"""The patient's hosted pay page: GET shows the request, POST pays it. No login."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import WithJsonSchema
from starlette.concurrency import run_in_threadpool

from adapters.processor.cards import card_mistakes
from adapters.processor.port import Capability, CardInput, SavedCard
from domain.cards import consent_for
from domain.errors import InvalidCard, InvalidValue, NotFound, PaymentsError
from domain.money import MAX_AMOUNT_CENTS, format_dollars
from domain.payments import Payment, Status
from domain.requests import RequestClosed
from domain.schedule import local_date, zone
from services.app import cards
from services.app.requests import (
    MAX_TOKEN,
    PayLink,
    RequestChanged,
    attempt_outcome,
    open_link,
    pay_request,
    reload_link,
)
from services.context import Components
from services.web import pay_limits, render
from services.web.security import STRIPE_CONTENT_SECURITY_POLICY, STRIPE_JS
from services.web.session import ComponentsDep

router = APIRouter(tags=["pay page"], include_in_schema=True)
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
templates.globals.update(invalid=render.invalid, field_error=render.field_error)

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def page(status: int, **context: Any) -> HTMLResponse:
    html = templates.get_template("pay.html").render(**context)
    headers = dict(HEADERS)
    if context.get("stripe"):
        headers["Content-Security-Policy"] = STRIPE_CONTENT_SECURITY_POLICY
    return HTMLResponse(html, status_code=status, headers=headers)


def stripe_element(ctx: Components, account: str | None, amount: int) -> dict[str, Any] | None:
    """What the page needs to show Stripe's Payment Element (None: card fields; on any
    processor whose own card form is not Stripe's Payment Element)."""
    if not ctx.processor.can(Capability.PAYMENT_ELEMENT):
        return None
    return {
        "js": STRIPE_JS,
        "key": ctx.settings.stripe_publishable_key or "",
        "account": account or "",
        "amount": amount,
    }


def closed_page(link: PayLink, message: str) -> HTMLResponse:
    return page(
        410,
        title="Payment link closed",
        practice_name=link.practice.name,
        state="closed",
        message=message,
    )


def open_page(
    link: PayLink,
    action: str,
    stripe: dict[str, Any] | None,
    status: int = 200,
    error: str | None = None,
    amount_value: str | None = None,
    mistakes: dict[str, str] | None = None,
) -> HTMLResponse:
    request = link.request
    expires = request.expires_at.astimezone(zone(link.practice.timezone)).strftime("%B %d, %Y")
    owed = request.owed
    paid_note = None
    if request.paid_amount is not None:  # partly paid: what is paid, of what was asked
        paid_note = (
            f"{format_dollars(request.paid_amount.cents)} of "
            f"{format_dollars(request.amount.cents)} is paid."
        )
    return page(
        status,
        title=f"Pay {link.practice.name}",
        practice_name=link.practice.name,
        state="open",
        amount_display=format_dollars(owed.cents),
        amount_cents=owed.cents,
        amount_value=amount_value or owed.dollars(),
        paid_note=paid_note,
        action=action,
        attempt=secrets.token_urlsafe(16),
        expires=expires,
        error=error,
        errors=mistakes or {},
        stripe=stripe,
        consent=consent_for(link.practice.name),
    )


def not_found_page() -> HTMLResponse:
    return page(
        404,
        title="Payment link not found",
        practice_name="Payment link",
        state="closed",
        message="This payment link is not valid.",
    )


#: plain dollars and cents: ASCII digits, commas only between groups of three, at most
#: two decimals, an optional leading $ (no exponents, underscores or other numerals)
DOLLARS = re.compile(r"\$?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,9})(?:\.[0-9]{1,2})?", re.ASCII)


def parse_dollars(text: str) -> int:
    cleaned = text.strip()
    if not DOLLARS.fullmatch(cleaned):
        raise InvalidValue("Enter the amount in dollars and cents, e.g. 125.00", field="amount")
    value = Decimal(cleaned.replace("$", "").replace(",", ""))
    cents = int(value * 100)
    if cents <= 0 or cents > MAX_AMOUNT_CENTS:
        raise InvalidValue("Enter an amount greater than $0.00", field="amount")
    return cents


def parse_int(text: str, field: str, label: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidValue(f"Enter the {label} as a number", field=field) from None


def find_link(ctx: Components, token: str) -> PayLink | None:
    try:
        return open_link(ctx, token)
    except NotFound:
        return None


#: the pay link's token as the document states it: a longer one is an unknown link (the
#: page's 404, not a problem: a patient sees a page)
PayToken = Annotated[
    str, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_TOKEN})
]


def pages(**statuses: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of an HTML page: each status with what the page then says."""
    return {
        int(status.removeprefix("s")): {"description": meaning, "content": {"text/html": {}}}
        for status, meaning in statuses.items()
    }


PAGE_STATUSES = pages(
    s404="No such payment link",
    s410="The request was paid, cancelled, replaced or expired; the page says which",
)
#: what a payment attempt can answer besides the receipt page
ATTEMPT_STATUSES = pages(
    s402="The card was declined; the page says so and stays open",
    s404="No such payment link",
    s410="The request was paid, cancelled, replaced or expired; the page says which",
    s422="An entry is invalid, or the request changed while the card was charged (its "
    "charge given back); the page says which",
    s429="Too many unsuccessful attempts; wait (`Retry-After`)",
)


@router.get(
    "/pay/{token}",
    response_class=HTMLResponse,
    responses=PAGE_STATUSES,
    summary="The hosted pay page",
)
def show(token: PayToken, request: Request, ctx: ComponentsDep) -> HTMLResponse:
    link = find_link(ctx, token)
    if link is None:
        return not_found_page()
    try:
        link.request.check_open(ctx.clock.now(link.practice.id))
    except RequestClosed as closed:
        return closed_page(link, closed_message(closed, link))
    return open_page(link, str(request.url.path), element(ctx, link))


@router.post(
    "/pay/{token}",
    response_class=HTMLResponse,
    responses=ATTEMPT_STATUSES,
    summary="Pay from the hosted page",
)
async def submit(token: PayToken, request: Request, ctx: ComponentsDep) -> HTMLResponse:
    form = await request.form()
    fields = {k: str(v) for k, v in form.items()}
    address = request.client.host if request.client else "unknown"
    return await run_in_threadpool(pay, ctx, token, fields, str(request.url.path), address)


def pay(
    ctx: Components, token: str, fields: dict[str, str], action: str, address: str = "unknown"
) -> HTMLResponse:
    link = find_link(ctx, token)
    if link is None:
        return not_found_page()
    stripe = element(ctx, link)
    try:  # a form posted before answers what it came to, whatever the request is now
        earlier = attempt_outcome(ctx, link, fields.get("attempt", ""))
    except PaymentsError as error:
        return open_or_closed(ctx, link, action, stripe, error)
    try:
        link.request.check_open(ctx.clock.now(link.practice.id))
    except RequestClosed as closed:
        if earlier is not None and earlier.status != Status.DECLINED:
            return outcome_page(link, action, stripe, earlier, None)  # this form paid it
        return closed_page(link, closed_message(closed, link))
    if earlier is not None:
        return outcome_page(link, action, stripe, earlier, fields.get("amount") or None)
    try:  # the attempt's place in the windows, before the card goes anywhere
        place = pay_limits.take_place(
            ctx.pay_attempts,
            request_id=str(link.request.id),
            address=address,
            link_now=ctx.clock.now(link.practice.id),
            real_now=ctx.clock.now(),
        )
    except pay_limits.Limited:
        response = open_page(
            link,
            action,
            stripe,
            429,
            "Too many unsuccessful attempts. Please wait 15 minutes and try again.",
        )
        response.headers["Retry-After"] = str(int(pay_limits.WINDOW.total_seconds()))
        return response
    amount_text = fields.get("amount", "")
    mistakes = typed_mistakes(ctx, link, fields, stripe is not None)
    if mistakes:  # every field's mistake at once, beside its field; a failed attempt
        return open_page(
            reload_link(ctx, link),
            action,
            stripe,
            422,
            mistakes_summary(mistakes),
            amount_text or None,
            mistakes,
        )
    try:
        amount = parse_dollars(amount_text) if amount_text.strip() else link.request.owed.cents
        card, payment_method = None, None
        if stripe is None:
            card = CardInput(
                number=fields.get("card_number", "").strip(),
                exp_month=parse_int(fields.get("exp_month", ""), "exp_month", "expiry month"),
                exp_year=parse_int(fields.get("exp_year", ""), "exp_year", "expiry year"),
                cvc=fields.get("cvc", "").strip(),
            )
        else:
            payment_method = fields.get("payment_method", "").strip()
            if not PAYMENT_METHOD.fullmatch(payment_method):
                raise InvalidValue(
                    "the card form did not send the card; reload the page and enter the card again",
                    field="payment_method",
                )
        attempt = fields.get("attempt") or secrets.token_urlsafe(16)
        saved: SavedCard | None = None
        kept: str | None = None
        if payment_method is not None and fields.get("keep_card") == "yes":
            # Stripe: kept first (a card paid with once cannot be attached to the
            # patient's Customer afterwards), then charged as the card on file
            saved, kept = keep_method(ctx, link, payment_method, attempt)
        payment = pay_request(
            ctx,
            link,
            amount=amount,
            card=card,
            payment_method=None if saved is not None else payment_method,
            saved_card=saved,
            attempt_id=attempt,
        )
    except RequestClosed as closed:
        pay_limits.give_back(ctx.pay_attempts, place)
        return closed_page(link, closed_message(closed, link))
    except PaymentsError as error:  # a failed attempt: its place stays taken
        return open_or_closed(ctx, link, action, stripe, error, amount_text or None)
    if payment.status == Status.APPROVED:
        pay_limits.give_back(ctx.pay_attempts, place)
        if card is not None and fields.get("keep_card") == "yes":
            kept = keep_card(ctx, link, card, fields.get("attempt") or "")
            return outcome_page(link, action, stripe, payment, amount_text or None, kept)
        if payment_method is not None and fields.get("keep_card") == "yes":
            return outcome_page(link, action, stripe, payment, amount_text or None, kept)
    return outcome_page(link, action, stripe, payment, amount_text or None)


#: the card's fields as the card checks name them -> the pay page's inputs
CARD_INPUTS = {
    "card.number": "card_number",
    "card.exp_month": "exp_month",
    "card.exp_year": "exp_year",
    "card.cvc": "cvc",
}


def typed_mistakes(
    ctx: Components, link: PayLink, fields: dict[str, str], stripe: bool
) -> dict[str, str]:
    """Each field the patient typed wrong, by its input's name, with what to fix: all of
    them at once (the amount, and the card's fields each checked on its own)."""
    found: dict[str, str] = {}
    amount_text = fields.get("amount", "")
    if amount_text.strip():
        try:
            parse_dollars(amount_text)
        except PaymentsError as error:
            found["amount"] = sentence(error.detail)
    if stripe:
        return found
    numbers: dict[str, int] = {}
    for name, words in (("exp_month", "expiry month"), ("exp_year", "expiry year")):
        try:
            numbers[name] = parse_int(fields.get(name, ""), name, words)
        except PaymentsError as error:
            found[name] = sentence(error.detail)
    card = CardInput(
        number=fields.get("card_number", "").strip(),
        exp_month=numbers.get("exp_month", 0),
        exp_year=numbers.get("exp_year", 0),
        cvc=fields.get("cvc", "").strip(),
    )
    today = local_date(ctx.clock.now(link.practice.id), link.practice.timezone)
    for mistake in card_mistakes(card, today):
        found.setdefault(CARD_INPUTS.get(mistake.field or "", "card_number"), friendly(mistake))
    return found


def mistakes_summary(mistakes: dict[str, str]) -> str:
    messages = list(dict.fromkeys(mistakes.values()))
    if len(messages) == 1:
        return messages[0]
    return f"Please fix the {len(messages)} entries marked below: " + " ".join(messages)


def keep_method(
    ctx: Components, link: PayLink, payment_method: str, attempt: str
) -> tuple[SavedCard | None, str]:
    """Keep the card of Stripe's Payment Element on file before it is charged (the patient
    ticked the consent): the card kept, or None, and what to say."""
    return keep(ctx, link, attempt, payment_method=payment_method)


def keep_card(ctx: Components, link: PayLink, card: CardInput, attempt: str) -> str:
    """Keep the card just paid with on file (the patient ticked the consent); what to say."""
    return keep(ctx, link, attempt, card=card)[1]


def keep(
    ctx: Components,
    link: PayLink,
    attempt: str,
    *,
    card: CardInput | None = None,
    payment_method: str | None = None,
) -> tuple[SavedCard | None, str]:
    """Keep the patient's card on file (a card, or the Payment Element's method): the card
    kept, or None, and what to say."""
    try:
        kept = cards.save_card(
            ctx,
            practice_id=link.practice.id,
            patient_id=link.request.patient_id,
            consent=consent_for(link.practice.name),
            source="pay_link",
            actor="patient",
            card=card,
            payment_method=payment_method,
            key=f"pay:{link.request.id}:{attempt}:card",
        )
        # the Payment Element's method is charged as the card kept: it must be usable
        stored = cards.saved_card(kept) if payment_method else None
    except PaymentsError as error:
        return None, sentence(f"your card could not be kept on file ({friendly(error)})")
    return stored, f"Your card ending {kept.last4} is kept on file with {link.practice.name}."


def outcome_page(
    link: PayLink,
    action: str,
    stripe: dict[str, Any] | None,
    payment: Payment,
    amount_text: str | None,
    kept: str | None = None,
) -> HTMLResponse:
    """The receipt of an approved payment (and whether the card was kept on file); the open
    page saying why a card was declined."""
    if payment.status == Status.DECLINED:
        return open_page(
            link,
            action,
            stripe,
            402,
            sentence(f"your card was declined ({payment.decline_reason})")
            + " No money was taken. You can try another card.",
            amount_text,
        )
    return page(
        200,
        title="Payment received",
        practice_name=link.practice.name,
        state="paid",
        paid_display=format_dollars(payment.amount.cents),
        card=str(payment.card),
        transaction_id=payment.transaction_id,
        kept=kept,
    )


def open_or_closed(
    ctx: Components,
    link: PayLink,
    action: str,
    stripe: dict[str, Any] | None,
    error: PaymentsError,
    amount_text: str | None = None,
) -> HTMLResponse:
    """A refused attempt: the page again with the reason (422) while the request takes
    payments, else the closed page saying why."""
    fresh = reload_link(ctx, link)
    if isinstance(error, RequestChanged):
        try:
            fresh.request.check_open(ctx.clock.now(link.practice.id))
        except RequestClosed:
            return page(
                422,
                title="Payment not taken",
                practice_name=link.practice.name,
                state="closed",
                message=sentence(error.detail),
            )
    return open_page(fresh, action, stripe, 422, friendly(error), amount_text)


def element(ctx: Components, link: PayLink) -> dict[str, Any] | None:
    return stripe_element(ctx, link.practice.stripe_account, link.request.owed.cents)


#: a PaymentMethod id as Stripe.js gives it
PAYMENT_METHOD = re.compile(r"pm_[A-Za-z0-9_]{1,200}", re.ASCII)


def closed_message(closed: RequestClosed, link: PayLink) -> str:
    """Why the link takes no payment, as a sentence for the patient."""
    if closed.why == "paid":
        return "This request has already been paid. Thank you."
    if closed.why == "expired":
        expired = link.request.expires_at.astimezone(zone(link.practice.timezone))
        return f"This payment link expired on {expired:%B} {expired.day}, {expired:%Y}."
    if closed.why == "superseded":
        return (
            "This payment link was cancelled because the office sent a newer one. "
            "Please use the latest link you received."
        )
    return "This payment request was cancelled by the office."


#: the API's field names as a patient reads them
FIELD_WORDS = {
    "card.number": "the card number",
    "card.exp_month": "the expiry month",
    "card.exp_year": "the expiry year",
    "card.cvc": "the CVC",
}


def friendly(error: PaymentsError) -> str:
    """The patient's message for a refused attempt, chosen by the error's kind and field:
    a card check names the card's field in words (its detail starts with the field's API
    name); any other refusal of the ledger says its detail as it is."""
    words = FIELD_WORDS.get(error.field or "") if isinstance(error, InvalidCard) else None
    if words is None or error.field is None:
        return sentence(error.detail)
    rest = error.detail.removeprefix(error.field)
    return sentence(f"{words}{rest}" if rest != error.detail else f"{words}: {error.detail}")


def sentence(text: str) -> str:
    """A message as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."
