"""The Accounts receivable tab: the AR list with a filter on every column, the filter
library, the aging chart of what matches, and the bulk actions (payment requests to many
patients, snoozes). The page's query string is the API's (`GET /v1/ar/patients`), so a
filtered page, a saved filter and an API call all say the same thing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.errors import InvalidValue
from domain.money import MAX_AMOUNT_CENTS
from domain.receivables import BUCKETS, MONEY_COLUMNS, AmountRule, SnoozeReason
from projections.plans import plan_holders
from projections.receivables import REQUEST_STATUSES, SORTABLE
from services.app import ar_filters, ar_views, patient_views
from services.app import receivables as uc
from services.app.inputs import BulkIn, FilterIn, SnoozeIn
from services.app.practices import practice_of
from services.web import render, session
from services.web.forms import FormError, dollars_to_cents, optional_date, run
from services.web.pages.common import practice
from services.web.session import Admin, Form, PostedForm, ctx_of

router = APIRouter(include_in_schema=False)

PAGE = "/payments/ar"
PAGE_SIZE = 50
#: the chart sums every matching row; a practice's AR is a few thousand rows at most
CHART_ROWS = 20_000

COLUMN_NAMES = {
    "total": "Balance",
    "bal_0_30": "0-30 days",
    "bal_31_60": "31-60 days",
    "bal_61_90": "61-90 days",
    "bal_over_90": "Over 90 days",
    "insurance_estimate": "Insurance estimate",
    "patient_portion": "Patient portion",
}
DATE_NAMES = {"last_payment": "Last payment", "last_request": "Last request"}
FLAG_WORDS = {
    "snoozed": ("Snoozed", "Not snoozed"),
    "has_email": ("Has an email address", "No email address"),
    "has_phone": ("Has a phone number", "No phone number"),
    "on_payment_plan": ("On a payment plan", "Not on a payment plan"),
}
#: which table column a filter narrows (the column is highlighted while it applies)
FLAG_COLUMNS = {
    "snoozed": "snooze",
    "has_email": "contact",
    "has_phone": "contact",
    "on_payment_plan": "patient",
}
RULE_NAMES = {
    AmountRule.TOTAL: "The whole balance",
    AmountRule.PATIENT_PORTION: "The patient portion",
    AmountRule.BAL_0_30: "The 0-30 days bucket",
    AmountRule.BAL_31_60: "The 31-60 days bucket",
    AmountRule.BAL_61_90: "The 61-90 days bucket",
    AmountRule.BAL_OVER_90: "The over 90 days bucket",
}
CHANNELS = {
    "preferred": "Text when there is a phone number, else email",
    "sms": "Text message only",
    "email": "Email only",
}
#: bulk filters are canonical already; only these names pass from a page's query string
FILTER_NAMES = set(ar_filters.FILTER_NAMES)
AMOUNT = re.compile(r"-?\$?(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?", re.ASCII)


# -- the query string ------------------------------------------------------------------


def filter_pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The filter part of a query string: the API's names with a value."""
    return [(k, v.strip()) for k, v in pairs if k in FILTER_NAMES and v.strip()]


def amount_cents(text: str, field: str) -> str:
    """An amount typed in the filter form, in dollars ('-' for a credit), as API cents."""
    cleaned = text.strip().replace(" ", "")
    if not AMOUNT.fullmatch(cleaned):
        raise InvalidValue(f"enter {field} in dollars, e.g. 200 or 200.00", field=field)
    negative = cleaned.startswith("-")
    whole, _, fraction = cleaned.lstrip("-").lstrip("$").replace(",", "").partition(".")
    cents = int(whole) * 100 + int((fraction + "00")[:2])
    return str(-cents if negative else cents)


def amount_label(name: str) -> str:
    edge, column = name.split("_", 1)
    return f"the {'minimum' if edge == 'min' else 'maximum'} {COLUMN_NAMES[column].lower()}"


def from_form(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The filter form types amounts in dollars; the API (and so the URL) takes cents."""
    out = []
    for name, value in filter_pairs(pairs):
        if name.startswith(("min_", "max_")):
            value = amount_cents(value, amount_label(name))
        elif name.endswith(("_from", "_to")):
            optional_date(value, name.replace("_", " "))
        out.append((name, value))
    return out


def to_pairs(values: dict[str, Any]) -> list[tuple[str, str]]:
    """A canonical filter (as the API answers it) as query-string pairs."""
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, list):
            pairs.extend((name, str(v)) for v in value)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return pairs


def raw_filter(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Query-string pairs as the JSON filter the API's bodies take."""
    raw: dict[str, Any] = {}
    for name, value in filter_pairs(pairs):
        if name == "last_request_status":
            raw.setdefault(name, []).append(value)
        else:
            raw[name] = value
    return raw


def href(pairs: list[tuple[str, str]], **extra: str) -> str:
    query = urlencode([*pairs, *((k, v) for k, v in extra.items() if v)])
    return PAGE + (f"?{query}" if query else "")


# -- reading the AR list ---------------------------------------------------------------


@dataclass
class Listing:
    rows: list[dict[str, Any]]
    applied: dict[str, Any]
    pairs: list[tuple[str, str]]
    sort: str
    next_cursor: str | None
    pms_sync: dict[str, Any] | None
    chart: dict[str, Any]


def fetch(
    user: Admin, ctx: Any, pairs: list[tuple[str, str]], sort: str, cursor: str | None
) -> Listing:
    answer = run(
        ar_views.ar_page,
        ctx,
        practice_of(user.caller),
        pairs,
        sort=sort,
        limit=PAGE_SIZE,
        cursor_=cursor,
    )
    applied: dict[str, Any] = answer["filters"]
    canonical = to_pairs(applied)
    every = answer["items"] if not cursor and not answer["next_cursor"] else None
    if every is None:
        every = all_rows(user, ctx, canonical)
    return Listing(
        rows=answer["items"],
        applied=applied,
        pairs=canonical,
        sort=answer["sort"],
        next_cursor=answer["next_cursor"],
        pms_sync=answer.get("pms_sync"),
        chart=aging_chart(every),
    )


def all_rows(user: Admin, ctx: Any, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(rows) < CHART_ROWS:
        answer = ar_views.ar_page(
            ctx, practice_of(user.caller), pairs, sort="-total", limit=100, cursor_=cursor
        )
        rows.extend(answer["items"])
        cursor = answer["next_cursor"]
        if not cursor:
            break
    return rows


def aging_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Four bars (one per aging bucket) for an SVG 640 wide, 136 high; credits go below
    the zero line."""
    sums = {b: sum(int(r[b]) for r in rows) for b in BUCKETS}
    top = max([v for v in sums.values() if v > 0], default=0)
    bottom = min([v for v in sums.values() if v < 0], default=0)
    span = (top - bottom) or 1
    plot_top, plot_height = 22, 84
    zero = plot_top + plot_height * top / span
    bars = []
    for i, bucket in enumerate(BUCKETS):
        value = sums[bucket]
        height = plot_height * abs(value) / span
        y = zero - height if value >= 0 else zero
        x = 40 + i * 150
        bars.append(
            {
                "bucket": bucket,
                "name": COLUMN_NAMES[bucket],
                "value": value,
                "x": x,
                "y": round(y, 1),
                "width": 110,
                "height": round(max(height, 1.0 if value else 0.0), 1),
                "label_y": round((y - 6) if value >= 0 else (y + height + 14), 1),
                "center": x + 55,
            }
        )
    return {
        "bars": bars,
        "zero": round(zero, 1),
        "patients": len(rows),
        "sum": sum(sums.values()),
    }


def same(saved: dict[str, Any], pairs: list[tuple[str, str]]) -> bool:
    return sorted(to_pairs(saved)) == sorted(pairs)


def highlighted(applied: dict[str, Any]) -> set[str]:
    """The table columns the applied filters narrow."""
    columns = set()
    for name in applied:
        if name.startswith(("min_", "max_")):
            columns.add(name[4:])
        elif name.startswith("last_payment_"):
            columns.add("last_payment_date")
        elif name.startswith("last_request_"):
            columns.add("last_request")
        elif name == "q":
            columns.add("patient")
        else:
            columns.add(FLAG_COLUMNS[name])
    return columns


def chips(applied: dict[str, Any], pairs: list[tuple[str, str]], sort: str) -> list[dict[str, str]]:
    """One chip per applied filter (per status for the request status), each with the link
    that removes it."""
    found = []
    for name, value in pairs:
        rest = [p for p in pairs if p != (name, value)]
        found.append({"text": chip_text(name, value), "remove": href(rest, sort=keep_sort(sort))})
    return found


def chip_text(name: str, value: str) -> str:
    if name.startswith(("min_", "max_")):
        column = COLUMN_NAMES[name[4:]]
        edge = "at least" if name.startswith("min_") else "at most"
        return f"{column} {edge} {render.money(int(value))}"
    if name.endswith(("_from", "_to")):
        prefix, _, edge = name.rpartition("_")
        day = render.LocalTime("UTC").date(value)
        return f"{DATE_NAMES[prefix]} {'on or after' if edge == 'from' else 'on or before'} {day}"
    if name == "last_request_status":
        return "No request yet" if value == "none" else f"Last request {value}"
    if name == "q":
        return f"Name contains “{value}”"
    yes, no = FLAG_WORDS[name]
    return yes if value == "true" else no


def keep_sort(sort: str) -> str:
    return "" if sort == "-total" else sort


def sort_links(pairs: list[tuple[str, str]], sort: str) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (descending first for amounts,
    again to reverse) and the current direction for aria-sort."""
    links = {}
    for column in SORTABLE:
        current = sort.lstrip("-") == column
        descending = sort.startswith("-")
        if current:
            target = column if descending else f"-{column}"
            state = "descending" if descending else "ascending"
        else:
            target = f"-{column}" if column in MONEY_COLUMNS else column
            state = "none"
        links[column] = {"href": href(pairs, sort=keep_sort(target)), "state": state}
    return links


def form_values(applied: dict[str, Any]) -> dict[str, Any]:
    """The applied filter as the form shows it: amounts in dollars, flags as words."""
    values: dict[str, Any] = {}
    for name, value in applied.items():
        if name.startswith(("min_", "max_")):
            values[name] = render.cents_input(value)
        elif isinstance(value, bool):
            values[name] = "true" if value else "false"
        else:
            values[name] = value
    return values


# -- the page --------------------------------------------------------------------------


def ar_page(
    request: Request,
    user: Admin,
    pairs: list[tuple[str, str]],
    *,
    sort: str = "-total",
    cursor: str | None = None,
    error: str | None = None,
    status: int = 200,
    typed: dict[str, Any] | None = None,
    bulk: dict[str, Any] | None = None,
    open_panel: bool = False,
) -> HTMLResponse:
    ctx = ctx_of(request)
    try:
        listing = fetch(user, ctx, pairs, sort, cursor)
    except FormError as refused:
        error, status = refused.message, refused.status
        typed = typed or dict(pairs)
        listing = fetch(user, ctx, [], "-total", None)
    office = practice(request, user)
    saved = ar_views.saved_filters(ctx, practice_of(user.caller))["items"]
    query = urlencode(listing.pairs)
    sort_param = keep_sort(listing.sort)
    return render.page(
        request,
        "payments/ar.html",
        user=user,
        practice=office,
        section="payments",
        tab="ar",
        error=error,
        status=status,
        rows=listing.rows,
        plan_holders=ctx.reads(plan_holders, office.id, [str(r["id"]) for r in listing.rows]),
        applied=listing.applied,
        values=typed if typed is not None else form_values(listing.applied),
        chips=chips(listing.applied, listing.pairs, listing.sort),
        filtered=highlighted(listing.applied),
        sorts=sort_links(listing.pairs, listing.sort),
        sort=listing.sort,
        sort_param=sort_param,
        query=query,
        here=href(listing.pairs, sort=sort_param),
        more=href(listing.pairs, sort=sort_param, cursor=listing.next_cursor or "")
        if listing.next_cursor
        else "",
        paged=bool(cursor),
        pms_sync=listing.pms_sync,
        chart=listing.chart,
        saved=[{**s, "href": href(to_pairs(s["filter"]))} for s in saved],
        saved_current=next((s["name"] for s in saved if same(s["filter"], listing.pairs)), ""),
        bulk_open=open_panel or bool(bulk),
        bulk_from_menu=request.query_params.get("bulk") == "1",
        bulk_values=bulk or {},
        column_names=COLUMN_NAMES,
        statuses=REQUEST_STATUSES,
        reasons=[r.value for r in SnoozeReason],
        rules=RULE_NAMES,
        channels=CHANNELS,
        snooze_default=(uc.today(ctx, office) + timedelta(days=14)).isoformat(),
        snooze_min=(uc.today(ctx, office) + timedelta(days=1)).isoformat(),
    )


@router.get(PAGE)
def ar_list(request: Request, user: Admin) -> Response:
    q = request.query_params
    pairs = list(q.multi_items())
    sort = q.get("sort", "") or "-total"
    if q.get("units") == "dollars":  # the filter form: amounts typed in dollars
        try:
            canonical = run(from_form, pairs)
        except FormError as refused:
            typed: dict[str, Any] = {
                k: v for k, v in filter_pairs(pairs) if k != "last_request_status"
            }
            typed["last_request_status"] = q.getlist("last_request_status")
            return ar_page(
                request, user, [], error=refused.message, status=refused.status, typed=typed
            )
        return render.redirect(request, href(canonical, sort=keep_sort(sort)))
    return ar_page(
        request,
        user,
        filter_pairs(pairs),
        sort=sort,
        cursor=q.get("cursor") or None,
        open_panel=q.get("bulk") == "1",
    )


def back_pairs(form: Form) -> list[tuple[str, str]]:
    """The filter the page showed when the form was posted (hidden field `query`)."""
    return filter_pairs(parse_qsl(form.get("query"), keep_blank_values=False))


def back_to(form: Form) -> str:
    return href(back_pairs(form), sort=keep_sort(form.get("sort") or "-total"))


@router.post(PAGE + "/sync")
def sync_now(request: Request, user: Admin, form: PostedForm) -> Response:
    """Start reading patients and balances from the PMS now, instead of at the next
    scheduled sync: it runs in the background and the tab shows how far it came."""
    try:
        answer = run(ar_views.start_sync, ctx_of(request), user.caller)
    except FormError as refused:
        return render.redirect(request, back_to(form), refused.message, "error")
    if answer["started"]:
        notice = "Sync with the PMS started: its progress is shown above the list."
    else:
        notice = "A sync with the PMS is already running: its progress is shown above the list."
    return render.redirect(request, back_to(form), notice)


@router.get(PAGE + "/sync/status")
def sync_progress(request: Request, user: Admin) -> HTMLResponse:
    """The sync's line on the tab, read again while a sync runs (htmx)."""
    try:
        status = run(ar_views.sync_status, ctx_of(request), practice_of(user.caller))
    except FormError as refused:
        return HTMLResponse(refused.message, status_code=refused.status)
    html = render.fragment(
        "payments/ar_sync.html",
        pms_sync=status,
        sync_query=request.query_params.get("query", ""),
        local=render.LocalTime(practice(request, user).timezone),
        csrf_token=user.csrf_token,
        form_key=session.new_form_key,
        read_only=user.caller.reads_only,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


# -- the filter library ----------------------------------------------------------------


@router.post(PAGE + "/filters")
def save_filter(request: Request, user: Admin, form: PostedForm) -> Response:
    pairs = back_pairs(form)
    try:
        if not pairs:
            raise FormError("Apply at least one filter before saving it in the library.")
        body = run(FilterIn, name=form.get("name"), filter=raw_filter(pairs))
        saved = run(ar_views.save_filter, ctx_of(request), user.caller, body)
    except FormError as refused:
        return ar_page(request, user, pairs, error=refused.message, status=refused.status)
    return render.redirect(
        request, back_to(form), f"Saved the filter “{saved['name']}” in the library."
    )


@router.post(PAGE + "/filters/{filter_id}/delete")
def delete_filter(request: Request, user: Admin, form: PostedForm, filter_id: UUID) -> Response:
    ctx = ctx_of(request)
    saved = ar_views.saved_filters(ctx, practice_of(user.caller))["items"]
    names = {s["id"]: s["name"] for s in saved}
    try:
        run(ar_views.delete_filter, ctx, user.caller, filter_id)
    except FormError as refused:
        return render.redirect(request, back_to(form), refused.message, "error")
    return render.redirect(
        request,
        back_to(form),
        f"Deleted the saved filter “{names.get(str(filter_id), '')}”.",
    )


# -- snoozes ---------------------------------------------------------------------------


def names_of(user: Admin, ctx: Any) -> dict[str, str]:
    """Every patient's name by id, for sentences about many patients."""
    names: dict[str, str] = {}
    cursor: str | None = None
    while len(names) < CHART_ROWS:
        answer = patient_views.patients_page(ctx, user.caller, 100, cursor)
        names.update((p["id"], f"{p['first_name']} {p['last_name']}") for p in answer["items"])
        cursor = answer["next_cursor"]
        if not cursor:
            break
    return names


def selected(form: Form) -> list[str]:
    return list(dict.fromkeys(form.all("patient_ids")))


def patient_ids(ids: list[str]) -> list[UUID]:
    if not ids:
        raise InvalidValue(
            "select the patients to snooze with the boxes in the list", field="patient_ids"
        )
    try:
        return [UUID(pid) for pid in ids]
    except ValueError:
        raise InvalidValue(
            "a selected patient is not one of this list's", field="patient_ids"
        ) from None


@router.post(PAGE + "/snooze")
def snooze_selected(request: Request, user: Admin, form: PostedForm) -> Response:
    ctx = ctx_of(request)
    ids = selected(form)
    values = {
        "until": form.get("until"),
        "reason": form.get("reason"),
        "note": form.get("note"),
        "action": "snooze",
    }
    try:
        patients = run(patient_ids, ids)
        body = run(
            SnoozeIn,
            until=form.get("until"),
            reason=form.get("reason"),
            note=form.get("note") or None,
        )
        done = [run(ar_views.snooze, ctx, user.caller, pid, body) for pid in patients]
    except FormError as refused:
        return ar_page(
            request,
            user,
            back_pairs(form),
            error=refused.message,
            status=refused.status,
            bulk=values,
        )
    who = (
        f"{done[0]['first_name']} {done[0]['last_name']} is"
        if len(done) == 1
        else f"{len(done)} patients are"
    )
    until = render.LocalTime("UTC").date(body.until)
    return render.redirect(
        request,
        back_to(form),
        f"{who} snoozed until {until} ({render.label(body.reason).lower()}); "
        "bulk requests skip them until then.",
    )


@router.post(PAGE + "/{patient_id}/unsnooze")
def unsnooze(request: Request, user: Admin, form: PostedForm, patient_id: UUID) -> Response:
    try:
        patient = run(ar_views.unsnooze, ctx_of(request), user.caller, patient_id)
    except FormError as refused:
        return render.redirect(request, back_to(form), refused.message, "error")
    return render.redirect(
        request,
        back_to(form),
        f"{patient['first_name']} {patient['last_name']} is no longer snoozed.",
    )


# -- bulk payment requests -------------------------------------------------------------


def skip_words(reason: str, channel: str, min_balance: int, rule: str) -> str:
    """Why a patient got no request, as the office reads it."""
    contact = {
        "sms": "no phone number to text",
        "email": "no email address",
        "preferred": "neither a phone number nor an email address",
    }[channel]
    words = {
        "snoozed": "Snoozed: bulk requests skip snoozed patients.",
        "below_minimum": f"{RULE_NAMES[AmountRule(rule)]} is below the minimum of "
        f"{render.money(min_balance)}.",
        "no_contact": f"There is {contact} on file.",
        "on_payment_plan": "On a payment plan in the PMS.",
        "not_guarantor": "Not the guarantor: the account's guarantor is the one billed.",
        "no_balance": "Nothing to request: the amount chosen is zero or a credit.",
        "unknown_patient": "Not found in this practice's accounts receivable.",
    }
    return words.get(reason, render.label(reason) + ".")


def min_balance_cents(text: str) -> int:
    if not text.strip():
        return 1
    cents = dollars_to_cents(text, "minimum balance")
    if cents > MAX_AMOUNT_CENTS:
        raise InvalidValue("the minimum balance is too large", field="min_balance")
    return cents


@router.post(PAGE + "/bulk")
def bulk_send(request: Request, user: Admin, form: PostedForm) -> Response:
    ctx = ctx_of(request)
    pairs = back_pairs(form)
    scope = form.get("scope") or "selected"
    values = {
        "scope": scope,
        "channel": form.get("channel"),
        "amount_rule": form.get("amount_rule"),
        "min_balance": form.get("min_balance"),
        "guarantors_only": form.get("guarantors_only") == "true",
        "skip_payment_plan": form.get("skip_payment_plan") == "true",
        "skip_snoozed": form.get("skip_snoozed") == "true",
        "action": "send",
    }
    ids = selected(form)
    try:
        if scope == "selected" and not ids:
            raise FormError(
                "Select the patients with the boxes in the list, "
                "or choose all patients matching the filter."
            )
        minimum = run(min_balance_cents, form.get("min_balance"))
        body = run(
            BulkIn,
            patient_ids=ids if scope == "selected" else None,
            filter=raw_filter(pairs) if scope == "filter" else None,
            channel=form.get("channel") or "preferred",
            amount_rule=form.get("amount_rule") or "total",
            min_balance=minimum,
            guarantors_only=values["guarantors_only"],
            skip_payment_plan=values["skip_payment_plan"],
            skip_snoozed=values["skip_snoozed"],
        )
        answer = run(ar_views.bulk, ctx, user.caller, body, form.key(user))
    except FormError as refused:
        return ar_page(
            request, user, pairs, error=refused.message, status=refused.status, bulk=values
        )
    names = names_of(user, ctx)
    results = [
        {
            **r,
            "name": names.get(r["patient_id"], "Unknown patient"),
            "why": skip_words(r["reason"], body.channel, minimum, body.amount_rule)
            if r["reason"]
            else "",
        }
        for r in answer["results"]
    ]
    results.sort(key=lambda r: (r["outcome"] != "sent", r["name"]))
    return render.page(
        request,
        "payments/ar_bulk_result.html",
        user=user,
        practice=practice(request, user),
        section="payments",
        tab="ar",
        results=results,
        sent=answer["sent"],
        skipped=answer["skipped"],
        total=sum(int(r["amount"] or 0) for r in results if r["outcome"] == "sent"),
        rule=RULE_NAMES[AmountRule(body.amount_rule)],
        back=back_to(form),
        scope=scope,
    )


__all__ = ["router"]
