"""The Deposits tab: the deposits of a date range (scheduled ones included), each expanding to
its itemised payments and refunds, a bar chart of the range, and the CSV download."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.app import deposit_views
from services.app.practices import practice_of
from services.web import render
from services.web.forms import FormError, optional_date, run
from services.web.pages.common import practice
from services.web.pages.transactions import badge_count
from services.web.session import Admin, ctx_of

router = APIRouter(include_in_schema=False)

#: at most this many deposits on one page (a year of daily batches and then some)
MAX_DEPOSITS = 500

# The chart's canvas, in SVG user units (the SVG scales to the width of its card).
WIDTH, HEIGHT = 960, 220
LEFT, RIGHT, TOP, BOTTOM = 78, 12, 14, 28


def filters_of(request: Request) -> dict[str, str]:
    q = request.query_params
    return {"from": q.get("from", "").strip(), "to": q.get("to", "").strip()}


def all_deposits(request: Request, user: Admin, f: dict[str, str]) -> dict[str, Any]:
    """Every deposit of the range (the API pages them; the tab shows the whole range)."""
    ctx = ctx_of(request)
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        answer = run(
            deposit_views.deposits_page,
            ctx,
            practice_of(user.caller),
            optional_date(f["from"], "from"),
            optional_date(f["to"], "to"),
            100,
            cursor,
        )
        items.extend(answer["items"])
        cursor = answer["next_cursor"]
        if not cursor or len(items) >= MAX_DEPOSITS:
            break
    return {"items": items, "from": answer["from"], "to": answer["to"], "cut": bool(cursor)}


def totals(items: list[dict[str, Any]]) -> dict[str, int]:
    return {
        key: sum(int(d[f"{key}_amount"]) for d in items)
        for key in ("gross", "refunds", "fees", "net")
    }


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    text: str


def nice_step(span: int) -> int:
    """A round step (1, 2 or 5 times a power of ten, in cents) for about four gridlines."""
    raw = max(span / 4, 1)
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def chart(items: list[dict[str, Any]], date_from: str, date_to: str, local: Any) -> dict[str, Any]:
    """Bars for the deposits of the range, one slot per day (several deposits on one day
    share its slot); withdrawals (a negative net) hang below the zero line."""
    first, last = date.fromisoformat(date_from), date.fromisoformat(date_to)
    days = (last - first).days + 1
    nets = [int(d["net_amount"]) for d in items]
    step = nice_step(max(max(nets, default=0), 0) - min(min(nets, default=0), 0))
    top = math.ceil(max(max(nets, default=0), 0) / step) * step or step
    bottom = math.floor(min(min(nets, default=0), 0) / step) * step
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y_of(cents: int) -> float:
        return TOP + (top - cents) / (top - bottom) * plot_h

    slot = plot_w / days
    by_day: dict[str, list[dict[str, Any]]] = {}
    for d in items:
        by_day.setdefault(d["deposit_date"], []).append(d)
    bars = []
    for day, group in by_day.items():
        offset = (date.fromisoformat(day) - first).days
        width = slot * 0.72 / len(group)
        for i, d in enumerate(sorted(group, key=lambda d: d["id"])):
            bars.append(bar(d, LEFT + offset * slot + slot * 0.14 + i * width, width, y_of, local))
    ticks = [Tick(y_of(v), render.money(v)) for v in range(bottom, top + 1, step)]
    every = max(1, math.ceil(days / 10))
    labels = [
        DayLabel(
            LEFT + (i + 0.5) * slot,
            f"{first + timedelta(days=i):%b} {(first + timedelta(days=i)).day}",
        )
        for i in range(0, days, every)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "zero": y_of(0),
        "bottom": HEIGHT - BOTTOM,
        "bars": bars,
        "ticks": ticks,
        "labels": labels,
        "has_withdrawal": any(n < 0 for n in nets),
        "has_scheduled": any(d["status"] == "scheduled" for d in items),
    }


def bar(d: dict[str, Any], x: float, width: float, y_of: Any, local: Any) -> Bar:
    net = int(d["net_amount"])
    y0, y1 = y_of(0), y_of(net)
    css = (
        "bar"
        + (" negative" if net < 0 else "")
        + (" scheduled" if d["status"] == "scheduled" else "")
    )
    what = "withdrawn" if net < 0 else "deposited"
    when = "scheduled for" if d["status"] == "scheduled" else "on"
    title = f"{render.money(abs(net))} {what} {when} {local.date(d['deposit_date'])}"
    return Bar(
        round(x, 2),
        round(min(y0, y1), 2),
        round(width, 2),
        round(max(abs(y1 - y0), 1), 2),
        css,
        title,
    )


@router.get("/payments/deposits")
def deposits_page(request: Request, user: Admin) -> HTMLResponse:
    f, error = filters_of(request), None
    try:
        found = all_deposits(request, user, f)
    except FormError as refused:
        error, f = refused.message, {"from": "", "to": ""}
        found = all_deposits(request, user, f)
    the_practice = practice(request, user)
    local = render.LocalTime(the_practice.timezone)
    items = found["items"]
    return render.page(
        request,
        "payments/deposits.html",
        user=user,
        practice=the_practice,
        section="payments",
        tab="deposits",
        badge=badge_count(request, user),
        error=error,
        status=422 if error else 200,
        deposits=items,
        totals=totals(items),
        cut=found["cut"],
        filters={"from": found["from"], "to": found["to"]},
        csv_query=urlencode({"from": found["from"], "to": found["to"]}),
        chart=chart(items, found["from"], found["to"], local),
        cutoff=the_practice.batch_cutoff,
    )


@router.get("/payments/deposits/{deposit_id}/row")
def deposit_row(request: Request, user: Admin, deposit_id: UUID) -> HTMLResponse:
    """One deposit's rows, opened (with its itemised list) or closed, for the arrow."""
    opened = request.query_params.get("open") == "1"
    try:
        deposit = run(
            deposit_views.one_deposit, ctx_of(request), practice_of(user.caller), deposit_id
        )
    except FormError as refused:
        return HTMLResponse(refused.message, status_code=refused.status)
    html = render.fragment(
        "payments/deposit_row.html",
        d=deposit,
        opened=opened,
        item_total=sum(int(i["net_amount"]) for i in deposit["items"]),
        local=render.LocalTime(practice(request, user).timezone),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
