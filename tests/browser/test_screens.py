"""Every dashboard page on a phone (390x844) and a tablet (768x1024): none scrolls sideways,
no table scrolls sideways inside its box either (its columns fit, or drop to a details
line), the tabs and Collect payment stay within reach. The pages are listed from the web app's own
routes, so a page added later is checked too (one whose path takes an id must be given one
below, or the test says which is missing)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from services.web import app as web_app
from services.web import pay
from tests.browser.conftest import Browse
from tests.browser.test_requests import pay_link_sent_to, send_request

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}
DESKTOP = {"width": 1280, "height": 800}

#: pages whose path takes an id: how the test finds one ("payment", "request", "pay"),
#: a fixed value, or None with the reason it is not a page of its own
WITH_IDS: dict[str, str | None] = {
    "/payments/collect/{kind}": "kinds",
    "/payments/transactions/{payment_id}": "payment",
    "/payments/transactions/{payment_id}/refund": "payment",
    "/payments/transactions/{payment_id}/post": "payment",
    "/payments/transactions/{payment_id}/receipt": "payment",
    "/payments/requests/{request_id}": "request",
    "/payments/requests/{request_id}/cancel": "request",
    "/payments/requests/{request_id}/resend": "request",
    "/payments/patients/{patient_id}": "patient",
    "/pay/{token}": "pay",
    "/payments/exports/{view}.csv": None,  # a download, not a page
    "/payments/transactions/{payment_id}/receipt.pdf": None,  # a download, not a page
    "/payments/deposits/{deposit_id}/row": None,  # a part of the Deposits page
}
#: pages a signed-out visitor sees (the patient's pay page, sign-in)
PUBLIC = ("/signin", "/signin/code", "/pay/{token}")
#: the parts of pages htmx loads, not pages of their own
FRAGMENTS = ("/payments/transactions/rows", "/payments/badge", "/payments/ar/sync/status")


def page_routes() -> list[str]:
    """Every GET path the dashboard and the pay page answer."""
    routers = [module.router for module in web_app.PAGES] + [pay.router]
    paths = {
        route.path
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    }
    return sorted(p for p in paths if p not in FRAGMENTS)


def first_href(browse: Browse, path: str, pattern: str) -> str:
    browse.go(path)
    for href in browse.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        found = re.search(pattern, href)
        if found:
            return found.group(1)
    raise AssertionError(f"no link matching {pattern} on {path}")


def concrete_paths(browse: Browse, pay_link: str) -> tuple[list[str], list[str]]:
    """(signed-in pages, signed-out pages) with ids filled in."""
    payment = first_href(
        browse, "/payments/transactions", r"/payments/transactions/([0-9a-f-]{36})"
    )
    request = first_href(browse, "/payments/requests", r"/payments/requests/([0-9a-f-]{36})")
    patient = first_href(browse, "/payments/patients", r"/payments/patients/([0-9a-f-]{36})")
    ids = {
        "payment": payment,
        "request": request,
        "patient": patient,
        "pay": pay_link.rsplit("/", 1)[1],
    }
    signed_in: list[str] = []
    signed_out: list[str] = []
    missing = [p for p in page_routes() if "{" in p and p not in WITH_IDS]
    assert not missing, f"say how to reach these pages in WITH_IDS: {missing}"
    for template in page_routes():
        kind = WITH_IDS.get(template, "")
        if kind is None:
            continue
        if kind == "kinds":
            paths = [template.replace("{kind}", k) for k in ("terminal", "virtual", "request")]
        elif kind:
            paths = [re.sub(r"\{[^}]+\}", ids[kind], template)]
        else:
            paths = [template]
        (signed_out if template in PUBLIC else signed_in).extend(paths)
    return signed_in, signed_out


def overflow(page: Any) -> list[str]:
    """The elements wider than the viewport, named, for a message that says what to fix."""
    found: list[str] = page.evaluate(
        r"""() => {
          const w = document.documentElement.clientWidth, out = [];
          for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.right <= w + 1 || r.width === 0 || !el.checkVisibility()) continue;
            const classes = typeof el.className === 'string' && el.className
              ? '.' + el.className.trim().split(/\s+/).join('.') : '';
            const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes;
            out.push(name + ' right=' + Math.round(r.right));
          }
          return out.slice(0, 8);
        }"""
    )
    return found


def tables_scrolling(page: Any) -> list[str]:
    """The tables whose box scrolls sideways (columns hidden past its right edge), named,
    with the cells that reach past it."""
    found: list[str] = page.evaluate(
        r"""() => [...document.querySelectorAll('.table-wrap')]
          .filter(w => w.checkVisibility() && w.scrollWidth > w.clientWidth + 1)
          .map(w => {
            const edge = w.getBoundingClientRect().right;
            const cells = [...w.querySelectorAll('tbody td, tbody th')]
              .filter(c => c.checkVisibility() && c.getBoundingClientRect().right > edge + 1)
              .slice(0, 3).map(c => c.className || c.dataset.label || c.tagName);
            const table = w.querySelector('table');
            return 'table#' + (table ? table.id : '?') + ' is ' + w.scrollWidth +
              'px wide in a ' + w.clientWidth + 'px box; past it: ' + cells.join(', ');
          })"""
    )
    return found


def fits(browse: Browse, path: str, size: dict[str, int], shot: str) -> str | None:
    browse.page.set_viewport_size(size)
    answer = browse.go(path)
    assert answer is not None and answer.status < 500, f"{path}: {answer and answer.status}"
    browse.page.wait_for_load_state("networkidle")
    width = browse.page.evaluate("document.documentElement.scrollWidth")
    browse.shot(f"{shot}-{size['width']}", full=True)
    if width > size["width"]:
        return f"{path} at {size['width']}px is {width}px wide: {overflow(browse.page)}"
    scrolling = tables_scrolling(browse.page)
    if scrolling and size is not DESKTOP:
        return f"{path} at {size['width']}px: " + "; ".join(scrolling)
    return None


def shot_name(path: str) -> str:
    path = re.sub(r"/[0-9a-f-]{36}|/pay/[^/?]+", lambda m: "/pay" if "pay" in m[0] else "/id", path)
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


@pytest.fixture
def pay_link(browse: Browse) -> str:
    browse.sign_in()
    send_request(browse, 2, "44.50", "screens@browser.example")
    return pay_link_sent_to(browse, "screens@browser.example")


def test_no_page_scrolls_sideways_on_a_phone_or_a_tablet(
    browse: Browse, browser: Any, pay_link: str
) -> None:
    signed_in, signed_out = concrete_paths(browse, pay_link)
    assert len(signed_in) >= 15, signed_in
    wide: list[str] = []
    for path in signed_in:
        for size in (PHONE, TABLET, DESKTOP):
            problem = fits(browse, path, size, shot_name(path))
            if problem and size is not DESKTOP:
                wide.append(problem)
    outside = browser.new_context()
    try:
        visitor = Browse(outside.new_page(), browse.server, browse.problems, browse.shots)
        for path in signed_out:
            for size in (PHONE, TABLET, DESKTOP):
                problem = fits(visitor, path, size, "public-" + shot_name(path))
                if problem and size is not DESKTOP:
                    wide.append(problem)
    finally:
        outside.close()
    assert not wide, "\n".join(wide)


def test_the_tabs_and_collect_payment_are_in_reach_on_a_phone(browse: Browse) -> None:
    browse.page.set_viewport_size(PHONE)
    browse.sign_in()
    for name, path in (
        ("Deposits", "/payments/deposits"),
        ("Payment requests", "/payments/requests"),
        ("Accounts receivable", "/payments/ar"),
        ("Transactions", "/payments/transactions"),
    ):
        tab = browse.page.locator("nav.tabs a", has_text=name)
        assert tab.is_visible(), name
        tab.click()
        browse.page.wait_for_load_state()
        assert browse.page.url.split("?")[0].endswith(path), browse.page.url
    for name, path in (
        ("Practice status", "/payments/status"),
        ("Settings", "/settings"),
        ("Payments", "/payments/transactions"),
    ):
        link = browse.page.locator("nav.menu a", has_text=name)
        if not link.is_visible():
            browse.page.click("nav.menu summary")
        link.click()
        browse.page.wait_for_load_state()
        assert browse.page.url.endswith(path), browse.page.url
    collect = browse.page.locator("summary:has-text('Collect payment')")
    assert collect.is_visible()
    collect.click()
    browse.page.click("text=Virtual terminal (key in a card)")
    browse.page.wait_for_load_state()
    assert browse.page.url.endswith("/payments/collect/virtual")
    width = browse.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    browse.shot("phone-collect", full=True)
